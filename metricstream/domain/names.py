"""The one rule for a metric's name, on every path: create, write by name, look up by name."""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Final

__all__ = ["NAME_SPACE", "name_key", "normalize_name"]

# Unicode's White_Space (PropList.txt), what a name's ends are trimmed of: str.strip() would also take
# U+001C-U+001F, which Unicode (and pydantic) count as control characters, not as space.
NAME_SPACE: Final = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
# Category Cc, and lone surrogates.
_NOT_IN_NAMES = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


@functools.lru_cache(maxsize=4096)  # a batch names the same few metrics over and over
def normalize_name(text: str) -> str:
    """`text` as a metric name, in the one form every path takes it (create, write by name, look up by
    name): its ends trimmed of whitespace, then NFC, so that "café" composed and "café" decomposed are one
    name. A `ValueError` (its message to follow the field's name) if a control character or a lone
    surrogate is left. The length, in characters of the result, is the caller's to check."""
    name = text.strip(NAME_SPACE)
    unwanted = _NOT_IN_NAMES.search(name)
    if unwanted is not None:
        character = unwanted.group()
        kind = "a lone surrogate" if "\ud800" <= character <= "\udfff" else "control characters"
        raise ValueError(f"must not contain {kind} (U+{ord(character):04X})")
    return name_key(name)


def name_key(name: str) -> str:
    """The form names are compared in: NFC. Names stored before `normalize_name` may not be in it, so the
    stores index every name by this."""
    return name if name.isascii() else unicodedata.normalize("NFC", name)

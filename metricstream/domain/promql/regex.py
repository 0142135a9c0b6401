"""PromQL's `=~` and `!~` patterns: Go's RE2 syntax, fully anchored, run by Python's `re`.

Prometheus anchors a pattern as `^(?:pattern)$` and compiles it with Go's `regexp` (RE2 syntax); here the
pattern is read token by token as RE2 reads it and written out as a Python pattern that means the same,
matched with `re.fullmatch`. What RE2 refuses (lookarounds, backreferences, possessive quantifiers) or
Python would read differently and that has no faithful translation here (POSIX classes `[[:alpha:]]`,
Unicode classes `\\pL`, `\\Q...\\E`, `\\x{...}`, the `U` and `m` flags, flags after the pattern's start) is
refused with a message naming it, never matched some other way. Translated: `\\d \\w \\s` and `\\b \\B`
as RE2's ASCII classes (Python's are Unicode), `$` and `\\z` as the end of the text (Python's `$` also
matches before a final newline), `\\A`, and every character of a class escaped, so that Python sees no
nested set or set operation where RE2 sees literal characters.

RE2 matches in linear time; Python's engine backtracks, and a pattern such as `(a+)+b` or `(a|aa)*` takes
exponential time on a value of a few dozen characters. So a repeated group may hold no repetition or
alternation of its own, and a pattern at most `MAX_REPETITIONS` repetitions: with label values of at most
1,024 characters, what is left is matched in bounded time.
"""

from __future__ import annotations

import functools
import re
from typing import Final

from ...errors import ValidationError

__all__ = ["MAX_REPETITIONS", "compile_pattern"]

# RE2's Perl classes, as Python classes: RE2 means ASCII by them, Python Unicode.
_CLASSES: Final = {"d": "0-9", "w": "0-9A-Za-z_", "s": "\\t\\n\\f\\r "}
_NEGATED: Final = {"D": "d", "W": "w", "S": "s"}
_WORD: Final = "[0-9A-Za-z_]"
_BOUNDARY: Final = f"(?:(?<={_WORD})(?!{_WORD})|(?<!{_WORD})(?={_WORD}))"
_NOT_BOUNDARY: Final = f"(?:(?<={_WORD})(?={_WORD})|(?<!{_WORD})(?!{_WORD}))"
_SIMPLE_ESCAPES: Final = {"a": "\\a", "f": "\\f", "t": "\\t", "n": "\\n", "r": "\\r", "v": "\\v"}
_REPEAT: Final = re.compile(r"\{(\d+)(,(\d*))?\}")
# RE2's limit on a counted repetition.
_MAX_REPEAT: Final = 1000
# Repetitions (`*`, `+`, `?`, `{n,m}`) a pattern may hold.
MAX_REPETITIONS: Final = 5


@functools.lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """`pattern` (RE2 syntax) as a Python pattern to `fullmatch` label values with; a `ValidationError`
    naming what is refused."""
    try:
        return re.compile(_Translator(pattern).translate())
    except re.error as error:
        raise ValidationError(f"invalid regular expression {pattern!r}: {error}") from None


class _Translator:
    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.position = 0
        self.out: list[str] = []
        # Whether the last thing written can take a quantifier.
        self.repeatable = False
        # Per open group: whether it holds a repetition or an alternation.
        self.groups: list[bool] = []
        # Whether the last thing written is a group holding one.
        self.complex_group = False
        self.repetitions = 0

    def refuse(self, what: str) -> ValidationError:
        return ValidationError(
            f"unsupported in metricstream's PromQL subset: {what} in the regular expression {self.pattern!r}"
        )

    def translate(self) -> str:
        pattern = self.pattern
        self._leading_flags()
        while self.position < len(pattern):
            char = pattern[self.position]
            self.position += 1
            if char == "\\":
                self._escape()
            elif char == "[":
                self._class()
            elif char == "(":
                self._group()
            elif char in "*+?":
                self._quantifier(char)
            elif char == "{" and (match := _REPEAT.match(pattern, self.position - 1)):
                self._counted(match)
            elif char == "$":
                self._emit("\\Z", repeatable=False)
            elif char == "^":
                self._emit("\\A", repeatable=False)
            elif char == ")":
                self._close_group()
            elif char == "|":
                if self.groups:
                    self.groups[-1] = True
                self._emit(char, repeatable=False)
            elif char == ".":
                self._emit(".", repeatable=True)
            else:  # a literal, `{` and `}` that open no repetition included (RE2 reads them so)
                self._emit(re.escape(char), repeatable=True)
        return "".join(self.out)

    def _emit(self, text: str, *, repeatable: bool) -> None:
        self.out.append(text)
        self.repeatable = repeatable
        self.complex_group = False

    def _open_group(self, text: str) -> None:
        self.groups.append(False)
        self._emit(text, repeatable=False)

    def _close_group(self) -> None:
        holds = self.groups.pop() if self.groups else False
        if self.groups and holds:
            self.groups[-1] = True
        self._emit(")", repeatable=True)
        self.complex_group = holds

    def _repeat(self, text: str) -> None:
        """A quantifier, refused on a group that repeats or alternates itself (exponential in Python)."""
        if self.complex_group:
            raise self.refuse("a repeated group holding a repetition or an alternation")
        self.repetitions += 1
        if self.repetitions > MAX_REPETITIONS:
            raise self.refuse(f"more than {MAX_REPETITIONS} repetitions")
        if self.groups:
            self.groups[-1] = True
        self._emit(text, repeatable=False)

    def _leading_flags(self) -> None:
        """`(?i)`, `(?s)` or both at the very start: Python takes global flags only there."""
        match = re.match(r"\(\?([a-zA-Z]+)\)", self.pattern)
        if match is None:
            return
        flags = match[1]
        if set(flags) - {"i", "s"} or len(set(flags)) != len(flags):
            raise self.refuse(f"the flags (?{flags})")
        self.out.append(f"(?{flags})")
        self.position = match.end()

    def _escape(self) -> None:
        if self.position >= len(self.pattern):
            raise ValidationError(f"invalid regular expression {self.pattern!r}: trailing backslash")
        char = self.pattern[self.position]
        self.position += 1
        if char in _CLASSES:
            self._emit(f"[{_CLASSES[char]}]", repeatable=True)
        elif char in _NEGATED:
            self._emit(f"[^{_CLASSES[_NEGATED[char]]}]", repeatable=True)
        elif char in _SIMPLE_ESCAPES:
            self._emit(_SIMPLE_ESCAPES[char], repeatable=True)
        elif char == "b":
            self._emit(_BOUNDARY, repeatable=False)
        elif char == "B":
            self._emit(_NOT_BOUNDARY, repeatable=False)
        elif char in "Az":
            self._emit("\\A" if char == "A" else "\\Z", repeatable=False)
        elif char == "x":
            self._emit(self._hex(), repeatable=True)
        elif char.isascii() and not char.isalnum():
            self._emit(re.escape(char), repeatable=True)
        else:
            raise self.refuse(f"the escape \\{char}")

    def _hex(self) -> str:
        digits = self.pattern[self.position : self.position + 2]
        if len(digits) != 2 or not all(c in "0123456789abcdefABCDEF" for c in digits):
            raise self.refuse("a \\x escape other than two hex digits")
        self.position += 2
        return f"\\x{digits}"

    def _class(self) -> None:
        """A bracketed class, each member written escaped: `[]a]` and `[a-z]` as RE2 reads them."""
        pattern, parts = self.pattern, ["["]
        if pattern.startswith("^", self.position):
            parts.append("^")
            self.position += 1
        first = True
        while True:
            if self.position >= len(pattern):
                raise ValidationError(f"invalid regular expression {pattern!r}: missing closing ]")
            char = pattern[self.position]
            self.position += 1
            if char == "]" and not first:
                break
            first = False
            if char == "[" and pattern.startswith(":", self.position):
                raise self.refuse("a POSIX class such as [[:alpha:]]")
            if char == "\\":
                parts.append(self._class_escape())
            elif char == "-" and len(parts) > 1 and not pattern.startswith("]", self.position):
                parts.append("-")
            else:
                parts.append(re.escape(char))
        parts.append("]")
        self._emit("".join(parts), repeatable=True)

    def _class_escape(self) -> str:
        if self.position >= len(self.pattern):
            raise ValidationError(f"invalid regular expression {self.pattern!r}: trailing backslash")
        char = self.pattern[self.position]
        self.position += 1
        if char in _CLASSES:
            return _CLASSES[char]
        if char in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[char]
        if char == "x":
            return self._hex()
        if char.isascii() and not char.isalnum():
            return re.escape(char)
        raise self.refuse(f"the escape \\{char} in a class")

    def _group(self) -> None:
        pattern = self.pattern
        if not pattern.startswith("?", self.position):
            self._open_group("(")
            return
        rest = pattern[self.position + 1 :]
        if rest.startswith(":"):
            self.position += 2
            self._open_group("(?:")
        elif match := re.match(r"P<([A-Za-z_][A-Za-z0-9_]*)>", rest):
            self.position += 1 + match.end()
            self._open_group(f"(?P<{match[1]}>")
        elif match := re.match(r"([is]+):", rest):
            self.position += 1 + match.end()
            self._open_group(f"(?{match[1]}:")
        else:
            raise self.refuse(f"the group (?{rest[:8]}")

    def _quantifier(self, char: str) -> None:
        if not self.repeatable:
            raise ValidationError(f"invalid regular expression {self.pattern!r}: missing argument to {char}")
        self._repeat(char + self._lazy())

    def _counted(self, match: re.Match[str]) -> None:
        low, comma, high = match[1], match[2], match[3]
        if int(low) > _MAX_REPEAT or (high and int(high) > _MAX_REPEAT):
            raise ValidationError(f"invalid regular expression {self.pattern!r}: repeat count over 1000")
        if not self.repeatable:
            raise ValidationError(f"invalid regular expression {self.pattern!r}: missing argument to {{")
        self.position = match.end()
        text = f"{{{low}{',' + high if comma else ''}}}" if not comma or high else f"{{{low},}}"
        self._repeat(text + self._lazy())

    def _lazy(self) -> str:
        if self.pattern.startswith("?", self.position):
            self.position += 1
            return "?"
        if self.pattern.startswith("+", self.position):
            raise self.refuse("a possessive quantifier")
        return ""

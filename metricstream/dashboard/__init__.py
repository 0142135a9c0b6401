"""The live dashboard: static files shipped as package data beside this module (index.html, the style sheet
and the script as ES modules, main.js first), read once, with the ETags and headers they are served with.
Knows nothing of Quart: `web/routes.py` serves them.

An asset asked for by its current hash (`?v=<its ETag>`) may be cached for good. index.html links its
assets so, and each module's relative imports (`from "./format.js"`) are rewritten here to name their
module's hash too. A module's hash covers those rewritten imports, so a changed module changes the URL of
every module that imports it, directly or not, up to the page: a browser never runs a new module with an
old one, and no build step is needed.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from typing import Final

__all__ = [
    "HEADERS",
    "LOOPBACK_ANCESTORS",
    "DashboardFile",
    "dashboard_files",
    "dashboard_headers",
    "read_dashboard_files",
]

_TYPES: Final = {
    "html": "text/html; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
}
# Who may show the page in a frame (clickjacking: docs/security.md): itself, and pages served from this
# machine, such as a notebook's on another port. CSP has no syntax for an IPv6 literal: Chromium refuses
# `http://[::1]:*` with a console error. No X-Frame-Options: it cannot name origins, and browsers that
# know frame-ancestors ignore it; SAMEORIGIN would only keep old ones from showing the board in a notebook.
LOOPBACK_ANCESTORS: Final = (
    "'self'",
    "http://localhost:*",
    "http://127.0.0.1:*",
    "https://localhost:*",
    "https://127.0.0.1:*",
)
HEADERS: Final = {
    "X-Content-Type-Options": "nosniff",
    # The page talks to its own origin only; the policy makes the browser hold it to that.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    f"frame-ancestors {' '.join(LOOPBACK_ANCESTORS)}",
    "Referrer-Policy": "no-referrer",
}
_POLICY: Final = "Content-Security-Policy"


def dashboard_headers(frame_ancestors: Sequence[str] = ()) -> dict[str, str]:
    """`HEADERS`, with the origins of the `frame_ancestors` setting also allowed to frame the page (`*`:
    any page)."""
    if not frame_ancestors:
        return dict(HEADERS)
    sources = (
        "*" if "*" in frame_ancestors else " ".join(dict.fromkeys([*LOOPBACK_ANCESTORS, *frame_ancestors]))
    )
    directives = [item for item in HEADERS[_POLICY].split("; ") if not item.startswith("frame-ancestors ")]
    return {**HEADERS, _POLICY: "; ".join([*directives, f"frame-ancestors {sources}"])}


@dataclass(frozen=True, slots=True)
class DashboardFile:
    body: bytes
    content_type: str
    etag: str


# The specifier of an import or re-export at the start of a line: `import "./x.js"`, `import { a } from
# "./x.js"` (over several lines too), `export * from "./x.js"`. Declarations (`export const a = "./b"`) do
# not match: no parenthesis or `=` may come before `from`.
_IMPORT: Final = re.compile(
    r"""^(import\s*|(?:import|export)\b[^;"'`()=]*?\bfrom\s*)(["'])([^"']*)\2""", re.M
)


@functools.cache
def dashboard_files() -> dict[str, DashboardFile]:
    """The dashboard's files, read once (`read_dashboard_files` of this package's folder)."""
    return read_dashboard_files(importlib.resources.files(__name__))


def read_dashboard_files(folder: Traversable) -> dict[str, DashboardFile]:
    """index.html and the assets beside it (*.css, *.js) in `folder`, each module's imports and the page's
    links pinned to the current hash of what they name. A module may import only `./<name>.js` of the
    same folder, and modules may not import each other in a cycle (no hash could pin it): else ValueError.
    """
    sources = {
        entry.name: entry.read_text(encoding="utf-8")
        for entry in folder.iterdir()
        if entry.name.endswith((".css", ".js"))
    }
    files: dict[str, DashboardFile] = {}

    def pinned(name: str, importers: tuple[str, ...]) -> DashboardFile:
        if name in files:
            return files[name]
        if name in importers:
            raise ValueError(
                f"dashboard modules import each other in a cycle: {' -> '.join([*importers, name])}"
            )

        def pin(match: re.Match[str]) -> str:
            prefix, quote, specifier = match.groups()
            target = specifier.removeprefix("./")
            if specifier == target or not target.endswith(".js") or target not in sources:
                raise ValueError(f"dashboard/{name} imports {specifier!r}: not ./<name>.js of its folder")
            return f"{prefix}{quote}{specifier}?v={pinned(target, (*importers, name)).etag}{quote}"

        body = _IMPORT.sub(pin, sources[name]) if name.endswith(".js") else sources[name]
        files[name] = _file(name, body)
        return files[name]

    for name in sorted(sources):
        pinned(name, ())
    page = folder.joinpath("index.html").read_text(encoding="utf-8")
    for name, file in files.items():
        page = page.replace(f'"dashboard/{name}"', f'"dashboard/{name}?v={file.etag}"')
    files["index.html"] = _file("index.html", page)
    return files


def _file(name: str, text: str) -> DashboardFile:
    body = text.encode()
    return DashboardFile(body, _TYPES[name.rpartition(".")[2]], hashlib.sha256(body).hexdigest()[:20])

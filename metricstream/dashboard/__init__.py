"""The live dashboard: static files shipped as package data beside this module, read once, with the ETags
and headers they are served with. Knows nothing of Quart: `app.py` serves them.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

__all__ = ["HEADERS", "LOOPBACK_ANCESTORS", "DashboardFile", "dashboard_files", "dashboard_headers"]

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


@functools.cache
def dashboard_files() -> dict[str, DashboardFile]:
    """The dashboard's files, read once. index.html links each asset with `?v=<its hash>`: an asset asked
    for by its current hash may be cached for good, and a new version is fetched with the new page."""
    folder = importlib.resources.files(__name__)
    files: dict[str, DashboardFile] = {}
    for name in ("dashboard.css", "dashboard.js"):
        body = folder.joinpath(name).read_bytes()
        files[name] = DashboardFile(
            body, _TYPES[name.rpartition(".")[2]], hashlib.sha256(body).hexdigest()[:20]
        )
    page = folder.joinpath("index.html").read_text(encoding="utf-8")
    for name, file in files.items():
        page = page.replace(f'"dashboard/{name}"', f'"dashboard/{name}?v={file.etag}"')
    body = page.encode()
    files["index.html"] = DashboardFile(body, _TYPES["html"], hashlib.sha256(body).hexdigest()[:20])
    return files

"""The live dashboard: static files shipped as package data beside this module, read once, with the ETags
and headers they are served with. Knows nothing of Quart: `app.py` serves them.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
from dataclasses import dataclass
from typing import Final

__all__ = ["HEADERS", "DashboardFile", "dashboard_files"]

_TYPES: Final = {
    "html": "text/html; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
}
HEADERS: Final = {
    "X-Content-Type-Options": "nosniff",
    # The page talks to its own origin only; the policy makes the browser hold it to that.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


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

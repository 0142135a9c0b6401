"""The tokens of the secured hubs in the access tests (each at least 16 characters, as the settings ask)."""

from __future__ import annotations

WRITE = "write-token-0123456789abcdef"
READ = "read-token-0123456789abcdef"

"""Certificates for the HTTPS tests; the `certificates` fixture in tests/conftest.py makes them (trustme)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Certificates:
    """A throwaway CA (trustme) and the server certificate it issued for 127.0.0.1 and localhost."""

    ca: Path  # the CA's certificate: what a client is told to trust (`verify=`)
    certfile: Path  # the server's certificate, then its chain up to the CA
    keyfile: Path  # the server's private key

    def context(self) -> ssl.SSLContext:
        """A client context that trusts the CA (and nothing else)."""
        return ssl.create_default_context(cafile=str(self.ca))

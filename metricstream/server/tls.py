"""HTTPS: the certificate and key a server is given (`certfile`, `keyfile`), checked before it starts, and
the pin with which a Hub's own subscriber knows its server. hypercorn serves them (`serving.py`); this
module only reads them, with the standard library's `ssl`.
"""

from __future__ import annotations

import re
import ssl
from typing import Final, NoReturn

from ..errors import ValidationError
from ..settings import Settings

__all__ = ["ALPN", "check_certificate", "pinned_context"]

# HTTP/2 for every client that offers it, HTTP/1.1 for the others.
ALPN: Final = ("h2", "http/1.1")
_PEM_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


def check_certificate(settings: Settings) -> None:
    """Raise `ValidationError` unless `certfile` and `keyfile` (when set) can be read and are a PEM
    certificate and its private key: at start, before the port is taken, rather than as hypercorn's
    error in the server's thread."""
    if settings.certfile is None or settings.keyfile is None:
        return
    for name, path in (("certfile", settings.certfile), ("keyfile", settings.keyfile)):
        try:
            with open(path, "rb"):  # ssl's own errors do not say which file is missing
                pass
        except OSError as error:
            message = f"invalid settings: {name}: cannot read {path!r}: {error.strerror}"
            raise ValidationError(message) from None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(settings.certfile, settings.keyfile, password=_no_password)
    except ssl.SSLError as error:
        raise ValidationError(
            f"invalid settings: certfile {settings.certfile!r} and keyfile {settings.keyfile!r} are not a "
            f"PEM certificate and its private key ({error.reason or error})"
        ) from None


def _no_password() -> NoReturn:
    # Without a callback OpenSSL would prompt on the terminal, from the server's thread.
    raise ValidationError("invalid settings: keyfile is encrypted; give the key unencrypted")


def pinned_context(certfile: str) -> ssl.SSLContext:
    """A client context that trusts exactly the first certificate in `certfile` (the server's own, not
    the CAs after it), whatever names it holds: how `Hub.subscribe()` reaches its own hub, by the
    address it is bound to, under a certificate that may name only the host's public name."""
    with open(certfile, "rb") as file:
        found = _PEM_CERTIFICATE.search(file.read())
    if found is None:
        raise ValidationError(f"invalid settings: certfile {certfile!r} holds no PEM certificate")
    context = ssl.create_default_context(cadata=found.group().decode("ascii"))
    # The pin is the certificate itself: trusted as a whole chain, none of its names checked.
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    context.check_hostname = False
    return context

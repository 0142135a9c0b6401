"""One typed definition of every setting, with three faces.

- `Hub(max_clients=...)` / `create_app(max_clients=...)` keyword arguments,
- `metricstream serve --max-clients ...` flags (built from the fields below by `cli.py`),
- `METRICSTREAM_MAX_CLIENTS=...` environment variables (pydantic-settings reads them).

A `bool` setting is a flag without a value (`--demo`) and a variable such as `METRICSTREAM_DEMO=1`. A list
(`cors_origins`) is comma-separated as a flag or variable, a list in Python. Tokens are `SecretStr`s, so a
printed `Settings` never shows them; prefer the variable to the flag, which other users can see in `ps`.

Keyword arguments and flags win over the environment, which wins over the defaults. A limit that is on by
default and can be lifted (`max_future`) is lifted by `none` as a flag or variable, None in Python.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .errors import ValidationError
from .wire import MAX_NAME_LENGTH

__all__ = ["Settings"]

ENV_PREFIX = "METRICSTREAM_"
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
MIN_TOKEN_LENGTH = 16
# RFC 6750 b64token: what an Authorization: Bearer header can carry unquoted.
_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*://[^/?#\s]+")
# A name (or a .suffix), or an [IPv6] address.
_HOST = re.compile(r"\.?[a-z0-9_-]+(\.[a-z0-9_-]+)*|\[[0-9a-f:.]+\]")
# A CSP host-source: scheme://host, `*.` taking subdomains, `:port` or `:*`. Nothing else, so no entry can
# add a directive to the policy (`;`) or a source (a space); CSP has no syntax for IPv6 literals.
_ANCESTOR = re.compile(r"[a-z][a-z0-9+.-]*://(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)*(:(\d{1,5}|\*))?")


class Settings(BaseSettings):
    """Server settings; every field is also a CLI flag and a `METRICSTREAM_*` variable."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    host: str = Field("127.0.0.1", description="Interface to bind.")
    store: str = Field(
        "memory://",
        description="Where data lives: memory://, sqlite:///path/to.db or redis://host:port/db.",
    )
    port: int = Field(8089, ge=0, le=65535, description="TCP port to bind; 0 picks a free one.")
    line_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="TCP port of the Influx line-protocol listener, on the same host (TLS too with "
        "certfile); 0 picks a free one. Unset: no listener. With a token, a connection's first line is "
        "`auth <token>` (docs/ingest.md).",
    )
    max_clients: int = Field(
        10_000, ge=1, description="Most SSE clients at once; a new one evicts the oldest."
    )
    client_buffer: int = Field(
        1024, ge=1, description="Events a client may fall behind before it is dropped as slow."
    )
    write_timeout: float = Field(
        10.0, gt=0, description="Seconds one write to a client may take before it is dropped."
    )
    flush_interval: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Seconds to gather events before writing them to clients in one write each "
        "(more throughput under load, that much more latency); 0 writes at once.",
    )
    loop: Literal["asyncio", "uvloop"] = Field(
        "asyncio",
        description="Event loop of `metricstream serve` and `Hub`: asyncio, or uvloop (the `uvloop` "
        "extra), whose cheaper socket writes carry more events to many clients (docs/performance.md).",
    )
    event_ttl: float = Field(
        60.0, gt=0, description="Seconds events are retained for replay after Last-Event-ID."
    )
    heartbeat: float = Field(
        15.0, gt=0, description="Seconds without traffic before a `: ping` comment is sent."
    )
    retry: int = Field(
        2000, ge=0, description="Reconnection delay (ms) advised to clients in the `retry:` field."
    )
    shutdown_timeout: float = Field(10.0, gt=0, description="Seconds a graceful shutdown may take at most.")
    max_batch: int = Field(10_000, ge=1, description="Most readings in one POST /metrics/readings/batch.")
    max_body: int = Field(
        1024 * 1024,
        ge=1,
        description="Largest request body in bytes (a batch: 16 times this); larger ones get 413.",
    )
    reading_ttl: float | None = Field(
        None,
        gt=0,
        description="Seconds readings are kept, by their timestamp: older ones are removed (at write "
        "time and in the background) and a write of one is refused with 400. Unset keeps every reading.",
    )
    max_future: float | None = Field(
        300.0,  # a sensor whose clock runs a few minutes fast still gets through
        ge=0,
        description="Seconds a reading's timestamp may be ahead of the server's clock; a write of a later "
        "one is refused with 400. `none` (None in Python) accepts any.",
    )
    stale_after: float | None = Field(
        300.0,  # Prometheus's lookback: an older sample is no instant query's answer anyway
        gt=0,
        description="Seconds after its newest reading's timestamp that a metric is left out of "
        "GET /metrics/export (the Prometheus scrape of the readings); `none` (None in Python) keeps "
        "every metric that has a reading.",
    )
    # --- limits and security (docs/configuration.md#limits, docs/security.md) ---
    max_name_length: int = Field(
        MAX_NAME_LENGTH,
        ge=1,
        le=MAX_NAME_LENGTH,
        description=f"Longest metric name in characters (after trimming); at most {MAX_NAME_LENGTH}.",
    )
    max_metrics: int = Field(
        10_000, ge=1, description="Most metrics the store may hold; creating one more answers 409."
    )
    max_readings_per_metric: int = Field(
        1_000_000,
        ge=1,
        description="Readings kept per metric; a write beyond it drops that metric's oldest readings "
        "(by timestamp).",
    )
    token: SecretStr | None = Field(
        None,
        description="Bearer token every write (POST) must send as `Authorization: Bearer <token>`; "
        "it also grants reads. Unset: writes are not authenticated (keep host on loopback).",
    )
    subscribe_token: SecretStr | None = Field(
        None,
        description="Bearer token for reads (GET /metrics...) and the stream, which also accepts it as "
        "`?access_token=`. Unset: reads and the stream are open.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        [],  # copied for each Settings, as pydantic does with every default
        description="Web origins allowed to call the API from a browser (CORS), e.g. "
        "https://a.example,https://b.example (comma-separated as a flag or variable); `*` alone allows any; "
        "empty: no CORS headers at all.",
    )
    frame_ancestors: Annotated[list[str], NoDecode] = Field(
        [],
        description="Web origins whose pages may show the dashboard in a frame, besides its own and any "
        "page served from this machine (localhost, 127.0.0.1: a notebook's), e.g. "
        "https://notebooks.example,https://*.example.org (comma-separated as a flag or variable); "
        "`*` alone allows any.",
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        [],
        description="Host names this server answers to besides localhost, 127.0.0.1 and [::1], against DNS "
        "rebinding: checked while no `token` is set, and whenever this is set. E.g. "
        "lab.example,.example.org (a leading dot takes subdomains too; comma-separated as a flag or "
        "variable); `*` alone allows any.",
    )
    # --- HTTPS (docs/security.md#https): both or neither; read at start, so a bad file fails it ---
    certfile: str | None = Field(
        None,
        description="PEM file of the server's certificate (its chain after it) to serve HTTPS, and HTTP/2 "
        "to clients that offer it (ALPN h2, http/1.1); needs keyfile. Unset: plain HTTP.",
    )
    keyfile: str | None = Field(None, description="PEM file of the private key of certfile; needs certfile.")
    positive_only: bool = Field(
        True,
        description="Accept only reading values > 0, as the original service did; false accepts any "
        "finite number (0 % CPU, -5 °C, deltas).",
    )
    demo: bool = Field(False, description="Post random-walk readings for a few demo metrics.")
    # Only `serve` installs a log handler; a library (Hub, create_app) must leave that to the program.
    log_level: str = Field(
        "info",
        description="Least severe log lines `metricstream serve` writes to stderr: debug, info, warning, "
        "error or critical. Hub and create_app never install a handler: configure `logging` yourself.",
    )

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().lower()
        if level not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return level

    @field_validator("max_future", "stale_after", mode="before")
    @classmethod
    def _none_is_unlimited(cls, value: object) -> object:
        """`none` from a flag or variable is None, as a number there is a number."""
        return None if isinstance(value, str) and value.strip().lower() == "none" else value

    @field_validator("token", "subscribe_token")
    @classmethod
    def _strong_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        secret = value.get_secret_value()
        if len(secret) < MIN_TOKEN_LENGTH:
            raise ValueError(
                f"must be at least {MIN_TOKEN_LENGTH} characters; make one with "
                "python -c 'import secrets; print(secrets.token_urlsafe())'"
            )
        if not _TOKEN.fullmatch(secret):
            raise ValueError("may hold only letters, digits and - . _ ~ + / (then = padding)")
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origin_list(cls, value: object) -> object:
        """Exact origins, compared lower-cased, or `*` alone."""
        return _listed(
            value,
            lambda item: item.strip().lower(),
            _ORIGIN,
            "origin",
            lambda origin: f"{origin!r} is not an origin such as https://example.org or http://host:8080",
        )

    @field_validator("frame_ancestors", mode="before")
    @classmethod
    def _ancestor_list(cls, value: object) -> object:
        """CSP `frame-ancestors` sources, lower-cased, or `*` alone."""
        return _listed(
            value,
            lambda item: item.strip().lower(),
            _ANCESTOR,
            "origin",
            lambda origin: (
                f"{origin!r} is not an origin such as https://example.org, https://*.example.org "
                "or http://host:* (a host name or IPv4 address: CSP cannot name an IPv6 one)"
            ),
        )

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _host_list(cls, value: object) -> object:
        """Host names (a leading dot takes subdomains too), lower-cased, no final dot; or `*` alone."""
        return _listed(
            value,
            lambda item: item.strip().lower().rstrip("."),
            _HOST,
            "host",
            lambda host: f"{host!r} is not a host name such as lab.example or .example.org",
        )

    @field_validator("certfile", "keyfile")
    @classmethod
    def _path_or_unset(cls, value: str | None) -> str | None:
        return value if value is None or value.strip() else None  # an empty variable means unset

    @model_validator(mode="after")
    def _certificate_with_key(self) -> Settings:
        if (self.certfile is None) != (self.keyfile is None):
            given, missing = ("certfile", "keyfile") if self.keyfile is None else ("keyfile", "certfile")
            raise ValueError(f"{given} is set but {missing} is not: HTTPS needs both, or neither for HTTP")
        return self

    @classmethod
    def build(cls, **overrides: Any) -> Settings:
        """Settings from the environment, with `overrides` on top. None means "not given", but for a
        setting whose default is not None and which takes None (`max_future=None`: no limit)."""
        given = {
            name: value for name, value in overrides.items() if value is not None or name in _NONE_IS_A_VALUE
        }
        unknown = sorted(set(given) - set(cls.model_fields))
        if unknown:
            raise TypeError(f"unknown setting(s): {', '.join(unknown)}")
        try:
            return cls(**given)
        except Exception as exc:  # pydantic's ValidationError, reworded for people
            raise ValidationError(f"invalid settings: {_describe(exc)}") from None


# Settings for which None is a value other than their default, so an explicit None is not "not given".
_NONE_IS_A_VALUE = frozenset(
    name
    for name, field in Settings.model_fields.items()
    if field.default is not None and type(None) in typing.get_args(field.annotation)
)


def _listed(
    value: object,
    clean: Callable[[str], str],
    valid: re.Pattern[str],
    noun: str,
    invalid: Callable[[str], str],
) -> object:
    """A comma-separated string (flag, variable) or a list (Python) of entries, each cleaned and checked
    against `valid`, duplicates dropped; or `*` alone."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple | set | frozenset):
        return value  # pydantic reports the wrong type
    entries = [clean(str(item)) for item in items if str(item).strip()]
    for entry in entries:
        if entry != "*" and not valid.fullmatch(entry):
            raise ValueError(invalid(entry))
    if "*" in entries and len(entries) > 1:
        raise ValueError(f"`*` allows every {noun}: give it alone, or list the {noun}s")
    return list(dict.fromkeys(entries))


def _describe(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if errors is None:
        return str(exc)
    parts = []
    for error in errors():
        field = ".".join(str(part) for part in error["loc"])
        # Our validators' own words as they are; an error with no field is a rule across settings.
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{field}: {message}" if field else message)
    return "; ".join(parts)

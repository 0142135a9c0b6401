"""One typed definition of every setting, with three faces.

- `Hub(max_clients=...)` / `create_app(max_clients=...)` keyword arguments,
- `metricstream serve --max-clients ...` flags (built from the fields below by `cli.py`),
- `METRICSTREAM_MAX_CLIENTS=...` environment variables (pydantic-settings reads them).

A `bool` setting is a flag without a value (`--demo`) and a variable such as `METRICSTREAM_DEMO=1`.

Keyword arguments and flags win over the environment, which wins over the defaults.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ValidationError

__all__ = ["Settings"]

ENV_PREFIX = "METRICSTREAM_"
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class Settings(BaseSettings):
    """Server settings; every field is also a CLI flag and a `METRICSTREAM_*` variable."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    host: str = Field("127.0.0.1", description="Interface to bind.")
    store: str = Field(
        "memory://",
        description="Where data lives: memory://, sqlite:///path/to.db or redis://host:port/db.",
    )
    port: int = Field(8089, ge=0, le=65535, description="TCP port to bind; 0 picks a free one.")
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

    @classmethod
    def build(cls, **overrides: Any) -> Settings:
        """Settings from the environment, with `overrides` (None meaning "not given") on top."""
        given = {name: value for name, value in overrides.items() if value is not None}
        unknown = sorted(set(given) - set(cls.model_fields))
        if unknown:
            raise TypeError(f"unknown setting(s): {', '.join(unknown)}")
        try:
            return cls(**given)
        except Exception as exc:  # pydantic's ValidationError, reworded for people
            raise ValidationError(f"invalid settings: {_describe(exc)}") from None


def _describe(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if errors is None:
        return str(exc)
    parts = []
    for error in errors():
        field = ".".join(str(part) for part in error["loc"]) or "settings"
        parts.append(f"{field}: {error['msg']}")
    return "; ".join(parts)

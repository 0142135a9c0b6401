"""A `Hub` before it starts: its settings from keywords and the environment, the errors bad ones raise,
and what it says of itself. Started hubs are tested in tests/e2e/test_hub.py."""

from __future__ import annotations

from typing import Any

import pytest

from metricstream.errors import HubError, ValidationError
from metricstream.server.hub import Hub
from tests.support.repr_table import ReprTable


def test_url_before_start_raises_hub_error() -> None:
    with pytest.raises(HubError, match="not been started"):
        _ = Hub(port=0).url


def test_repr_html_escapes_what_it_shows() -> None:
    html = Hub(host="<script>alert(1)</script>", port=0)._repr_html_()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert ReprTable(html).rows == {"URL": "to listen on <script>alert(1)</script>:0", "State": "new"}


def test_settings_from_environment_and_keywords_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICSTREAM_MAX_CLIENTS", "7")
    monkeypatch.setenv("METRICSTREAM_CLIENT_BUFFER", "64")
    from_env = Hub(port=0)
    assert from_env.settings.max_clients == 7
    assert from_env.settings.client_buffer == 64
    assert Hub(port=0, max_clients=5).settings.max_clients == 5
    monkeypatch.setenv("METRICSTREAM_PORT", "0")
    assert Hub().settings.port == 0


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"max_clients": 0}, "max_clients"),
        ({"port": 70000}, "port"),
        ({"port": -1}, "port"),
        ({"heartbeat": "soon"}, "heartbeat"),
        ({"event_ttl": 0}, "event_ttl"),
        ({"shutdown_timeout": -1}, "shutdown_timeout"),
    ],
)
def test_invalid_settings_raise_validation_error(settings: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=f"invalid settings: {field}: ") as caught:
        Hub(**settings)
    assert isinstance(caught.value, ValueError)
    assert "\n" not in str(caught.value)  # one readable line, not pydantic's dump


def test_invalid_environment_setting_raises_validation_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICSTREAM_MAX_CLIENTS", "lots")
    with pytest.raises(ValidationError, match="max_clients"):
        Hub(port=0)


def test_unknown_setting_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="max_client"):
        Hub(port=0, max_client=5)

"""`create_app()` (`web/application.py`): settings from keywords and the environment, and the errors bad
ones raise. The app under a server of one's own: tests/e2e/test_cli.py."""

from __future__ import annotations

import pytest

import metricstream
from metricstream.errors import ValidationError
from metricstream.web.application import MetricStreamApp


def test_create_app_settings_faces(monkeypatch: pytest.MonkeyPatch) -> None:
    app = metricstream.create_app(max_clients=3)
    assert isinstance(app, MetricStreamApp)
    assert callable(app)
    assert app.settings.max_clients == 3
    assert app.broadcaster.max_clients == 3
    monkeypatch.setenv("METRICSTREAM_MAX_CLIENTS", "7")
    assert metricstream.create_app().settings.max_clients == 7
    assert metricstream.create_app(max_clients=3).settings.max_clients == 3
    with pytest.raises(ValidationError, match="max_clients"):
        metricstream.create_app(max_clients=0)
    with pytest.raises(TypeError, match="max_client"):
        metricstream.create_app(max_client=3)

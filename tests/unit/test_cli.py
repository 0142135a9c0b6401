"""The command line's parser (`metricstream/cli.py`): every bool setting is a switch both ways. `metricstream
serve` itself runs as a subprocess in tests/e2e/test_cli.py."""

from __future__ import annotations

from metricstream.cli import build_parser
from metricstream.settings import Settings


def test_bool_settings_are_switches() -> None:
    switches = [name for name, field in Settings.model_fields.items() if field.annotation is bool]
    assert "demo" in switches
    parser = build_parser()
    for name in switches:
        assert vars(parser.parse_args(["serve", "--" + name.replace("_", "-")]))[name] is True
        assert vars(parser.parse_args(["serve", "--no-" + name.replace("_", "-")]))[name] is False
        assert vars(parser.parse_args(["serve"]))[name] is None  # left to METRICSTREAM_* or the default

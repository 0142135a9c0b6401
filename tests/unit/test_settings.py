"""`Settings`: defaults, bounds and validation, the METRICSTREAM_* variables, and the CLI flags of the
settings that have them. The same settings reaching a running server are tested end to end in tests/e2e/."""

from __future__ import annotations

import pytest

from metricstream.cli import build_parser
from metricstream.errors import ValidationError
from metricstream.server.hub import Hub
from metricstream.settings import Settings
from metricstream.wire import MAX_NAME_LENGTH
from metricstream.wire import MAX_NAME_LENGTH as SETTINGS_MAX_NAME_LENGTH
from tests.support.tls import Certificates
from tests.support.tokens import READ, WRITE


def test_the_settings_defaults_are_safe() -> None:
    settings = Settings.build()
    assert settings.max_name_length == 200
    assert settings.max_metrics == 10_000
    assert settings.max_readings_per_metric == 1_000_000
    assert settings.max_body == 1024 * 1024
    assert settings.max_batch == 10_000
    assert MAX_NAME_LENGTH == SETTINGS_MAX_NAME_LENGTH  # the model's ceiling is the setting's


def test_name_length_cannot_exceed_200() -> None:
    with pytest.raises(ValidationError, match="max_name_length"):
        Settings.build(max_name_length=201)


def test_stale_after_setting_faces(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.build().stale_after == 300
    assert Settings.build(stale_after=None).stale_after is None  # Python's None: export every metric
    monkeypatch.setenv("METRICSTREAM_STALE_AFTER", "none")
    assert Settings.build().stale_after is None
    monkeypatch.setenv("METRICSTREAM_STALE_AFTER", "60")
    assert Settings.build().stale_after == 60
    for bad in (0, -1, "soon"):
        with pytest.raises(ValidationError, match="stale_after"):
            Settings.build(stale_after=bad)


def test_max_future_setting_faces(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.build().max_future == 300
    assert Settings.build(max_future=None).max_future is None  # Python's None: accept any
    assert Settings.build(max_future="60").max_future == 60
    monkeypatch.setenv("METRICSTREAM_MAX_FUTURE", "none")
    assert Settings.build().max_future is None
    assert Settings.build(max_future=5).max_future == 5  # an argument wins over the environment
    monkeypatch.setenv("METRICSTREAM_MAX_FUTURE", "120")
    assert Settings.build().max_future == 120
    for bad in (-1, "soon", float("nan")):
        with pytest.raises(ValidationError, match="max_future"):
            Settings.build(max_future=bad)


def test_the_setting_has_a_flag_both_ways_and_a_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    parser = build_parser()
    assert vars(parser.parse_args(["serve", "--no-positive-only"]))["positive_only"] is False
    assert vars(parser.parse_args(["serve", "--positive-only"]))["positive_only"] is True
    assert vars(parser.parse_args(["serve"]))["positive_only"] is None
    monkeypatch.setenv("METRICSTREAM_POSITIVE_ONLY", "false")
    assert Settings.build().positive_only is False
    assert Settings.build(positive_only=True).positive_only is True


def test_settings_hide_and_check_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings.build(token=WRITE, subscribe_token=READ)
    assert WRITE not in repr(settings)
    assert WRITE not in str(settings.model_dump())
    assert settings.token is not None
    assert settings.token.get_secret_value() == WRITE
    monkeypatch.setenv("METRICSTREAM_TOKEN", WRITE)
    from_env = Settings.build().token
    assert from_env is not None
    assert from_env.get_secret_value() == WRITE
    with pytest.raises(ValidationError, match=r"token: .*at least 16 characters") as short:
        Settings.build(token="short")
    assert "short" not in str(short.value)  # the value given is never repeated
    with pytest.raises(ValidationError, match=r"subscribe_token: .*may hold only"):
        Settings.build(subscribe_token="has spaces in it, sixteen+")
    with pytest.raises(ValidationError, match="token"):
        Settings.build(token="")


@pytest.mark.parametrize("bad", ["https://a.example/", "a.example", "https://a.example/path", "null"])
def test_cors_origins_must_be_origins(bad: str) -> None:
    with pytest.raises(ValidationError, match=r"cors_origins: .*is not an origin"):
        Settings.build(cors_origins=bad)


def test_cors_origins_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICSTREAM_CORS_ORIGINS", "https://A.example, http://b.example:8080,")
    assert Settings.build().cors_origins == ["https://a.example", "http://b.example:8080"]


def test_allowed_hosts_must_be_host_names(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="is not a host name"):
        Settings.build(allowed_hosts="http://x.example")
    with pytest.raises(ValidationError, match="give it alone"):
        Settings.build(allowed_hosts="*,a.example")
    monkeypatch.setenv("METRICSTREAM_ALLOWED_HOSTS", "A.Example., b.example")
    assert Settings.build().allowed_hosts == ["a.example", "b.example"]


def test_log_level_is_a_setting_with_a_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("METRICSTREAM_LOG_LEVEL", raising=False)
    assert Settings.build().log_level == "info"
    assert Settings.build(log_level=" WARNING ").log_level == "warning"
    with pytest.raises(ValidationError, match="log_level"):
        Settings.build(log_level="loud")
    args = build_parser().parse_args(["serve", "--log-level", "debug"])
    assert args.log_level == "debug"


def test_certfile_and_keyfile_go_together(
    certificates: Certificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValidationError, match=r"^invalid settings: certfile is set but keyfile is not: "):
        Hub(port=0, certfile=str(certificates.certfile))
    monkeypatch.setenv("METRICSTREAM_KEYFILE", str(certificates.keyfile))
    with pytest.raises(ValidationError, match=r"^invalid settings: keyfile is set but certfile is not: "):
        Settings.build()
    monkeypatch.setenv("METRICSTREAM_KEYFILE", "")  # an empty variable is no setting
    assert Settings.build().keyfile is None

"""metricstream.domain.exposition: every metric's newest reading in Prometheus' text format and in
OpenMetrics, read back by prometheus-client's own parsers of both (escaping included); names and units
mapped as the OpenTelemetry-to-Prometheus translator maps them; timestamps exact as Prometheus reads them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from metricstream.domain.exposition import (
    OPENMETRICS,
    TEXT_FORMAT,
    exposition,
    prometheus_name,
    unit_word,
    wants_openmetrics,
)
from metricstream.domain.values import Metric, MetricReading

AT = datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=UTC)
AT_MS = 1_700_000_000_123


def latest(
    name: str,
    value: float = 1.0,
    labels: dict[str, str] | None = None,
    unit: str | None = None,
    description: str | None = None,
    at: datetime = AT,
) -> tuple[Metric, MetricReading]:
    metric = Metric(f"id-{name}-{labels}", name, None, labels or {}, unit, description)
    return metric, MetricReading(f"r-{name}", metric.id, value, at)


def test_the_text_format_has_each_metric_its_labels_description_and_timestamp() -> None:
    answer = exposition(
        [
            latest("temperature", 21.5, {"room": "kitchen"}, "Cel", "Air temperature."),
            latest("temperature", 19.0, {"room": "hall"}, "Cel"),
            latest("jobs_total", 7.0),
        ]
    )
    assert answer.media_type == TEXT_FORMAT
    assert answer.body.decode() == (
        "# TYPE temperature_celsius untyped\n"
        "# HELP temperature_celsius Air temperature.\n"
        f'temperature_celsius{{room="kitchen"}} 21.5 {AT_MS}\n'
        f'temperature_celsius{{room="hall"}} 19.0 {AT_MS}\n'
        "# TYPE jobs_total untyped\n"
        f"jobs_total 7.0 {AT_MS}\n"
    )
    assert not answer.skipped


def test_openmetrics_adds_the_unit_and_ends_with_eof() -> None:
    answer = exposition([latest("temperature", 21.5, {"room": "kitchen"}, "Cel", "Air.")], openmetrics=True)
    assert answer.media_type == OPENMETRICS
    assert answer.body.decode() == (
        "# TYPE temperature_celsius unknown\n"
        "# UNIT temperature_celsius celsius\n"
        "# HELP temperature_celsius Air.\n"
        'temperature_celsius{room="kitchen"} 21.5 1700000000.123456\n'
        "# EOF\n"
    )


def test_nothing_to_export_is_an_empty_answer_and_openmetrics_eof() -> None:
    assert exposition([]).body == b""
    assert exposition([], openmetrics=True).body == b"# EOF\n"


HOSTILE = [
    'say "hi"',
    "back\\slash",
    "new\nline",
    "\\n not a newline",
    'all \\" of\n it\\',
    "tab\tcr\r",
    "°C ✓",
]


@pytest.mark.parametrize("openmetrics", [False, True])
def test_label_values_and_help_with_quotes_backslashes_and_newlines_parse_back_unchanged(
    openmetrics: bool,
) -> None:
    metrics = [latest("m", float(i), {"v": value}, None, value) for i, value in enumerate(HOSTILE)]
    text = exposition(metrics, openmetrics).body.decode()
    families = list(parse_openmetrics(text) if openmetrics else parse_text(text))
    assert [family.name for family in families] == ["m"]
    assert [sample.labels["v"] for sample in families[0].samples] == HOSTILE
    assert families[0].documentation == HOSTILE[0]  # the first description of the family


@pytest.mark.parametrize("openmetrics", [False, True])
def test_both_formats_parse_with_prometheus_clients_parsers(openmetrics: bool) -> None:
    metrics = [
        latest("http.server.duration", 12.5, {"route": "/cart"}, "ms", "Time to answer."),
        latest("queue depth", 3.0),
        latest("1st-sensor", 2.0, None, "By/s"),
        latest("ratio", 0.25, None, "1"),
        latest("requests", 9.0, None, "{request}"),
        latest("process_cpu_seconds_total", 1e-05, None, "s"),
        latest("tiny", -1.5e-300),
    ]
    text = exposition(metrics, openmetrics).body.decode()
    parsed = {
        family.name: (family.unit, [(s.value, s.timestamp) for s in family.samples])
        for family in (parse_openmetrics(text) if openmetrics else parse_text(text))
    }
    units = {
        "http_server_duration_milliseconds": "milliseconds",
        "queue_depth": "",
        "_1st_sensor_bytes_per_second": "bytes_per_second",
        "ratio": "",
        "requests": "",
        # its unit's word is in the name already, not at its end: no # UNIT (OpenMetrics wants a suffix)
        "process_cpu_seconds_total": "",
        "tiny": "",
    }
    assert {name: unit for name, (unit, _) in parsed.items()} == (
        units if openmetrics else dict.fromkeys(units, "")
    )
    assert parsed["tiny"][1][0][0] == -1.5e-300


@pytest.mark.parametrize(
    ("name", "unit", "expected"),
    [
        ("up", None, "up"),
        ("node:cpu:rate5m", None, "node:cpu:rate5m"),  # recording rules' colons are valid
        ("_private", None, "_private"),  # a valid name is kept as it is
        ("http.server.duration", "ms", "http_server_duration_milliseconds"),
        ("temperature", "Cel", "temperature_celsius"),
        ("temperature", "°C", "temperature_celsius"),
        ("temperature_celsius", "Cel", "temperature_celsius"),  # has the word already
        ("bytes_in", "By", "bytes_in"),  # has it as a word, anywhere
        ("cpu", "%", "cpu_percent"),
        ("load", "1", "load"),
        ("requests", "{request}", "requests"),
        ("throughput", "By/s", "throughput_bytes_per_second"),
        ("rate", "1/min", "rate_per_min"),
        ("rate", "{event}/h", "rate_per_hour"),
        ("energy", "kW.h", "energy_kW_h"),
        ("a--b..c", None, "a_b_c"),
        ("  spaced   name ", None, "spaced_name"),
        ("9lives", None, "_9lives"),
        ("température", None, "temp_rature"),
        ("温度", None, None),
        ("°", "Cel", None),  # no name to put the unit on
    ],
)
def test_names_and_units_are_mapped_as_the_opentelemetry_translator_maps_them(
    name: str, unit: str | None, expected: str | None
) -> None:
    assert prometheus_name(name, unit) == expected


def test_unit_words() -> None:
    assert [unit_word(u) for u in (None, "", "s", "KiBy", "{x}", "1", "m/s", "°F", "/s")] == [
        "",
        "",
        "seconds",
        "kibibytes",
        "",
        "",
        "meters_per_second",
        "fahrenheit",
        "per_second",
    ]


def test_metrics_mapped_to_one_name_share_a_family_and_a_duplicate_is_left_out_and_counted() -> None:
    answer = exposition(
        [
            latest("cpu.load", 1.0, {"host": "a"}),
            latest("cpu_load", 2.0, {"host": "b"}),
            latest("cpu load", 3.0, {"host": "a"}),  # cpu_load{host="a"} again
            latest("温度", 4.0),
            latest("°", 5.0),
        ]
    )
    assert answer.body.decode() == (
        f'# TYPE cpu_load untyped\ncpu_load{{host="a"}} 1.0 {AT_MS}\ncpu_load{{host="b"}} 2.0 {AT_MS}\n'
    )
    assert answer.skipped == {"duplicate": 1, "name": 2}


def test_a_family_takes_the_first_description_and_its_first_metrics_unit() -> None:
    text = exposition(
        [latest("t", 1.0, {"a": "1"}, "Cel"), latest("t", 2.0, {"a": "2"}, "Cel", "Second's.")], True
    ).body.decode()
    assert "# HELP t_celsius Second's.\n" in text
    assert "# UNIT t_celsius celsius\n" in text


MICROS = st.integers(
    min_value=0,
    max_value=(datetime(9999, 1, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC))
    // timedelta(microseconds=1),
)


# readings remote write stored are on a millisecond: the case where a float falls short of it
@given(st.one_of(MICROS, MICROS.map(lambda micros: micros // 1000 * 1000)))
def test_timestamps_read_back_to_the_millisecond_as_prometheus_reads_them(micros: int) -> None:
    at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    text_line = exposition([latest("m", at=at)]).body.decode().splitlines()[-1]
    om_line = exposition([latest("m", at=at)], True).body.decode().splitlines()[-2]
    assert int(text_line.split()[-1]) == micros // 1000
    # Prometheus' OpenMetrics parser: int64(ParseFloat(seconds) * 1000), rounding toward zero
    assert int(float(om_line.split()[-1]) * 1000) == micros // 1000


@pytest.mark.parametrize(
    ("at", "seconds"),
    [
        (AT, "1700000000.123456"),  # exact
        # 1.001 s: Prometheus would read 1000.9999... ms, so 1000 ms; the middle of 1001 ms reads right
        (datetime(1970, 1, 1, 0, 0, 1, 1000, tzinfo=UTC), "1.0015"),
        # 31671345599.999999 s reads as the next millisecond's float
        (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=31671345599999999), "31671345599.9995"),
        (datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC), "-0.500000"),  # before 1970: as it is
    ],
)
def test_openmetrics_timestamps_are_exact_unless_prometheus_would_misread_them(
    at: datetime, seconds: str
) -> None:
    om_line = exposition([latest("m", at=at)], True).body.decode().splitlines()[-2]
    assert om_line.split()[-1] == seconds


@pytest.mark.parametrize(
    ("accept", "wanted"),
    [
        (None, False),
        ("", False),
        ("text/plain", False),
        ("*/*", False),
        # what Prometheus 2.42 sends
        (
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
            "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            True,
        ),
        ("application/openmetrics-text", True),
        ("Application/OpenMetrics-Text; version=1.0.0", True),
        ("application/openmetrics-text;q=0, text/plain", False),
        ("application/openmetrics-text;q=bad", False),
    ],
)
def test_openmetrics_is_answered_when_asked_for(accept: str | None, wanted: bool) -> None:
    assert wants_openmetrics(accept) is wanted

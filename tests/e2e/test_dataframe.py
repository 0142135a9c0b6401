"""`to_dataframe` on what a running hub gives (readings, buckets over Python and HTTP), and importing
metricstream without pandas. The conversion itself: tests/unit/notebook/test_dataframe.py."""

from __future__ import annotations

import itertools
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import httpx
import pandas as pd

from metricstream.notebook.dataframe import to_dataframe
from metricstream.server.hub import Hub

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
BUCKET_COLUMNS = ["start", "count", "min", "max", "avg", "first", "last"]


def test_readings_from_a_hub_and_its_stream(hub: Hub) -> None:
    cpu = hub.service.create_metric("CPU Temperature")
    start = hub.service.last_event_id
    created = [hub.service.create_reading(cpu.id, value, T0 + timedelta(seconds=-value)) for value in (1, 2)]
    with hub.subscribe(last_event_id=start) as events:
        received = list(itertools.islice(events, len(created)))
    from_service = to_dataframe(hub.service.list_readings(cpu.id), metrics=hub.service.list_metrics())
    from_stream = to_dataframe(received, metrics=hub.service.list_metrics())
    pd.testing.assert_frame_equal(from_service, from_stream)
    assert from_stream["id"].tolist() == [created[1].id, created[0].id]
    assert from_stream["metric"].tolist() == ["CPU Temperature"] * 2


def test_importing_metricstream_does_not_import_pandas() -> None:
    code = "import metricstream, sys; metricstream.Subscriber; assert 'pandas' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_buckets_from_python_and_from_http_give_one_frame() -> None:
    with Hub(port=0) as hub:
        metric = hub.service.create_metric("m")
        items = [
            {"metric_id": metric.id, "value": value, "timestamp": (T0 + timedelta(seconds=s)).isoformat()}
            for s, value in [(0, 1.0), (3, 5.0), (12, 2.0), (15, 4.0), (31, 7.0)]
        ]
        hub.service.create_readings(items)
        window = {"since": T0, "until": T0 + timedelta(minutes=1), "step": "10s"}
        buckets = hub.service.list_readings(metric.id, **window)  # type: ignore[call-overload]
        answer = httpx.get(
            f"{hub.url}/metrics/{metric.id}/readings",
            params={"since": T0.isoformat(), "until": (T0 + timedelta(minutes=1)).isoformat(), "step": "10s"},
        )
    frame = to_dataframe(buckets)
    assert list(frame.columns) == BUCKET_COLUMNS
    assert isinstance(frame["start"].dtype, pd.DatetimeTZDtype)
    assert frame["count"].dtype == "int64"
    assert frame.to_dict("list") == {
        "start": [pd.Timestamp(T0 + timedelta(seconds=s)) for s in (0, 10, 30)],
        "count": [2, 2, 1],
        "min": [1.0, 2.0, 7.0],
        "max": [5.0, 4.0, 7.0],
        "avg": [3.0, 3.0, 7.0],
        "first": [1.0, 2.0, 7.0],
        "last": [5.0, 4.0, 7.0],
    }
    pd.testing.assert_frame_equal(to_dataframe(answer.json()), frame)
    pd.testing.assert_frame_equal(to_dataframe(reversed(buckets)), frame)  # sorted by start

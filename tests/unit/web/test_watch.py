"""web/watch.py's pure parts: the stream's query, and `LabelMatch`, which resolves a `labels=` filter."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from metricstream.domain.values import Metric, MetricReading
from metricstream.errors import ValidationError
from metricstream.ids import new_id
from metricstream.stream.log import Event
from metricstream.web.watch import LabelMatch, parse_request
from metricstream.wire import METRIC_CREATED, METRIC_DELETED, READING_CREATED


def scope(query: str) -> dict[str, object]:
    return {"query_string": query.encode(), "headers": []}


def test_the_query_gives_labels_from_every_parameter() -> None:
    assert parse_request(scope(""))[4] is None
    assert parse_request(scope("labels=host%3Da&labels=dc=x"))[4] == {"dc": "x", "host": "a"}
    with pytest.raises(ValidationError, match="labels must be name=value pairs"):
        parse_request(scope("labels=host"))


def reading_of(metric: Metric) -> Event:
    return Event.create(READING_CREATED, MetricReading(new_id(), metric.id, 1.0, datetime.now(UTC)), 1.0)


def test_label_match_passes_known_metrics_and_learns_new_ones_from_their_creation() -> None:
    known = Metric(new_id(), "cpu", labels={"host": "a"})
    later = Metric(new_id(), "mem", labels={"dc": "x", "host": "a"})
    other = Metric(new_id(), "mem", labels={"host": "b"})
    match = LabelMatch({"host": "a"}, {known.id})
    assert match(reading_of(known))
    assert not match(reading_of(later))  # not yet heard of
    assert match(Event.create(METRIC_CREATED, later, 1.0))
    assert match(reading_of(later))
    assert not match(Event.create(METRIC_CREATED, other, 1.0))
    assert not match(reading_of(other))
    deleted = Event.restore(new_id(), METRIC_DELETED, later.id, b'{"id":"%s"}' % later.id.encode(), 2.0)
    assert match(deleted)
    # an event from a metricstream before labels has none: it matches no label filter
    old = Event.restore(
        new_id(), METRIC_CREATED, new_id(), b'{"id":"x","name":"cpu","input_frequency":null}', 1.0
    )
    assert not match(old)

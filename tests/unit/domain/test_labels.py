"""domain/labels.py's identity, query and text rules (validate_labels and label_name_from are exercised by
every store's tests and by the ingest formats)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metricstream.domain.labels import (
    MAX_LABEL_VALUE_LENGTH,
    canonical_labels,
    format_labels,
    has_labels,
    identity,
    optional_text,
    parse_label_query,
)
from metricstream.errors import ValidationError
from tests.support.stores import PROPERTY

LABEL_NAMES = st.from_regex(r"[a-zA-Z][a-zA-Z0-9_]{0,10}", fullmatch=True)
LABEL_VALUES = st.text(min_size=1, max_size=20)
LABELS = st.dictionaries(LABEL_NAMES, LABEL_VALUES, max_size=5)


def test_canonical_labels_ignore_order_and_keep_any_text() -> None:
    assert canonical_labels({}) == "{}"
    assert (
        canonical_labels({"b": "2", "a": "1"})
        == canonical_labels({"a": "1", "b": "2"})
        == '{"a":"1","b":"2"}'
    )
    assert canonical_labels({"room": 'café, "lab"'}) == '{"room":"café, \\"lab\\""}'
    assert identity("cpu", {"host": "a"}) != identity("cpu", {"host": "b"}) != identity("cpu", {})


def test_has_labels_is_a_subset_match() -> None:
    metric = {"host": "a", "dc": "x"}
    assert has_labels(metric, {})
    assert has_labels(metric, {"host": "a"})
    assert has_labels(metric, {"dc": "x", "host": "a"})
    assert not has_labels(metric, {"host": "b"})
    assert not has_labels(metric, {"host": "a", "rack": "1"})


def test_the_labels_query_takes_pairs_escapes_and_several_parameters() -> None:
    assert parse_label_query(["host=a"]) == {"host": "a"}
    assert parse_label_query(["host=a,dc=x"]) == {"dc": "x", "host": "a"}
    assert parse_label_query(["host=a", "dc=x", "host=a"]) == {"dc": "x", "host": "a"}
    assert parse_label_query(["expr=a=b"]) == {"expr": "a=b"}  # split at the first =
    assert parse_label_query(["path=a\\,b\\\\c"]) == {"path": "a,b\\c"}
    assert parse_label_query([]) == {}


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (["host"], "labels must be name=value pairs separated by commas (labels=host=a,dc=x), not 'host'"),
        (["host=a,"], "labels must be name=value pairs separated by commas (labels=host=a,dc=x), not ''"),
        (["host=a", "host=b"], "label 'host' is given twice with different values"),
        (["a=\\x"], "in labels=, a backslash escapes only a comma (\\,) or a backslash (\\\\)"),
        (["a=x\\"], "in labels=, a backslash escapes only a comma (\\,) or a backslash (\\\\)"),
        (["__name__=cpu"], "label name '__name__' is not valid: names starting with __ are reserved"),
        (["host="], "label 'host' must not be empty: leave the label out instead"),
        (
            [f"v={'x' * (MAX_LABEL_VALUE_LENGTH + 1)}"],
            f"label 'v' is longer than {MAX_LABEL_VALUE_LENGTH} characters",
        ),
    ],
)
def test_a_bad_labels_query_says_what_is_wrong(texts: list[str], message: str) -> None:
    with pytest.raises(ValidationError) as refused:
        parse_label_query(texts)
    assert str(refused.value) == message


@PROPERTY
@given(LABELS)
def test_format_labels_reads_back_as_the_same_labels(labels: dict[str, str]) -> None:
    text = format_labels(labels)
    assert parse_label_query([text] if labels else []) == labels


def test_optional_text_trims_and_refuses_as_names_do() -> None:
    assert optional_text(None, "unit", 32) is None
    assert optional_text("  °C ", "unit", 32) == "°C"
    assert optional_text("   ", "unit", 32) is None  # nothing left: none
    assert optional_text("e\u0301", "unit", 32) == "\u00e9"  # NFC
    for bad, message in [
        (5, "unit must be a string of at most 32 characters"),
        ("x" * 33, "unit must be a string of at most 32 characters"),
        ("m\ns", "unit must not contain control characters (U+000A)"),
    ]:
        with pytest.raises(ValidationError) as refused:
            optional_text(bad, "unit", 32)
        assert str(refused.value) == message


@given(st.dictionaries(st.text(max_size=8), st.text(st.characters(exclude_categories=["Cs"]), max_size=12)))
@PROPERTY
def test_canonical_labels_are_the_text_json_dumps_gives(labels: dict[str, str]) -> None:
    # stores hold this text, written before by json.dumps: the two must never differ
    expected = json.dumps(labels, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_labels(labels) == expected

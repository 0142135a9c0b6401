"""metricstream/domain/labels.py: label names made from foreign keys, the label check, and `Sample`."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metricstream.domain.labels import (
    LABEL_NAME,
    MAX_LABEL_NAME_LENGTH,
    MAX_LABEL_VALUE_LENGTH,
    MAX_LABELS,
    Sample,
    label_name_from,
    validate_labels,
)
from metricstream.errors import ValidationError


@pytest.mark.parametrize(
    ("foreign", "expected"),
    [
        ("host", "host"),
        ("Host_2", "Host_2"),
        ("service.name", "service_name"),
        ("host-id", "host_id"),
        ("a b,c=d", "a_b_c_d"),
        ("café", "caf_"),
        ("😀x", "_x"),
        ("1st", "key_1st"),
        ("0", "key_0"),
        ("_private", "_private"),
        ("__name__", "key__name__"),
        ("__", "key__"),
        ("..x", "key__x"),
    ],
)
def test_label_name_from_makes_a_foreign_key_a_label_name(foreign: str, expected: str) -> None:
    assert label_name_from(foreign) == expected


def test_label_name_from_refuses_an_empty_key() -> None:
    with pytest.raises(ValidationError, match="must not be empty"):
        label_name_from("")


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(st.text(min_size=1, max_size=MAX_LABEL_NAME_LENGTH - len("key_")))
def test_label_name_from_always_gives_a_name_validate_labels_takes(foreign: str) -> None:
    name = label_name_from(foreign)
    assert LABEL_NAME.fullmatch(name)
    assert validate_labels({name: "v"}) == {name: "v"}


def test_validate_labels_sorts_by_name_and_copies() -> None:
    labels = {"zone": "b", "host": "a", "_x": "c"}
    checked = validate_labels(labels)
    assert list(checked.items()) == [("_x", "c"), ("host", "a"), ("zone", "b")]
    assert checked is not labels


def test_validate_labels_takes_no_labels() -> None:
    assert validate_labels({}) == {}


def test_validate_labels_takes_32_pairs_and_refuses_33() -> None:
    labels = {f"l{i}": "v" for i in range(MAX_LABELS)}
    assert len(validate_labels(labels)) == MAX_LABELS
    labels["one_more"] = "v"
    with pytest.raises(ValidationError, match="at most 32 pairs, not 33"):
        validate_labels(labels)


@pytest.mark.parametrize("labels", [None, ["host", "a"], "host=a", 1])
def test_validate_labels_refuses_what_is_not_a_mapping(labels: object) -> None:
    with pytest.raises(ValidationError, match="labels must be an object of label names to string values"):
        validate_labels(labels)


@pytest.mark.parametrize("name", ["", "1st", "host-id", "service.name", "café", "a b", "a\n", 7])
def test_validate_labels_refuses_an_invalid_name(name: object) -> None:
    with pytest.raises(ValidationError, match=r"is not valid: use letters, digits and _"):
        validate_labels({name: "v"})


def test_validate_labels_refuses_the_reserved_prefix() -> None:
    with pytest.raises(ValidationError, match="names starting with __ are reserved"):
        validate_labels({"__name__": "cpu"})


@pytest.mark.parametrize("value", [1, 1.5, None, True, b"a"])
def test_validate_labels_refuses_a_value_that_is_not_a_string(value: object) -> None:
    with pytest.raises(ValidationError, match="label 'host' must have a string value"):
        validate_labels({"host": value})


def test_validate_labels_refuses_an_empty_value() -> None:
    with pytest.raises(ValidationError, match="label 'host' must not be empty: leave the label out instead"):
        validate_labels({"host": ""})


def test_validate_labels_bounds_a_value_length() -> None:
    longest = "x" * MAX_LABEL_VALUE_LENGTH
    assert validate_labels({"host": longest}) == {"host": longest}
    with pytest.raises(ValidationError, match="label 'host' is longer than 1024 characters"):
        validate_labels({"host": longest + "x"})


def test_validate_labels_takes_any_valid_unicode_value() -> None:
    # Prometheus label values are any UTF-8: spaces, commas, quotes, emoji, control characters.
    value = 'a b,c="d"\\ 😀 \t'
    assert validate_labels({"host": value}) == {"host": value}


def test_validate_labels_refuses_a_lone_surrogate() -> None:
    # Not UTF-8: the value could be stored but never sent (orjson refuses it), as names refuse it too.
    with pytest.raises(ValidationError, match=r"label 'host' must not contain a lone surrogate \(U\+D800\)"):
        validate_labels({"host": "a\ud800"})


def test_sample_defaults_and_is_frozen() -> None:
    sample = Sample("cpu", 1.5)
    assert (sample.labels, sample.timestamp, sample.unit, sample.description, sample.line) == (
        {},
        None,
        None,
        None,
        0,
    )
    with pytest.raises(AttributeError):
        sample.value = 2.0  # type: ignore[misc]


def test_validate_labels_bounds_a_name_length() -> None:
    # A bound on stored bytes, as for values and metric names; the message shows only the name's start.
    longest = "n" * MAX_LABEL_NAME_LENGTH
    assert validate_labels({longest: "v"}) == {longest: "v"}
    with pytest.raises(ValidationError) as raised:
        validate_labels({longest + "n": "v"})
    assert str(raised.value) == f"label name {'n' * 20!r}... is longer than 200 characters"

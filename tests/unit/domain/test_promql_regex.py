"""RE2 patterns as Python reads them (`domain/promql/regex.py`): fully anchored, RE2's ASCII classes and
end of text, literal characters in classes, and refusals of what Python would read otherwise or match in
exponential time."""

from __future__ import annotations

import pytest

from metricstream.domain.promql.regex import MAX_REPETITIONS, compile_pattern
from metricstream.errors import ValidationError


@pytest.mark.parametrize(
    ("pattern", "matching", "not_matching"),
    [
        ("a|b", ["a", "b"], ["ab", "", "xa"]),  # anchored at both ends, around the alternation
        ("prod-.*", ["prod-", "prod-eu"], ["xprod-eu"]),
        (r"\d+", ["123"], ["١٢٣", "12a"]),  # RE2's \d is ASCII; Python's would take Arabic-Indic digits
        (r"\w+", ["ab_1"], ["é"]),
        (r"a\s", ["a ", "a\t"], ["a\u00a0", "a\v"]),  # RE2's \s is [\t\n\f\r ]
        ("a$", ["a"], ["a\n"]),  # $ is the end of the text, not before a final newline
        (r"a\z", ["a"], ["a\n"]),
        ("[]a]+", ["]a]"], ["b"]),  # a ] first in a class is a member
        ("[a-c-]", ["b", "-"], ["d"]),
        ("[[a]", ["[", "a"], ["b"]),  # a [ in a class is a member, not a nested set
        ("[&&a]", ["&", "a"], ["b"]),  # && is two members, not an intersection
        ("a{,2}", ["a{,2}"], ["aa"]),  # RE2 reads {,2} literally
        ("x{2,3}", ["xx", "xxx"], ["x", "xxxx"]),
        ("(?i)abc", ["ABC", "abc"], ["abd"]),
        ("(?s)a.b", ["a\nb"], ["ab"]),
        ("a.b", ["a-b"], ["a\nb"]),
        (r"\bfoo\b", ["foo"], []),
        (r"\x41", ["A"], ["a"]),
        (r"\.", ["."], ["a"]),
        ("(?P<n>a)b", ["ab"], ["a"]),
        ("(?i:a)b", ["Ab"], ["AB"]),
        ("(ab)+", ["abab"], ["aba"]),
    ],
)
def test_patterns_match_as_re2_fully_anchored(
    pattern: str, matching: list[str], not_matching: list[str]
) -> None:
    compiled = compile_pattern(pattern)
    for value in matching:
        assert compiled.fullmatch(value), (pattern, value)
    for value in not_matching:
        assert not compiled.fullmatch(value), (pattern, value)


@pytest.mark.parametrize(
    ("pattern", "named"),
    [
        ("[[:alpha:]]", "POSIX class"),
        (r"\pL", r"\p"),
        (r"\p{Greek}", r"\p"),
        (r"\Qa.b\E", r"\Q"),
        (r"\x{41}", r"\x"),
        ("(?U)a*", "flags"),
        ("(?m)^a$", "flags"),
        ("a(?i)b", "the group (?i)b"),
        ("(?<n>a)", "the group (?<n>"),
        ("a(?=b)", "the group (?=b)"),
        (r"(a)\1", r"\1"),
        ("a*+", "possessive"),
        ("(a+)+b", "repeated group"),
        ("(a|aa)*", "repeated group"),
        ("((a*))*", "repeated group"),
        ("a*b*c*d*e*f*", f"more than {MAX_REPETITIONS} repetitions"),
    ],
)
def test_what_re2_or_python_would_read_otherwise_is_refused_by_name(pattern: str, named: str) -> None:
    with pytest.raises(ValidationError, match="unsupported in metricstream's PromQL subset") as refused:
        compile_pattern(pattern)
    assert named in str(refused.value)


@pytest.mark.parametrize("pattern", ["a)", "(a", "[a", "*a", "a{2}{3}", "a**", "x{1001}", "\\"])
def test_invalid_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(ValidationError, match="regular expression"):
        compile_pattern(pattern)

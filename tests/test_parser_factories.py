"""The parser factories `int_between` and `parse_choice`, called by the tests themselves.

`settings.specs` calls them when it is imported, to build the `SPECS` table, so under mutmut
their mutants are switched on only for a parser a test builds itself (METHOD.md, "Mutants
mutmut cannot run"). These tests build theirs and compare each refusal whole (problem and fix):
what a user reads when a number or a choice in glitchtip.yaml, an option or the environment is
refused.
"""

from __future__ import annotations

import pytest

from provision.settings.base import Invalid
from provision.settings.parsers import int_between, parse_choice


def _refusal(parse, raw) -> tuple[str, str]:
    with pytest.raises(Invalid) as refused:
        parse(raw)
    return refused.value.problem, refused.value.fix


@pytest.mark.parametrize(
    ("raw", "value"),
    [(3, 3), (10, 10), ("3", 3), (" 10 ", 10), ("007", 7), ("0000000000000000000009", 9)],
)
def test_int_between_accepts_both_ends_and_digits(raw, value):
    """Both bounds are inside; text is stripped; leading zeros do not count towards length."""
    parse = int_between(3, 10, "size in MiB")
    assert parse(raw) == value
    assert type(parse(raw)) is int


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (2, "2 is out of range"),
        (11, "11 is out of range"),
        ("2", "2 is out of range"),
        (" 11", "11 is out of range"),
        (-4, "-4 is out of range"),
        ("1234567890123", "'1234567890123' is out of range"),
        ("9" * 5000, "'" + "9" * 54 + "...' (5000 characters) is out of range"),
    ],
)
def test_int_between_refuses_numbers_outside_with_the_range(raw, problem):
    assert _refusal(int_between(3, 10, "size in MiB"), raw) == (
        problem,
        "use a whole number from 3 to 10",
    )


def test_int_between_reads_twelve_digits_and_refuses_thirteen_without_converting():
    """Twelve significant digits are converted and range-checked; thirteen are refused as
    text (int() of thousands of digits raises)."""
    parse = int_between(0, 10**13)
    assert parse("999999999999") == 999999999999
    assert parse("000999999999999") == 999999999999
    assert _refusal(parse, "1000000000000") == (
        "'1000000000000' is out of range",
        "use a whole number from 0 to 10000000000000",
    )


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (True, "'True' is not a port number"),
        (False, "'False' is not a port number"),
        ("many", "'many' is not a port number"),
        ("5.0", "'5.0' is not a port number"),
        ("-5", "'-5' is not a port number"),
        ("+5", "'+5' is not a port number"),
        ("", "'' is not a port number"),
        ("1 2", "'1 2' is not a port number"),
        ("²", "'²' is not a port number"),
        ("٣", "'٣' is not a port number"),
        (5.0, "'5.0' is not a port number"),
        (None, "'None' is not a port number"),
    ],
)
def test_int_between_refuses_what_is_no_whole_number(raw, problem):
    """Booleans (an int subclass), signs, decimals and non-ASCII digits are refused."""
    assert _refusal(int_between(1, 65535, "port number"), raw) == (
        problem,
        "use a whole number from 1 to 65535",
    )


def test_int_between_names_a_number_by_default():
    assert _refusal(int_between(1, 2), "x") == (
        "'x' is not a number",
        "use a whole number from 1 to 2",
    )


@pytest.mark.parametrize(
    ("raw", "value"),
    [("swarm", "swarm"), (" Kubernetes ", "kubernetes"), ("COMPOSE", "compose")],
)
def test_parse_choice_accepts_a_choice_in_any_case_and_spacing(raw, value):
    parse = parse_choice(("compose", "swarm", "kubernetes"), "deployment target")
    assert parse(raw) == value


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("helm", "'helm' is not a deployment target"),
        (" Helm ", "' Helm ' is not a deployment target"),
        ("", "'' is not a deployment target"),
        ("swarm,compose", "'swarm,compose' is not a deployment target"),
        (3, "'3' is not a deployment target"),
    ],
)
def test_parse_choice_refuses_others_listing_the_choices_in_order(raw, problem):
    parse = parse_choice(("compose", "swarm", "kubernetes"), "deployment target")
    assert _refusal(parse, raw) == (problem, "use compose, swarm, kubernetes")


def test_const_is_a_default_that_gives_its_value_whatever_was_resolved():
    """`specs._const` builds the default of most settings in `SPECS` (at import, like the
    factories above: under mutmut only a call of the test's own reaches its mutants). The
    default it builds ignores the settings resolved before it and gives the very value."""
    from provision.settings.specs import SPECS, _const

    marker = object()
    for value in (marker, "127.0.0.1", 8000, ""):
        default = _const(value)
        assert default({}) is value
        assert default({"glitchtip_major": 5, "bind_address": "0.0.0.0"}) is value
    built = {
        spec.name: spec.default({}) for spec in SPECS if spec.name in ("bind_address", "email_url")
    }
    assert built == {"bind_address": "127.0.0.1", "email_url": "consolemail://"}

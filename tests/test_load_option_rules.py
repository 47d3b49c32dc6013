"""`--duration` and `--mix` read whole: both ends of the duration, and every refusal's line and
fix as the user reads them."""

from __future__ import annotations

import pytest

from provision.errors import UsageError
from provision.load.options import parse_duration
from provision.load.payloads import KINDS, parse_mix

FIX = "e.g. --duration 30s, 2m or 1h30m"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1", 1), ("1s", 1), ("86400", 86400), ("24h", 86400), ("23h59m60s", 86400), ("1H30M", 5400)],
)
def test_durations_from_one_second_to_a_day(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["0", "0s", "86401", "24h1s", "25h"])
def test_durations_outside_are_refused_with_the_example(text):
    with pytest.raises(UsageError) as refused:
        parse_duration(text)
    assert refused.value.message == f"--duration {text!r} is not between 1 s and 24 h"
    assert refused.value.fix == FIX


@pytest.mark.parametrize("text", ["", "soon", "1d", "-5", "1.5m", "x" * 30])
def test_what_is_no_duration_is_refused_with_the_example(text):
    with pytest.raises(UsageError) as refused:
        parse_duration(text)
    assert refused.value.message == f"--duration {text[:20]!r} is not a duration"
    assert refused.value.fix == FIX


def test_a_mix_names_weights_and_leaves_the_rest_at_zero():
    assert parse_mix(" store = 3 , message=1") == dict.fromkeys(KINDS, 0) | {
        "store": 3,
        "message": 1,
    }


@pytest.mark.parametrize("part", ["store", "store=", "store=x", "nope=1", "store=1=2", "=1"])
def test_a_part_that_is_no_kind_and_weight_is_named(part):
    with pytest.raises(ValueError) as refused:
        parse_mix(f"message=1,{part}")
    assert str(refused.value) == f"{part!r} is not KIND=WEIGHT (kinds: {', '.join(KINDS)})"


def test_all_weights_zero_sends_nothing_and_is_refused():
    with pytest.raises(ValueError) as refused:
        parse_mix("store=0,message=0")
    assert str(refused.value) == "every weight is 0: nothing would be sent"

"""provision/yamlshape.py: the one walk over YAML events both operator files are checked with.

What each file allows is its own rules' business (tests/test_settings*.py, test_declare.py);
here: what the walk reports to the rules, so both files see the same facts."""

from __future__ import annotations

import pytest

from provision.yamlshape import Frame, check_shape


class Refused(Exception):
    pass


class Recorder:
    """Rules that accept every collection and record what the walk told them."""

    def __init__(self) -> None:
        self.opened: list[tuple[tuple[str, ...] | None, bool, int, int]] = []

    def anchor(self, line: int) -> Exception:
        return Refused(f"anchor {line}")

    def second_document(self, line: int) -> Exception:
        return Refused(f"document {line}")

    def duplicate(self, frame: Frame, key: str, first: int, line: int) -> Exception:
        return Refused(f"duplicate {'.'.join(frame.keys)}:{key} {first} {line}")

    def collection(self, parent: Frame | None, is_mapping: bool, depth: int, line: int) -> None:
        self.opened.append((None if parent is None else parent.keys, is_mapping, depth, line))


def test_collections_are_reported_with_their_parents_keys_depth_and_line() -> None:
    rules = Recorder()
    check_shape("a: 1\nb:\n  c:\n    - x\n    - d: 2\ne: [1, 2]\n", rules)
    assert rules.opened == [
        (None, True, 0, 1),  # the root mapping
        ((), True, 1, 3),  # b's mapping (opens at its first key, line 3)
        (("b",), False, 2, 4),  # b.c's list
        (("b", "c"), True, 3, 5),  # the mapping inside the list: lists add no key
        ((), False, 1, 6),  # e's flow list
    ]


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        ("a: &x 1\nb: *x\n", "anchor 1"),
        ("a: 1\n---\nb: 2\n", "document 2"),
        ("a: 1\nb: 2\na: 3\n", "duplicate :a 1 3"),
        ("b:\n  c: 1\n  c: 2\n", "duplicate b:c 2 3"),
        ("l:\n  - k: 1\n    k: 2\n", "duplicate l:k 2 3"),
    ],
)
def test_the_first_bad_shape_raises_what_the_rules_return(text: str, refusal: str) -> None:
    with pytest.raises(Refused, match=f"^{refusal}$"):
        check_shape(text, Recorder())


def test_a_value_equal_to_a_key_is_no_duplicate_and_lists_hold_repeated_scalars() -> None:
    check_shape("a: b\nb: a\nl: [a, a, a]\nm:\n  - a\n  - a\n", Recorder())

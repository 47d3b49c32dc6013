"""The sender's display name (`from_email: 'Name <address>'`): printable text only, checked
for the whole surrogate range (its first and last code points), a control character and a
line separator, each refused in one whole line; a printable non-ASCII name is kept as written
while the address's domain goes to punycode."""

from __future__ import annotations

import pytest

from provision.settings import mail
from provision.settings.base import Invalid

FIX = "use glitchtip@example.com or 'GlitchTip <glitchtip@example.com>'"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("A\ud800B <g@example.com>", "'A\\ud800B <g@example.com>'"),
        ("A\udfffB <g@example.com>", "'A\\udfffB <g@example.com>'"),
        ("A\x07 <g@example.com>", "'A\\x07 <g@example.com>'"),
        ("A\u2028B <g@example.com>", "'A\\u2028B <g@example.com>'"),
    ],
)
def test_a_name_with_an_unprintable_character_is_refused_whole(raw, shown) -> None:
    with pytest.raises(Invalid) as refused:
        mail.parse_from_email(raw)
    assert (refused.value.problem, refused.value.fix) == (
        f"{shown} has unprintable characters in its name",
        FIX,
    )


def test_a_printable_non_ascii_name_is_kept_and_the_domain_encoded() -> None:
    assert mail.parse_from_email("  Zoë Ops <ops@bücher.example> ") == (
        "Zoë Ops <ops@xn--bcher-kva.example>"
    )
    assert mail.parse_from_email("ops@bücher.example") == "ops@xn--bcher-kva.example"

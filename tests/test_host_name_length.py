"""A host name's length limit tried at both ends: DNS allows 253 characters (RFC 1035's 255
octets on the wire, less the length octets of the first label and the root), a trailing dot
not counted. The kit takes the longest legal name and refuses one character more, in the
parser and in the public URL a user sets (`glitchtip_domain`), with the whole refusal."""

from __future__ import annotations

import pytest

from provision.errors import SettingsError
from provision.settings import load_settings
from provision.settings.base import Invalid
from provision.settings.parsers import ascii_host

FIX = "use a host name of letters, digits, '-' and '.', e.g. glitchtip.example.com"
# Four labels of 63, 63, 63 and 61 characters and three dots: 253 characters.
LONGEST = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])
ONE_MORE = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 62])


def test_the_names_are_as_long_as_they_say() -> None:
    assert (len(LONGEST), len(ONE_MORE)) == (253, 254)


def test_a_name_of_253_characters_is_a_host_name_with_or_without_its_trailing_dot() -> None:
    assert ascii_host(LONGEST) == LONGEST
    assert ascii_host(LONGEST.upper() + ".") == LONGEST


def test_a_name_of_254_characters_is_refused_in_one_whole_line() -> None:
    with pytest.raises(Invalid) as refused:
        ascii_host(ONE_MORE)
    assert (refused.value.problem, refused.value.fix) == (
        "'" + "a" * 54 + "...' (254 characters) is not a valid host name",
        FIX,
    )


def test_the_public_url_takes_the_longest_host_name_and_refuses_one_character_more(
    tmp_path,
) -> None:
    settings = load_settings(tmp_path, {"glitchtip_domain": f"https://{LONGEST}"})
    assert settings.glitchtip_domain == f"https://{LONGEST}"
    with pytest.raises(SettingsError) as refused:
        load_settings(tmp_path, {"glitchtip_domain": f"https://{ONE_MORE}:8443"})
    assert (refused.value.message, refused.value.fix) == (
        "glitchtip_domain (from option glitchtip_domain): 'https://" + "a" * 46 + "...' "
        "(267 characters): '" + "a" * 54 + "...' (254 characters) is not a valid host name",
        "use the URL users open, e.g. https://glitchtip.example.com",
    )

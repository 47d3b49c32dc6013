"""Which names get Caddy's internal CA, each reserved suffix and each spelling of a host, and the
proxy subnet a project name gets, pinned across kit versions."""

from __future__ import annotations

import pytest

from provision.proxy import names


@pytest.mark.parametrize(
    "suffix",
    [".localhost", ".local", ".test", ".example", ".invalid", ".internal", ".home.arpa", ".lan",
     ".home", ".corp", ".intranet", ".private"],
)  # fmt: skip
def test_every_reserved_suffix_gets_the_internal_ca_and_only_as_a_suffix(suffix: str) -> None:
    """Each suffix no public CA certifies, in any case and with the root's trailing dot; the same
    word inside a public name (`<word>.acme.io`) does not make it local."""
    assert names.is_local_host(f"errors{suffix}") is True
    assert names.is_local_host(f"errors{suffix.upper()}") is True
    assert names.is_local_host(f"errors{suffix}.") is True
    assert names.is_local_host(f"errors{suffix}.acme.io") is False


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("[::1]", True),  # an IPv6 literal as the URL writes it
        ("[2001:db8::5]", True),
        ("LOCALHOST", True),
        ("localhost.", True),
        ("Glitchtip", True),  # no dot: a name only this network knows
        ("glitchtip.", True),  # the root's dot is not a dot between labels
        ("GT.ACME.IO", False),
        ("GLITCHTIP.X", False),  # capitals: only brackets and the root's dot are stripped
        ("gt.acme.io.", False),
        ("203.0.113.7", True),  # any IP address, public ones too
    ],
)
def test_each_spelling_of_a_host_is_judged_as_the_name_it_is(host: str, local: bool) -> None:
    assert names.is_local_host(host) is local


def test_a_projects_subnet_is_the_same_in_every_kit_version() -> None:
    """The subnet is derived from the Compose project name at every render: a new kit version
    that derived another would move network `front` and the proxy's pinned address (the one
    GlitchTip trusts forwarded headers from) under a running deployment. The values are those
    the kit has always given (SHA-256 of the name, its first four bytes big-endian, modulo the
    8,192 /29 blocks of 10.203.0.0/16)."""
    assert {
        project: names.default_subnet(project)
        for project in ("glitchtip", "glitchtip-staging", "a", "project-1", "gt-é")
    } == {
        "glitchtip": "10.203.135.248/29",
        "glitchtip-staging": "10.203.66.48/29",
        "a": "10.203.8.144/29",
        "project-1": "10.203.174.152/29",
        "gt-é": "10.203.252.160/29",
    }

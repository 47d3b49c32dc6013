"""--target naming this host is accepted without --allow-remote-target (an address is this
host's when a socket can bind to it); any other machine needs the flag."""

from __future__ import annotations

import socket

import pytest

from provision.errors import UsageError
from provision.load.options import resolve_target

STACK = {"web_service_url": "http://web:8000", "host_header": "h", "stack_hosts": ("web",)}


def this_hosts_address() -> str:
    """The address of this machine's outbound interface (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            pytest.skip("no IPv4 route on this machine")
        address = probe.getsockname()[0]
    if address.startswith("127.") or address == "0.0.0.0":
        pytest.skip("no non-loopback IPv4 address")
    return address


def test_this_hosts_own_address_is_a_local_target():
    address = this_hosts_address()
    target = resolve_target(f"http://{address}:8000", allow_remote=False, **STACK)
    assert target.url == f"http://{address}:8000"
    assert target.host_header == "" and target.is_stack is False


@pytest.mark.parametrize("host", ["192.0.2.1", "198.51.100.7", "no-such-host.invalid"])
def test_another_machine_needs_the_flag(host):
    with pytest.raises(UsageError, match=f"--target {host} is neither this host"):
        resolve_target(f"http://{host}:8000", allow_remote=False, **STACK)
    assert resolve_target(f"http://{host}:8000", allow_remote=True, **STACK).url.endswith(":8000")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "LOCALHOST", "[::1]"])
def test_a_loopback_target_is_refused_whole_with_the_way_out(host: str) -> None:
    """Locust runs in containers: loopback there is Locust itself. The refusal says so and how
    to load the stack or this host instead."""
    with pytest.raises(UsageError) as refused:
        resolve_target(f"http://{host}:8000", allow_remote=False, **STACK)
    shown = host.lower().strip("[]")
    assert refused.value.message == (
        f"--target {shown} would be the Locust container itself (the load runs in containers "
        "on the stack's network)"
    )
    assert refused.value.fix == (
        "leave --target out to load the stack's web service, or name this host by an address "
        "the containers can reach"
    )


_EXAMPLE = "e.g. --target http://web:8000 (or leave it out to load the stack)"


@pytest.mark.parametrize(
    ("target", "message", "fix"),
    [
        ("http://web:99999", "--target is not a URL (host or port malformed)", _EXAMPLE),
        ("http://[::1", "--target is not a URL (host or port malformed)", _EXAMPLE),
        ("web:8000", "--target must start with http:// or https:// and name a host", _EXAMPLE),
        ("ftp://web", "--target must start with http:// or https:// and name a host", _EXAMPLE),
        ("http://", "--target must start with http:// or https:// and name a host", _EXAMPLE),
        ("http://u:p@web:8000", "--target is only scheme://host[:port], no user, path or query",
         _EXAMPLE),
        ("http://web:8000/api", "--target is only scheme://host[:port], no user, path or query",
         _EXAMPLE),
        ("http://web:8000?x=1", "--target is only scheme://host[:port], no user, path or query",
         _EXAMPLE),
        ("http://192.0.2.1:8000", "--target 192.0.2.1 is neither this host nor a service of the "
         "stack", "load-testing another machine can take it down: add --allow-remote-target if "
         "it is yours and meant to be loaded"),
    ],
)  # fmt: skip
def test_a_bad_target_is_refused_in_one_whole_line(target, message, fix):
    with pytest.raises(UsageError) as refused:
        resolve_target(target, allow_remote=False, **STACK)
    assert (refused.value.message, refused.value.fix) == (message, fix)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (None, ("http://web:8000", "h", True)),
        ("  ", ("http://web:8000", "h", True)),
        ("http://WEB:8000/", ("http://WEB:8000", "h", True)),  # the stack's web: its Host
        ("https://worker", ("https://worker", "", True)),  # another service of the stack
        ("http://192.0.2.1:8080", ("http://192.0.2.1:8080", "", False)),  # with the flag
    ],
)
def test_each_target_resolves_to_its_url_host_header_and_kind(target, expected):
    stack = {**STACK, "stack_hosts": ("web", "worker")}
    found = resolve_target(target, allow_remote=True, **stack)
    assert (found.url, found.host_header, found.is_stack) == expected

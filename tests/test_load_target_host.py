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

"""Which names get which certificate, whether the proxy runs, and the proxy's pinned address.

Pure functions of setting values (no import of `provision.settings`: it imports this module).
"""

from __future__ import annotations

import hashlib
import ipaddress

PROXY_CHOICES = ("auto", "caddy", "none")

# Names no public certificate authority will ever certify: reserved for tests and examples
# (RFC 2606, RFC 6761), multicast DNS (RFC 6762), home networks (RFC 8375), and the suffixes
# ICANN reserves or operators commonly use for private networks (.internal, ICANN 2024).
LOCAL_SUFFIXES = (
    ".localhost",
    ".local",
    ".test",
    ".example",
    ".invalid",
    ".internal",
    ".home.arpa",
    ".lan",
    ".home",
    ".corp",
    ".intranet",
    ".private",
)

# The subnet the proxy and web share (network `front`). Docker gives the bridge's gateway and
# web addresses from its lower half (`ip_range`); the proxy, the only peer GlitchTip trusts
# forwarded headers from, has the subnet's last host, which no other container can be given.
SUBNET_PREFIX = 29
SUBNET_BASE = ipaddress.ip_network("10.203.0.0/16")

# TRUSTED_PROXIES without the proxy: an address no other container or host can connect from
# (the web container's own loopback), so nobody's X-Forwarded-* headers are believed.
# GlitchTip 6's default `*` believes anyone's.
NOBODY = "127.0.0.1"


def is_local_host(host: str) -> bool:
    """Whether `host` (a validated host name or IP address, without port) is private or local:
    a name under a reserved suffix, a name without a dot, `localhost`, or any IP address (public
    CAs do not certify those for the kit's ACME setup)."""
    name = host.strip("[]").rstrip(".").lower()
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    if name == "localhost" or "." not in name:
        return True
    return name.endswith(LOCAL_SUFFIXES)


def proxy_enabled(choice: str, domain: str, host: str) -> bool:
    """`proxy: caddy` always, `none` never, `auto` when the public URL is https and its host is
    a public name (a private https name usually already has the operator's own proxy)."""
    if choice == "caddy":
        return True
    if choice == "none":
        return False
    return domain.startswith("https://") and not is_local_host(host)


def default_subnet(project: str) -> str:
    """A /29 under 10.203.0.0/16 chosen by the Compose project name, so two deployments on one
    host get different subnets; outside Docker's default address pools (172.17-31/16 and
    192.168/16), so an automatically created network never takes it first."""
    digest = hashlib.sha256(project.encode("utf-8")).digest()
    blocks = SUBNET_BASE.num_addresses >> (32 - SUBNET_PREFIX)
    index = int.from_bytes(digest[:4], "big") % blocks
    address = SUBNET_BASE.network_address + (index << (32 - SUBNET_PREFIX))
    return f"{address}/{SUBNET_PREFIX}"


def proxy_address(subnet: str) -> str:
    """The proxy's pinned address in `subnet`: its last host, outside `dynamic_range`."""
    network = ipaddress.ip_network(subnet)
    return str(network.broadcast_address - 1)


def dynamic_range(subnet: str) -> str:
    """The lower half of `subnet`: where Docker picks the gateway's and web's addresses, so a
    container started first can never take the proxy's."""
    network = ipaddress.ip_network(subnet)
    return str(next(network.subnets(prefixlen_diff=1)))

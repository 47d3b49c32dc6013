"""compose.locust.yml: the load test's compose file, rendered from templates/ by `provision load`.

It lives with the load test (not in `provision.render`) because it carries the load test's own
default request mix (`payloads.MIX`); the render of the deployment knows nothing of the load test.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from provision.fileio import PUBLIC_FILE_MODE, check_writable_target, write_atomic
from provision.load.payloads import MIX, format_mix
from provision.render import template_environment
from provision.settings import Settings

LOCUST_FILE = "compose.locust.yml"


def load_host_header(settings: Settings) -> str:
    """The Host header the load test sends to the web service: the public host, which
    ALLOWED_HOSTS always holds (the service name `web` is not in it)."""
    return urlsplit(settings.glitchtip_domain).netloc


def render_locust(settings: Settings) -> str:
    """compose.locust.yml for `settings`. Pure; no secret goes into it (the DSN travels in the
    environment of `provision load`)."""
    return (
        template_environment()
        .get_template("compose.locust.yml.j2")
        .render(
            s=settings,
            m=settings.major,
            host_header=load_host_header(settings),
            mix=format_mix(MIX),
        )
    )


def write_locust(settings: Settings) -> bool:
    """Write compose.locust.yml (0644) when it differs; True when it changed."""
    path = settings.directory / LOCUST_FILE
    check_writable_target(path)
    return write_atomic(path, render_locust(settings), mode=PUBLIC_FILE_MODE)

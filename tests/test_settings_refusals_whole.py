"""Settings refusals read whole (the problem line and the fix the user is shown), and the
normalisations a user relies on: each guards a survivor of `make mutation` (issue 20)."""

from __future__ import annotations

import pytest

from provision.errors import SettingsError
from provision.settings import load_settings

pytestmark = pytest.mark.usefixtures("kit_environ")

LOOPBACK_FIX = (
    "use an address GlitchTip's containers can reach (the server's name or IP; for a server on "
    "this host, the address of its docker0 bridge or of the host)"
)


def refusal(tmp_path, **overrides) -> tuple[str, str]:
    with pytest.raises(SettingsError) as refused:
        load_settings(tmp_path, overrides, environ={})
    return refused.value.message, refused.value.fix


def test_a_loopback_database_is_refused_with_the_url_masked(tmp_path):
    assert refusal(tmp_path, database_url="postgres://gt:pw@127.0.0.1:5432/glitchtip") == (
        "database_url (from option database_url): 'postgres://gt:********@127.0.0.1:5432/"
        "glitchtip': 127.0.0.1 is the container's own loopback, not this host's",
        LOOPBACK_FIX,
    )


def test_the_postgres_data_path_of_the_other_layout_is_refused_with_the_right_mount(tmp_path):
    assert refusal(
        tmp_path, postgres_image="postgres:18.1", postgres_data_path="/var/lib/postgresql/data"
    ) == (
        "postgres_data_path (from option postgres_data_path): Postgres 18 keeps its data under "
        "/var/lib/postgresql/<version>; a volume at /var/lib/postgresql/data is refused by the "
        "image",
        "mount it at /var/lib/postgresql (remove postgres_data_path to get the default)",
    )
    assert refusal(
        tmp_path, postgres_image="postgres:16", postgres_data_path="/var/lib/postgresql"
    ) == (
        "postgres_data_path (from option postgres_data_path): Postgres 16 writes to "
        "/var/lib/postgresql/data, an anonymous volume would hide the data from the named volume",
        "mount it at /var/lib/postgresql/data (remove postgres_data_path to get the default)",
    )


def test_a_domain_written_with_capitals_and_the_root_dot_is_the_plain_host(tmp_path):
    """`Errors.Example.COM.` (a fully qualified name, as DNS tools print it) names the same host:
    Django's ALLOWED_HOSTS and the DSN get `errors.example.com`."""
    settings = load_settings(
        tmp_path, {"glitchtip_domain": "https://Errors.Example.COM."}, environ={}
    )
    assert settings.glitchtip_domain == "https://errors.example.com"

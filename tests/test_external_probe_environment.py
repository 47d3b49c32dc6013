"""The environments of the external-service probes, read whole: the probe scripts read
`$KIT_PROBE_URL` (psql) and `$KIT_HOST`... (valkey-cli), so a variable under another name
leaves the probe without its server, and an extra variable holding the URL as written would
put its password where `docker inspect` shows it. Every key and value is compared, for a URL
with a password and one without."""

from __future__ import annotations

from provision.stack import external


def test_psql_gets_the_url_and_the_connect_timeout_and_nothing_else_without_a_password() -> None:
    assert external.postgres_environment("postgres://gt@db.example.com:5432/gt") == {
        "KIT_PROBE_URL": "postgres://gt@db.example.com:5432/gt",
        "PGCONNECT_TIMEOUT": "10",
    }


def test_psql_gets_the_url_without_its_password_and_the_password_apart() -> None:
    url = "postgresql://u%40x:p%23w@db:6543/gt?sslmode=require"
    assert external.postgres_environment(url) == {
        "KIT_PROBE_URL": "postgresql://u%40x@db:6543/gt?sslmode=require",
        "PGCONNECT_TIMEOUT": "10",
        "PGPASSWORD": "p#w",
    }


def test_an_empty_password_is_still_taken_out_of_the_url() -> None:
    assert external.postgres_environment("postgres://gt:@db/gt") == {
        "KIT_PROBE_URL": "postgres://gt@db/gt",
        "PGCONNECT_TIMEOUT": "10",
        "PGPASSWORD": "",
    }


def test_the_probe_script_reads_the_variables_the_environment_sets() -> None:
    assert '"$KIT_PROBE_URL"' in external.POSTGRES_PROBE
    for name in ("KIT_HOST", "KIT_PORT", "KIT_DB", "KIT_TLS", "KIT_USER"):
        assert f"${name}" in external.VALKEY_CLI or f"${{{name}" in external.VALKEY_CLI, name


def test_valkey_cli_gets_host_port_database_tls_user_and_the_password_in_both_names() -> None:
    assert external.valkey_environment("rediss://app:s%2Fecret@cache:6380/3") == {
        "KIT_HOST": "cache",
        "KIT_PORT": "6380",
        "KIT_DB": "3",
        "KIT_TLS": "--tls",
        "KIT_USER": "app",
        "VALKEYCLI_AUTH": "s/ecret",
        "REDISCLI_AUTH": "s/ecret",
    }


def test_valkey_cli_without_a_password_gets_the_defaults_and_no_auth_variable() -> None:
    assert external.valkey_environment("redis://cache") == {
        "KIT_HOST": "cache",
        "KIT_PORT": "6379",
        "KIT_DB": "0",
        "KIT_TLS": "",
        "KIT_USER": "",
    }

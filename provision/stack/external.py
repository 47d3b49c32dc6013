"""Probes of the external services a deployment uses instead of the bundled ones.

`database_url` and `valkey_url` name servers the kit does not run. Before `up` starts anything,
preflight asks each one from a throw-away container (the Postgres image's `psql`, the Valkey
image's `valkey-cli`) on Docker's default bridge network, so the answer is the one GlitchTip's
containers will get: a host name only this machine resolves, or 127.0.0.1 (the container's own
loopback, not the host's), fails here as it would fail there. The URL travels in the
container's environment, never in its command line, and every message is redacted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from provision.errors import KitError

# Bounded: libpq's connect timeout and coreutils' timeout around valkey-cli.
CONNECT_TIMEOUT = 10
PROBE_TIMEOUT = 20
# The password travels in PGPASSWORD / VALKEYCLI_AUTH, never in an argument: the processes of
# a container show in the host's `ps`. (valkey-cli 8.1's `-u redis://:password@host` also sends
# no AUTH at all for an empty user name, and exits 0 on NOAUTH: hence flags, and the PONG test.)
POSTGRES_PROBE = (
    f'exec timeout {PROBE_TIMEOUT} psql "$KIT_PROBE_URL" -XAtqc '
    "\"SELECT current_setting('server_version_num') || ' ' || current_setting('max_connections')\""
)
VALKEY_CLI = (
    'valkey-cli -h "$KIT_HOST" -p "$KIT_PORT" -n "$KIT_DB" $KIT_TLS '
    '${KIT_USER:+--user "$KIT_USER"} --no-auth-warning'
)
VALKEY_PROBE = f"exec timeout {PROBE_TIMEOUT} {VALKEY_CLI} PING"


def postgres_environment(url: str) -> dict[str, str]:
    """psql's environment for `url`: the URL without its password, which goes to PGPASSWORD."""
    from urllib.parse import urlunsplit

    parts = urlsplit(url)
    environment = {"KIT_PROBE_URL": url, "PGCONNECT_TIMEOUT": str(CONNECT_TIMEOUT)}
    if parts.password is not None:
        user = parts.netloc.rpartition("@")[0].partition(":")[0]
        netloc = f"{user}@{parts.netloc.rpartition('@')[2]}"
        environment["KIT_PROBE_URL"] = urlunsplit(parts._replace(netloc=netloc))
        environment["PGPASSWORD"] = unquote(parts.password)
    return environment


def valkey_environment(url: str) -> dict[str, str]:
    """valkey-cli's environment for `url` (see VALKEY_CLI): host, port, database, TLS for
    rediss:// and valkeys://, user, and the password in VALKEYCLI_AUTH (REDISCLI_AUTH before 8)."""
    parts = urlsplit(url)
    environment = {
        "KIT_HOST": parts.hostname or "",
        "KIT_PORT": str(parts.port or 6379),
        "KIT_DB": parts.path.strip("/") or "0",
        "KIT_TLS": "--tls" if parts.scheme.lower() in ("rediss", "valkeys") else "",
        "KIT_USER": unquote(parts.username or ""),
    }
    if parts.password:
        environment["VALKEYCLI_AUTH"] = environment["REDISCLI_AUTH"] = unquote(parts.password)
    return environment


@dataclass(frozen=True)
class ProbeResult:
    """What a throw-away container printed and how it exited."""

    exit_code: int
    output: str


# (image, shell script, environment) -> result; the Docker engine in production, fakes in tests.
Runner = Callable[[str, str, dict[str, str]], ProbeResult]


def url_secrets(url: str) -> list[str]:
    """The password of `url`, as written and percent-decoded: what must never be printed."""
    from provision.masking import url_passwords

    return [form for password in url_passwords(url) for form in (password, unquote(password))]


def _redacted(text: str, url: str) -> str:
    from provision.masking import mask_url_password, redact

    return redact(text.replace(url, mask_url_password(url)), url_secrets(url))


def _first_line(text: str) -> str:
    """psql and valkey-cli say what went wrong first (then hints, or a NOAUTH to the PING)."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0][:300] if lines else "no output"


def check_not_loopback(url: str, setting: str) -> None:
    """Refuse a loopback host: inside a container it is the container itself."""
    from provision.settings import is_loopback_host

    host = (urlsplit(url).hostname or "").lower()
    if is_loopback_host(host):
        raise KitError(
            f"{setting}: {host} is the container's own loopback, not this host's",
            "use an address GlitchTip's containers can reach (the server's name or IP; for a "
            "server on this host, the address of its docker0 bridge or of the host)",
        )


def check_database(settings: Any, run: Runner) -> str:
    """'Postgres <major> at <host>' when the external database answers and is new enough;
    a `KitError` in one line (secrets redacted) otherwise."""
    from provision import majors

    url = settings.effective_database_url
    host = urlsplit(url).hostname
    check_not_loopback(url, "database_url")
    result = run(settings.postgres_image, POSTGRES_PROBE, postgres_environment(url))
    if result.exit_code != 0:
        raise KitError(
            f"the external database at {host} does not answer "
            f"({_redacted(_first_line(result.output), url)})",
            "check database_url (host, port, user, password, database) and database_sslmode, "
            "and that this host may connect to it",
        )
    text = _first_line(result.output)
    fields = text.split()
    if len(fields) != 2 or not all(field.isdigit() for field in fields):
        raise KitError(
            f"the external database at {host} answered {_redacted(text, url)!r}, not a version",
            "check that database_url names a Postgres server",
        )
    major, max_connections = int(fields[0]) // 10000, int(fields[1])
    if major < majors.MINIMUM_POSTGRES:
        raise KitError(
            f"the external database at {host} is Postgres {major}; GlitchTip needs "
            f"{majors.MINIMUM_POSTGRES} or newer",
            f"upgrade that server, or point database_url at Postgres {majors.MINIMUM_POSTGRES}+",
        )
    needed = pools_need(settings)
    if needed > max_connections:
        # The bundled server is sized to fit the pools; an external one is not the kit's to size.
        raise KitError(
            f"the external database at {host} allows {max_connections} connections, but the "
            f"web and worker pools may open {needed}",
            "raise its max_connections, or lower db_pool_max_size, web_concurrency or "
            "worker_concurrency",
        )
    return f"Postgres {major} at {host} (max_connections {max_connections}, pools {needed})"


def pools_need(settings: Any) -> int:
    """The connections GlitchTip's processes may open (settings.connections_needed)."""
    from provision.settings import connections_needed

    return connections_needed(
        settings.major,
        settings.worker_pool,
        settings.worker_concurrency,
        settings.web_concurrency,
        settings.db_pool_max_size,
    )


def check_valkey(settings: Any, run: Runner) -> str:
    """'Valkey at <host>' when the external Valkey answers PING; a `KitError` otherwise."""
    url = settings.valkey_url
    host = urlsplit(url).hostname
    check_not_loopback(url, "valkey_url")
    result = run(settings.valkey_image, VALKEY_PROBE, valkey_environment(url))
    answer = _first_line(result.output)
    if result.exit_code != 0 or answer != "PONG":
        raise KitError(
            f"the external Valkey at {host} does not answer PING ({_redacted(answer, url)})",
            "check valkey_url (host, port, password, rediss:// for TLS) and that this host may "
            "connect to it",
        )
    return f"Valkey at {host}"


def engine_runner(engine: Any) -> Runner:
    """A `Runner` over the Docker engine: `docker run --rm` of `image` with `sh -c script`,
    the image pulled first when it is missing (the bundled service's image is never pulled by
    Compose once it is external)."""

    def run(image: str, script: str, environment: dict[str, str]) -> ProbeResult:
        from docker.errors import ContainerError, ImageNotFound

        client = engine.client
        if not engine.image_present(image):
            engine.call(client.images.pull, image)

        def once() -> ProbeResult:
            # ContainerError (a non-zero exit) is an answer, not an engine failure: caught here,
            # before the engine wrapper turns every DockerException into "does not answer".
            try:
                output = client.containers.run(
                    image,
                    ["sh", "-c", script],
                    environment=environment,
                    remove=True,
                    stdout=True,
                    stderr=True,
                    network_mode="bridge",
                    labels={"org.glitchtip-kit.probe": "external-service"},
                )
            except ContainerError as exc:
                stderr = exc.stderr.decode("utf-8", "replace") if exc.stderr else ""
                return ProbeResult(exc.exit_status, stderr)
            return ProbeResult(0, output.decode("utf-8", "replace"))

        try:
            return engine.call(once)
        except ImageNotFound:
            raise KitError(
                f"image {image} is missing", "pull it, or check the image setting"
            ) from None

    return run


def check_external_services(settings: Any, run: Runner) -> tuple[list[str], list[str]]:
    """(what was found, problems) for every external service of `settings`."""
    found: list[str] = []
    problems: list[str] = []
    checks = []
    if settings.external_database:
        checks.append(check_database)
    if settings.external_valkey:
        checks.append(check_valkey)
    for check in checks:
        try:
            found.append(check(settings, run))
        except KitError as error:
            problems.append(error.line())
    return found, problems

"""Render `templates/` into compose.yml, compose.part.yml and .env.

`render_files` is pure: settings and secrets in, file contents out. `write_rendered` is the edge:
it validates `.env`, refuses to switch advanced partitioning on an existing database, generates
missing secrets, optionally validates the result with `docker compose config` in a scratch
directory, and only then writes the files atomically (compose files 0644, `.env` 0600).

Host-dependent values (web and worker concurrency) and the e-mail URL (it may hold a password)
go to `.env` and reach compose.yml through `${VAR:-default}` interpolation, so the committed
default compose.yml is the same on every host.

The partitioning lock: the first render records `GLITCHTIP_KIT_ADVANCED_PARTITIONING` in `.env`.
GlitchTip's migrations lay tables out differently with advanced partitioning, so the choice
cannot change once the database exists; a later render with the other value is refused. To start
over, remove the database volume (`provision down --volumes`) and that line from `.env`.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from provision import durability, majors, partman_sql, profiles, secret_files
from provision.deployment import COMPOSE_FILE, ENV_FILE, METRICS_FILE, PART_FILE, compose_files
from provision.envfile import (
    format_value,
    parse_env,
    read_env_file,
    set_env_values,
    update_env_file,
)
from provision.errors import SecretsError, SettingsError
from provision.fileio import (
    PUBLIC_FILE_MODE,
    SECRET_FILE_MODE,
    check_writable_target,
    read_text_file,
    write_atomic,
    write_files_atomic,
)
from provision.locking import locked
from provision.secrets import ENV_HEADER, missing_secrets, validate_secrets
from provision.settings import Settings, recorded_values

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

LOCK_KEY = "GLITCHTIP_KIT_ADVANCED_PARTITIONING"
METRICS_KEY = "GLITCHTIP_KIT_METRICS"
COMPOSE_FILES = (COMPOSE_FILE, PART_FILE, METRICS_FILE)
# The file combinations `render --check` validates.
COMBINATIONS: tuple[tuple[str, ...], ...] = (
    (COMPOSE_FILE,),
    (COMPOSE_FILE, PART_FILE),
    (COMPOSE_FILE, METRICS_FILE),
    (COMPOSE_FILE, PART_FILE, METRICS_FILE),
)


def combinations_for(settings: Settings) -> tuple[tuple[str, ...], ...]:
    """The file combinations `render --check` validates for `settings`: all of them, except
    with profile minimal, which runs neither override (the settings refuse both: they extend
    the worker and Valkey, which minimal does not have)."""
    if profiles.is_minimal(settings):
        return ((COMPOSE_FILE,),)
    return COMBINATIONS


def compose_literal(value: object) -> str:
    """A YAML double-quoted scalar for Compose, with `$` escaped so it is never interpolated.

    Non-ASCII text is written as UTF-8, not as JSON's `\\uXXXX` escapes: a character outside the
    Basic Multilingual Plane (an emoji) would become a surrogate pair, which YAML rejects."""
    if isinstance(value, bool):
        value = "true" if value else "false"
    return json.dumps(str(value).replace("$", "$$"), ensure_ascii=False)


def web_probe(settings: Settings) -> str:
    """Python source of the web healthcheck: GET /_health/ with the public Host header."""
    host = urlsplit(settings.glitchtip_domain).netloc
    url = f"http://127.0.0.1:{settings.major.web_port}/_health/"
    return (
        "import urllib.request as r; "
        f"r.urlopen(r.Request({url!r}, headers={{'Host': {host!r}}}), timeout=4)"
    )


def worker_probe(major: majors.Major) -> str:
    """Python source of the worker healthcheck: is the worker process alive (via /proc)?"""
    marker = major.worker_process_marker.encode()
    return (
        "import os, sys\n"
        f"marker = {marker!r}\n"
        "me = str(os.getpid())\n"
        "def alive(pid):\n"
        "    try:\n"
        "        with open('/proc/' + pid + '/cmdline', 'rb') as f:\n"
        "            return pid != me and marker in f.read()\n"
        "    except OSError:\n"
        "        return False\n"
        "sys.exit(0 if any(alive(p) for p in os.listdir('/proc') if p.isdigit()) else 1)\n"
    )


def partman_script(major: majors.Major) -> str:
    """Shell for the partman-setup service: GlitchTip's own command, its output kept.

    It exits 0 even when pg_partman refused it (and on v5.1.0 it always fails: contract
    NOTES.md), so its output decides nothing here: the partman-config service that follows
    configures whatever is still missing and checks the result (provision/partman_sql.py).
    Only a command that crashed (exit status not 0) stops the setup."""
    return (
        f"out=$({major.partman_setup_command} 2>&1); rc=$?; printf '%s\\n' \"$out\"; "
        'if [ "$rc" -ne 0 ]; then echo "partman-setup: '
        f'{major.partman_setup_command} exited $rc" >&2; exit "$rc"; fi; '
        f"if printf '%s' \"$out\" | grep -q '{major.partman_setup_success}'; then "
        "echo 'partman-setup: GlitchTip configured pg_partman'; else "
        "echo 'partman-setup: GlitchTip did not configure pg_partman; partman-config will'; fi"
    )


def allowed_hosts(settings: Settings) -> str:
    """ALLOWED_HOSTS: the public host plus the addresses the kit itself uses from this host."""
    hosts = [urlsplit(settings.glitchtip_domain).hostname or "localhost", "localhost", "127.0.0.1"]
    internal = urlsplit(settings.internal_url).hostname
    if internal:
        hosts.append(internal if ":" not in internal else f"[{internal}]")
    return ",".join(dict.fromkeys(hosts))


def tuning_values(settings: Settings) -> dict[str, str]:
    """The host-derived worker, pool and Postgres sizes (`.env` keys; see settings.py)."""
    return {
        "GLITCHTIP_KIT_WORKER_POOL": settings.worker_pool,
        "GLITCHTIP_KIT_WORKER_PREFETCH": str(settings.worker_prefetch),
        "GLITCHTIP_KIT_DB_POOL_MAX_SIZE": str(settings.db_pool_max_size),
        "GLITCHTIP_KIT_POSTGRES_MAX_CONNECTIONS": str(settings.postgres_max_connections),
        "GLITCHTIP_KIT_POSTGRES_SHARED_BUFFERS_MB": str(settings.postgres_shared_buffers_mb),
        "GLITCHTIP_KIT_POSTGRES_EFFECTIVE_CACHE_SIZE_MB": str(
            settings.postgres_effective_cache_size_mb
        ),
        "GLITCHTIP_KIT_POSTGRES_MAINTENANCE_WORK_MEM_MB": str(
            settings.postgres_maintenance_work_mem_mb
        ),
    }


def limit_values(settings: Settings) -> dict[str, str]:
    """The containers' memory, CPU and pids limits (`.env` keys; see provision/limits.py)."""
    from provision.limits import limit_values as derive
    from provision.settings import host_resources

    return derive(settings, host_resources()[0])


def metrics_allowed_hosts(settings: Settings) -> str:
    """ALLOWED_HOSTS of the web service with metrics on: also `web`, the name Prometheus
    scrapes it by on the stack's network (Prometheus cannot send another Host header)."""
    return ",".join(dict.fromkeys([*allowed_hosts(settings).split(","), "web"]))


def exporter_probe() -> str:
    """Python source of the project exporter's healthcheck: its /metrics answers."""
    from provision.monitoring.files import EXPORTER_PORT

    return (
        "import urllib.request as r; "
        f"r.urlopen('http://127.0.0.1:{EXPORTER_PORT}/metrics', timeout=4)"
    )


SECRET_ORDER = ("SECRET_KEY", "POSTGRES_PASSWORD", "DJANGO_SUPERUSER_PASSWORD")


def env_values(settings: Settings, secrets: Mapping[str, str]) -> dict[str, str]:
    """The keys the kit manages in `.env`, in file order: secrets, then rendered values."""
    values = {key: secrets[key] for key in SECRET_ORDER if key in secrets}
    if "GRAFANA_ADMIN_PASSWORD" in secrets:
        values["GRAFANA_ADMIN_PASSWORD"] = secrets["GRAFANA_ADMIN_PASSWORD"]
    values["EMAIL_URL"] = settings.email_url
    values.update(external_values(settings))
    values["COMPOSE_FILE"] = ":".join(compose_files(settings))
    values["GLITCHTIP_KIT_WEB_CONCURRENCY"] = str(settings.web_concurrency)
    values["GLITCHTIP_KIT_WORKER_CONCURRENCY"] = str(settings.worker_concurrency)
    values.update(tuning_values(settings))
    values.update(limit_values(settings))
    values[LOCK_KEY] = "true" if settings.advanced_partitioning else "false"
    values[METRICS_KEY] = "true" if settings.metrics else "false"
    values.update(recorded_values(settings))
    if secrets.get("SECRET_KEY"):
        found = secret_files.values(settings, secrets)
        values.update(secret_files.versions(found))
    return values


def external_values(settings: Settings) -> dict[str, str]:
    """The external services' settings as `.env` keys (GlitchTip's own variable names), always
    written, empty for a bundled service: compose.yml reads the URLs and keys from here, so no
    password or key is ever in a rendered file, and emptying one switches back to the bundled
    service at the next render. compose.yml adds `database_sslmode` to DATABASE_URL."""
    from provision.settings import ENV_FILE_FALLBACK

    values = {
        ENV_FILE_FALLBACK[name]: str(settings.value(name))
        for name in (
            "database_sslmode",
            "valkey_url",
            "uploads_bucket",
            "uploads_endpoint_url",
            "uploads_region",
            "uploads_access_key_id",
            "uploads_secret_access_key",
        )
    }
    values["DATABASE_URL"] = settings.database_url
    return values


def template_environment():
    """The Jinja2 environment of `templates/` with the kit's quoting filters."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["lit"] = compose_literal
    env.filters["yq"] = compose_literal
    env.filters["envq"] = env_quote
    return env


def render_files(settings: Settings, secrets: Mapping[str, str]) -> dict[str, str]:
    """Relative path -> content of compose.yml, compose.part.yml, compose.metrics.yml, every
    file under monitoring/, and a fresh `.env`. Pure."""
    from provision.monitoring import files as monitoring

    env = template_environment()
    major = settings.major
    proxied = proxy_files(settings, env)
    context = {
        "s": settings,
        "m": major,
        "p": majors.partman_reference(),
        # Which secret files each service reads, and how (provision/secret_files.py).
        "sf": secret_files.plan_for(settings),
        "https": settings.glitchtip_domain.startswith("https://"),
        "allowed_hosts": allowed_hosts(settings),
        "web_probe": web_probe(settings),
        "worker_probe": worker_probe(major),
        "durability": durability,
        "worker_settings": worker_settings_context(settings),
        "partman_script": partman_script(majors.partman_reference()),
        "partman_config_command": partman_sql.command(),
        # The service set (provision.profiles): all-in-one `web`, and Valkey or not.
        "minimal": profiles.is_minimal(settings),
        "valkey": profiles.uses_valkey(settings),
        **proxy_context(settings, proxied),
        # The bundled services GlitchTip's containers wait for (external ones are not started).
        "deps": [
            name
            for name, external in (
                ("postgres", settings.external_database),
                ("valkey", settings.external_valkey or not profiles.uses_valkey(settings)),
            )
            if not external
        ],
    }
    compose = env.get_template("compose.yml.j2").render(
        **context, partitioning=settings.advanced_partitioning
    )
    part = env.get_template("compose.part.yml.j2").render(**context, partitioning=True)
    observed = monitoring.monitoring_files(
        settings, lambda name, values: env.get_template(name).render(**values)
    )
    metrics = env.get_template("compose.metrics.yml.j2").render(
        **context,
        metrics_allowed_hosts=metrics_allowed_hosts(settings),
        digests=monitoring.digests(observed),
        queue_keys=monitoring.queue_keys_check(major.task_queue_keys),
        exporter_probe=exporter_probe(),
    )
    dotenv = env.get_template("env.j2").render(
        header=ENV_HEADER, values=env_values(settings, secrets)
    )
    return {
        COMPOSE_FILE: compose,
        PART_FILE: part,
        METRICS_FILE: metrics,
        **observed,
        **proxied,
        **worker_settings_files(settings),
        ENV_FILE: dotenv,
    }


def _uses_worker_settings(settings: Settings) -> bool:
    """The worker loads the kit's settings module (provision/durability) wherever it runs: the
    standard profile's worker service, and the minimal profile's all-in-one web service, which
    runs the worker in its own process (GlitchTip 5: app.py's Celery worker in a thread; 6:
    django-vtasks' worker embedded in granian, on the database backend since VALKEY_URL="")."""
    return settings.major.worker_settings_overlay


def worker_settings_files(settings: Settings) -> dict[str, str]:
    """python/glitchtip_kit_worker_settings.py where the worker loads it, else nothing."""
    if not _uses_worker_settings(settings):
        return {}
    return {durability.WORKER_SETTINGS_FILE: _worker_settings_text(settings)}


def _worker_settings_text(settings: Settings) -> str:
    """The module's text; in the minimal profile it also sizes the all-in-one's embedded worker
    (GlitchTip 5: app.py's threaded worker reads its size from the settings only)."""
    embedded = None
    if profiles.is_minimal(settings) and settings.major.all_in_one_worker_pool is not None:
        embedded = (settings.worker_concurrency, settings.worker_prefetch)
    return durability.worker_settings_module(settings.major.number, embedded)


def worker_settings_context(settings: Settings) -> dict[str, str] | None:
    """The worker's settings module for compose.yml: its name, mount and digest (a label, so
    `up` recreates the worker when the file changes), or None."""
    if not _uses_worker_settings(settings):
        return None
    import hashlib

    content = _worker_settings_text(settings).encode()
    return {
        "module": durability.WORKER_SETTINGS_MODULE,
        "directory": durability.WORKER_SETTINGS_DIR,
        "pythonpath": durability.WORKER_PYTHONPATH,
        "source": "./" + durability.WORKER_SETTINGS_FILE.rpartition("/")[0],
        "digest": hashlib.sha256(content).hexdigest()[:16],
    }


def proxy_files(settings: Settings, env) -> dict[str, str]:
    """proxy/Caddyfile when the TLS front door runs, else nothing."""
    if not settings.proxy_enabled:
        return {}
    from provision.proxy.caddyfile import CADDYFILE, render_caddyfile

    return {
        CADDYFILE: render_caddyfile(
            settings, lambda name, values: env.get_template(name).render(**values)
        )
    }


def proxy_context(settings: Settings, proxied: Mapping[str, str]) -> dict[str, object]:
    """The compose template's proxy values. TRUSTED_PROXIES (GlitchTip 6's granian believes
    X-Forwarded-For/Proto from these peers; its default `*` believes anyone): the proxy's pinned
    address with the proxy, else the web container's own loopback, which no one else can use."""
    from provision.proxy import caddyfile, names

    if not settings.proxy_enabled:
        return {"proxy": False, "trusted_proxies": names.NOBODY}
    address = names.proxy_address(settings.proxy_subnet)
    return {
        "proxy": True,
        "proxy_address": address,
        "proxy_ip_range": names.dynamic_range(settings.proxy_subnet),
        "trusted_proxies": address,
        "caddyfile_digest": caddyfile.digest(proxied[caddyfile.CADDYFILE]),
        "caddy": caddyfile,
    }


def check_partitioning_lock(settings: Settings, existing: Mapping[str, str]) -> None:
    """Refuse to switch advanced partitioning once the first render recorded a choice."""
    recorded = existing.get(LOCK_KEY)
    wanted = "true" if settings.advanced_partitioning else "false"
    if recorded is None or recorded == wanted:
        return
    if recorded not in ("true", "false"):
        raise SettingsError(
            f"{LOCK_KEY} in .env is {recorded!r}, not true or false",
            "restore the value recorded at the first render",
        )
    raise SettingsError(
        f"advanced_partitioning: the database was set up with advanced partitioning "
        f"{'on' if recorded == 'true' else 'off'} and cannot switch on an existing database",
        f"keep advanced_partitioning: {recorded}, or start over: `provision down --volumes` "
        f"(deletes all data) and remove the {LOCK_KEY} line from .env",
    )


def env_quote(value: str) -> str:
    """A `.env` value as Compose and `provision.envfile` read it back (single-quoted if needed);
    the same rules as every other `.env` write (`provision.envfile.format_value`)."""
    return format_value(value)


def plan(settings: Settings) -> tuple[dict[str, str], dict[str, str]]:
    """Validate `.env` and the lock, generate missing secrets (unsaved); return
    (rendered files, the managed `.env` values). Nothing is written."""
    existing = read_env_file(settings.env_path)
    validate_secrets(existing)
    check_partitioning_lock(settings, existing)
    secrets = {**existing, **missing_secrets(existing)}
    files = render_files(settings, secrets)
    managed = env_values(settings, secrets)
    return files, managed


def check_rendered(settings: Settings, files: Mapping[str, str], managed: Mapping[str, str]):
    """Validate `files` with `docker compose config` in a private scratch directory.

    Compose names the scratch copy in its errors; the message names the deployment's file
    instead (the scratch directory is gone by the time the operator reads it). A refusal is bad
    input (exit 2): only settings reach these files.
    """
    from provision.errors import UsageError
    from provision.runtime.compose_check import ComposeRejected, check_compose

    with tempfile.TemporaryDirectory(prefix="glitchtip-kit-check-") as scratch:
        root = Path(scratch)
        for name in COMPOSE_FILES:
            (root / name).write_text(files[name], encoding="utf-8")
        # Empty stand-ins: `config` needs no secret, and no value goes to the scratch copy.
        secret_files.write_files(
            root / secret_files.SECRETS_DIR, dict.fromkeys(secret_files.BY_NAME, "")
        )
        existing = read_text_file(settings.env_path)
        if existing is not None:
            # The real .env with this render's keys set, exactly as write_rendered will make it.
            write_atomic(root / ENV_FILE, existing, mode=SECRET_FILE_MODE)
            update_env_file(root / ENV_FILE, managed)
        else:
            write_atomic(root / ENV_FILE, files[ENV_FILE], mode=SECRET_FILE_MODE)
        for combination in combinations_for(settings):
            try:
                check_compose(root, list(combination))
            except ComposeRejected as error:
                # Compose itself failing (missing, timed out) stays a KitError (exit 1).
                shown = error.message.replace(str(root.resolve()), str(settings.directory))
                shown = shown.replace(str(root), str(settings.directory))
                shown = shown.replace("./.env", str(settings.env_path))
                fix = error.fix
                if ".env" in shown.partition(":")[2]:
                    fix = (
                        f"fix that line in {settings.env_path} (keys you added are kept as "
                        "written), then run `provision render --check` again"
                    )
                raise UsageError(shown, fix) from None


def write_rendered(settings: Settings, check: bool = False) -> list[Path]:
    """Render and write compose.yml, compose.part.yml and `.env`; return the changed paths.

    Every check (settings, `.env`, partitioning lock, and with `check=True` docker compose
    config) runs before the first write, so a refusal leaves every file as it was. Secrets
    already in `.env` are kept byte for byte; other keys in `.env` are kept. The deployment lock
    is held from reading `.env` to the last write, so a concurrent `rotate-secret` or `init`
    is never undone by this render's stale copy.
    """
    env_path = settings.env_path
    with locked(settings.directory):
        files, managed = plan(settings)
        public = [name for name in files if name != ENV_FILE]
        for path in [env_path, *(settings.directory / name for name in public)]:
            check_writable_target(path)  # symlinks and FIFOs are refused before any write
        secrets_dir = secret_files.directory_of(settings)
        secret_files.check_directory(secrets_dir)
        from provision.monitoring.files import MOUNTED_DIRECTORIES

        mounted = [f"{name}/_" for name in MOUNTED_DIRECTORIES]  # "_": any file inside
        directories = _directories(settings.directory, [*public, *mounted])
        if check:
            check_rendered(settings, files, managed)
        existing = read_text_file(env_path, error=SecretsError)
        if existing is not None:
            parse_env(existing, source=str(env_path))  # refuse to build on a corrupt file
            env_text = set_env_values(existing, managed)
        else:
            env_text = files[ENV_FILE]
        parse_env(env_text)  # a template bug must not write a corrupt .env
        # The secret files' values, from .env as this render leaves it.
        secret_values = secret_files.values(settings, parse_env(env_text))
        _make_directories(directories)
        # One change: .env (which records port, project, major) and the compose files it goes
        # with are all written, or none is (a full disk midway left them disagreeing).
        changed = write_files_atomic(
            [
                (env_path, env_text, SECRET_FILE_MODE),
                *((settings.directory / name, files[name], PUBLIC_FILE_MODE) for name in public),
            ]
        )
        # The secret files, from .env as just written (0700 directory, see secret_files.py).
        changed += secret_files.write_files(secrets_dir, secret_values)
        return changed


PUBLIC_DIRECTORY_MODE = 0o755  # the containers' users (nobody, grafana, app) read monitoring/


def _directories(root: Path, names: list[str]) -> list[Path]:
    """The directories the rendered files go into, parents first; refused (before anything is
    written) when one is a symlink or not a directory: the kit writes only into its own."""
    from provision.errors import UsageError

    found: dict[Path, None] = {}
    for name in names:
        for parent in reversed(Path(name).parents[:-1]):
            found[root / parent] = None
    for directory in found:
        if directory.is_symlink() or (directory.exists() and not directory.is_dir()):
            top = directory.relative_to(root).parts[0]
            raise UsageError(
                f"{directory} is a symbolic link or not a directory",
                f"the kit writes {top}/ only into a directory of its own: move it away and "
                "render again",
            )
    return list(found)


def _make_directories(directories: list[Path]) -> None:
    """Create the missing ones with mode 0755 whatever the umask (containers read them)."""
    import os

    for directory in directories:
        if not directory.exists():
            directory.mkdir()
            os.chmod(directory, PUBLIC_DIRECTORY_MODE)

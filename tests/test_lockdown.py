"""Locked-down containers: every service of every rendered variant drops all capabilities, runs
on a read-only root file system with tmpfs where it writes, has memory, CPU and pids limits; and
`compose-lint` (OWASP / CIS Docker Benchmark rules) finds nothing medium or worse in any variant
but image digest pinning, which the kit supports and the operator chooses (docs/hardening.md).

Before this work the committed compose.yml had 0 high, 15 medium, 5 low findings (issue 11).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from provision import limits
from provision.deployment import compose_files as compose_files_for
from provision.load.compose_file import LOCUST_FILE, render_locust
from provision.render import render_files
from provision.settings import Invalid, load_settings, parse_image

pytestmark = pytest.mark.usefixtures("kit_environ")

SECRETS = {
    "SECRET_KEY": "s" * 50,
    "POSTGRES_PASSWORD": "p" * 30,
    "DJANGO_SUPERUSER_PASSWORD": "d" * 20,
    "GRAFANA_ADMIN_PASSWORD": "g" * 20,
}
DIGEST = "@sha256:" + "0123456789abcdef" * 4

VARIANTS: dict[str, dict[str, str]] = {
    "default-6": {},
    "metrics-6": {"metrics": "true"},
    "major-5": {"glitchtip_major": "5"},
    "partman-metrics-5": {
        "glitchtip_major": "5",
        "advanced_partitioning": "true",
        "metrics": "true",
    },
    "proxy-6": {"glitchtip_domain": "https://errors.example.com", "proxy": "caddy"},
    "minimal-6": {"profile": "minimal"},
    "minimal-5": {"glitchtip_major": "5", "profile": "minimal"},
}
IMAGE_SETTINGS = (
    "glitchtip_image",
    "postgres_image",
    "valkey_image",
    "partman_image",
    "locust_image",
    "prometheus_image",
    "grafana_image",
    "postgres_exporter_image",
    "valkey_exporter_image",
    "caddy_image",
)
# The one rule the kit leaves to the operator: pinning by digest (image@sha256:...) is
# supported by every image setting (see test_digest_pinned_variant_has_no_finding), but the
# defaults are version tags: a digest is per registry and per platform, and a mirror has its own.
ALLOWED_RULES = {"CL-0019"}
# Capabilities a service may add back, and why (docs/hardening.md).
CAP_ADD = {"proxy": {"NET_BIND_SERVICE"}}  # Caddy's binary carries that file capability
# Services whose root file system stays writable, and why: the headless Locust master's report
# is copied out with `compose cp` after it exits (a tmpfs is gone then). Secrets need no writable
# root: they are bind-mounted files (provision/secret_files.py), never `environment:` sources,
# which Compose copies into the container and refuses for a read-only one.
WRITABLE_ROOT = {"locust-headless"}


def secret_sources(directory: Path, files: list[str]) -> dict[str, dict]:
    """Every top-level secret of `files`, by name."""
    found: dict[str, dict] = {}
    for name in files:
        document = yaml.safe_load((directory / name).read_text())
        found.update(document.get("secrets") or {})
    return found


def compose_lint() -> list[str]:
    found = shutil.which("compose-lint") or str(Path(sys.executable).parent / "compose-lint")
    return [found]


def render_variant(directory: Path, overrides: dict[str, str]) -> list[str]:
    """Render a variant's compose files (and a `.env` naming them, without secrets, as the
    linter would find beside a deployment's files once the secrets are elsewhere); return the
    compose files the deployment uses."""
    available = {spec for spec in overrides if spec in _spec_names()}
    if available != set(overrides):
        pytest.skip(f"settings not in this checkout: {set(overrides) - available}")
    settings = load_settings(directory, overrides, environ={})
    for name, text in render_files(settings, SECRETS).items():
        if name == ".env":
            continue
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (directory / LOCUST_FILE).write_text(render_locust(settings), encoding="utf-8")
    files = compose_files_for(settings)
    (directory / ".env").write_text(f"COMPOSE_FILE={':'.join(files)}\n", encoding="utf-8")
    return files


def _spec_names() -> set[str]:
    from provision.settings import SPEC_BY_NAME

    return set(SPEC_BY_NAME)


def lint(directory: Path, *files: str) -> list[dict]:
    """compose-lint's findings (JSON) for `files` in `directory` (none: the deployment's
    COMPOSE_FILE, merged as Compose merges it)."""
    result = subprocess.run(
        [*compose_lint(), "check", "--format", "json", "--fail-on", "critical", *files],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode in (0, 1), result.stderr
    report = json.loads(result.stdout)
    assert not report["errors"], report["errors"]
    return report["findings"]


def serious(findings: list[dict]) -> list[tuple[str, str, str]]:
    return [
        (finding["rule_id"], finding["service"], finding["message"][:100])
        for finding in findings
        if finding["severity"] in ("medium", "high", "critical")
        and finding["rule_id"] not in ALLOWED_RULES
    ]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_compose_lint_finds_nothing_medium_or_worse(tmp_path: Path, variant: str) -> None:
    render_variant(tmp_path, VARIANTS[variant])
    merged = lint(tmp_path)  # the deployment's files, merged
    assert merged, "compose-lint graded nothing"  # at least the digest rule fires on tags
    assert serious(merged) == []
    assert serious(lint(tmp_path, LOCUST_FILE)) == []


# Settings that give the external services credentials, so their secrets are checked too.
EXTERNAL = {
    "GLITCHTIP_KIT_DATABASE_URL": "postgres://gt:Db-Pass-4217aa@db.example.com:5432/glitchtip",
    "GLITCHTIP_KIT_VALKEY_URL": "redis://:Vk-Pass-8812bb@cache.example.com:6379/0",
    "GLITCHTIP_KIT_UPLOADS_BUCKET": "gt-uploads",
    "GLITCHTIP_KIT_UPLOADS_ACCESS_KEY_ID": "AKIA-KIT-ID-0042",
    "GLITCHTIP_KIT_UPLOADS_SECRET_ACCESS_KEY": "S3-Secret-Key-9931cc",
    "EMAIL_URL": "smtp+tls://mailer:Mail-Pass-5521dd@smtp.example.com:587",
}
REAL_ENV_VARIANTS = {
    **VARIANTS,
    "external-6": {"metrics": "true"},
    "external-5": {"glitchtip_major": "5"},
}


@pytest.mark.parametrize("variant", list(REAL_ENV_VARIANTS))
def test_compose_lint_with_the_real_env_finds_nothing_high(tmp_path: Path, variant: str) -> None:
    """How a user runs it: `compose-lint` in the deployment directory, with the `.env` render
    wrote beside the files (every secret in it). Before the secrets became files, every variant
    had CL-0020 (SECRET_KEY) and CL-0021 (DATABASE_URL with a password) high in web and worker."""
    from provision.envfile import read_env_file
    from provision.load.compose_file import write_locust
    from provision.render import write_rendered
    from provision.secrets import SECRET_KEYS

    environ = dict(EXTERNAL) if variant.startswith("external") else {}
    settings = load_settings(tmp_path, REAL_ENV_VARIANTS[variant], environ=environ)
    write_rendered(settings)
    write_locust(settings)
    env = read_env_file(tmp_path / ".env")
    secrets = [env[key] for key in SECRET_KEYS if env.get(key)]
    assert len(secrets) >= 4 + (4 if environ else 0)  # the variant's secrets are in .env
    findings = lint(tmp_path) + lint(tmp_path, LOCUST_FILE)
    high = [f for f in findings if f["severity"] in ("high", "critical")]
    assert high == [], [(f["rule_id"], f["service"]) for f in high]
    shown = json.dumps(findings)
    assert not [key for key in SECRET_KEYS if env.get(key) and env[key] in shown]


def test_digest_pinned_variant_has_no_finding(tmp_path: Path) -> None:
    """With every image pinned by digest, the allowed rule is gone too: nothing medium or worse
    is left, so the allow-list covers the digest rule and nothing else."""
    from provision.settings import SPEC_BY_NAME

    settings = load_settings(tmp_path, {"glitchtip_major": "5", "metrics": "true"}, environ={})
    pinned = {
        name: getattr(settings, name) + DIGEST for name in IMAGE_SETTINGS if name in SPEC_BY_NAME
    }
    overrides = {"glitchtip_major": "5", "metrics": "true", "advanced_partitioning": "true"}
    render_variant(tmp_path, {**overrides, **pinned})
    findings = lint(tmp_path) + lint(tmp_path, LOCUST_FILE)
    assert [f for f in findings if f["severity"] in ("medium", "high", "critical")] == []


def services_of(directory: Path, files: list[str]) -> dict[str, dict]:
    """The services of `files` merged the simple way (later files' keys win), anchors resolved:
    enough to see the hardening keys, which the overrides never remove."""
    services: dict[str, dict] = {}
    for name in files:
        for service, config in yaml.safe_load((directory / name).read_text())["services"].items():
            services.setdefault(service, {}).update(config)
    return services


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_service_is_locked_down(tmp_path: Path, variant: str) -> None:
    files = render_variant(tmp_path, VARIANTS[variant])
    services = services_of(tmp_path, [*files, LOCUST_FILE])
    writable = WRITABLE_ROOT
    for name, spec in secret_sources(tmp_path, [*files, LOCUST_FILE]).items():
        assert set(spec) == {"file"} and spec["file"] == f"./secrets/{name}", name
    # The variant is what it says: the services each adds are there to be checked.
    expected = {
        "compose.part.yml": "partman-setup",
        "compose.metrics.yml": "project-exporter",
    }
    for file, service in expected.items():
        assert (service in services) == (file in files), service
    assert ("proxy" in services) == variant.startswith("proxy"), variant
    assert ("worker" not in services) == variant.startswith("minimal"), variant
    for name, service in services.items():
        assert service.get("cap_drop") == ["ALL"], name
        assert set(service.get("cap_add") or ()) <= CAP_ADD.get(name, set()), name
        assert service.get("read_only") is (name not in writable), name
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        assert service.get("mem_limit"), name
        assert service.get("cpus"), name
        assert service.get("pids_limit"), name
        assert not service.get("privileged"), name
        assert str(service.get("user", "")).partition(":")[0] not in ("root", "0"), name
        # Every GlitchTip container gets a writable /tmp: GlitchTip 5's Celery beat keeps its
        # schedule there (-s /tmp/celerybeat-schedule), Python's tempfile needs one.
        if "glitchtip" in str(service.get("image")):
            assert any(str(t).startswith("/tmp:") for t in service.get("tmpfs", [])), name


def test_databases_run_as_their_image_users(tmp_path: Path) -> None:
    """Postgres and Valkey start as the user owning their volume: their entrypoints then need
    no chown and no user switch, so they get no capability back."""
    services = services_of(tmp_path, render_variant(tmp_path, {}))
    assert services["postgres"]["user"] == "postgres"
    assert services["valkey"]["user"] == "valkey"
    assert "/var/run/postgresql:size=16m,mode=1777" in services["postgres"]["tmpfs"]


@pytest.mark.snapshot
def test_committed_files_carry_no_host_figure() -> None:
    """The committed default render is the same on every host: host-derived limits come from
    `.env` with a fixed fallback."""
    repo = Path(__file__).resolve().parent.parent
    services = yaml.safe_load((repo / "compose.yml").read_text())["services"]
    assert services["web"]["mem_limit"] == "${GLITCHTIP_KIT_WEB_MEMORY_LIMIT:-1024m}"
    assert services["postgres"]["cpus"] == "${GLITCHTIP_KIT_CPUS:-1}"
    assert services["postgres"]["pids_limit"] == "${GLITCHTIP_KIT_POSTGRES_PIDS_LIMIT:-164}"


@pytest.mark.parametrize(
    "image",
    [
        "postgres:18.1" + DIGEST,
        "postgres" + DIGEST,
        "registry.local:5000/glitchtip/glitchtip:6.2.6" + DIGEST,
    ],
)
def test_image_settings_accept_digests(image: str) -> None:
    assert parse_image(image) == image


@pytest.mark.parametrize(
    "image",
    ["postgres:18.1@sha256:abc", "postgres@sha512:" + "0" * 128, "postgres:18.1@" + "0" * 64],
)
def test_image_settings_refuse_bad_digests(image: str) -> None:
    with pytest.raises(Invalid):
        parse_image(image)


def test_postgres_version_comes_from_the_tag_of_a_pinned_image(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, {"postgres_image": "postgres:17.7" + DIGEST}, environ={})
    assert settings.postgres_version == 17
    assert settings.postgres_data_path == "/var/lib/postgresql/data"


# --- the limits ---


def test_limits_follow_the_settings(tmp_path: Path, monkeypatch) -> None:
    from provision import settings as settings_module
    from provision.render import env_values

    monkeypatch.setattr(settings_module, "host_resources", lambda: (4, 8192))
    one = load_settings(tmp_path, {"web_concurrency": "1"}, environ={})
    four = load_settings(tmp_path, {"web_concurrency": "4"}, environ={})
    assert four.web_memory_limit_mb - one.web_memory_limit_mb == 3 * limits.WEB_PER_PROCESS_MB
    values = env_values(four, SECRETS)
    assert values["GLITCHTIP_KIT_CPUS"] == "4"
    assert values["GLITCHTIP_KIT_WEB_MEMORY_LIMIT"] == f"{four.web_memory_limit_mb}m"
    assert int(values["GLITCHTIP_KIT_WEB_PIDS_LIMIT"]) > int(
        env_values(one, SECRETS)["GLITCHTIP_KIT_WEB_PIDS_LIMIT"]
    )
    more = load_settings(tmp_path, {"postgres_max_connections": "400"}, environ={})
    assert more.postgres_memory_limit_mb > four.postgres_memory_limit_mb
    assert env_values(more, SECRETS)["GLITCHTIP_KIT_POSTGRES_PIDS_LIMIT"] == str(
        400 + limits.POSTGRES_EXTRA_PIDS
    )


def test_limits_never_exceed_the_host(tmp_path: Path, monkeypatch) -> None:
    from provision import settings as settings_module

    monkeypatch.setattr(settings_module, "host_resources", lambda: (1, 1024))
    settings = load_settings(tmp_path, {"web_concurrency": "8"}, environ={})
    for name in ("web", "worker", "postgres", "valkey"):
        assert getattr(settings, f"{name}_memory_limit_mb") <= 1024, name
    assert settings.valkey_memory_limit_mb == limits.VALKEY_MIN_MB


def test_prefork_worker_gets_memory_per_process(tmp_path: Path, monkeypatch) -> None:
    from provision import settings as settings_module

    monkeypatch.setattr(settings_module, "host_resources", lambda: (8, 65536))
    base = {"glitchtip_major": "5", "worker_concurrency": "6"}
    threads = load_settings(tmp_path, {**base, "worker_pool": "threads"}, environ={})
    prefork = load_settings(tmp_path, {**base, "worker_pool": "prefork"}, environ={})
    assert threads.worker_memory_limit_mb == limits.WORKER_SINGLE_PROCESS_MB
    assert prefork.worker_memory_limit_mb == (
        limits.WORKER_PREFORK_BASE_MB + 6 * limits.WORKER_PER_CHILD_MB
    )


def test_a_limit_can_be_raised(tmp_path: Path) -> None:
    from provision.render import env_values

    (tmp_path / "glitchtip.yaml").write_text("web_memory_limit_mb: 3000\n")
    settings = load_settings(tmp_path, environ={"GLITCHTIP_KIT_POSTGRES_MEMORY_LIMIT_MB": "5000"})
    values = env_values(settings, SECRETS)
    assert values["GLITCHTIP_KIT_WEB_MEMORY_LIMIT"] == "3000m"
    assert values["GLITCHTIP_KIT_POSTGRES_MEMORY_LIMIT"] == "5000m"


def test_all_in_one_container_gets_web_and_worker_limits(tmp_path: Path) -> None:
    from provision.render import env_values
    from provision.settings import SPEC_BY_NAME

    if "profile" not in SPEC_BY_NAME:
        pytest.skip("no profile setting in this checkout")
    standard = load_settings(tmp_path, {"profile": "standard"}, environ={})
    minimal = load_settings(tmp_path, {"profile": "minimal"}, environ={})
    assert env_values(minimal, SECRETS)["GLITCHTIP_KIT_WEB_MEMORY_LIMIT"] == (
        f"{minimal.web_memory_limit_mb + minimal.worker_memory_limit_mb}m"
    )
    assert env_values(standard, SECRETS)["GLITCHTIP_KIT_WEB_MEMORY_LIMIT"] == (
        f"{standard.web_memory_limit_mb}m"
    )


def test_postgres_limit_below_its_buffers_is_refused(tmp_path: Path) -> None:
    from provision.errors import SettingsError

    with pytest.raises(SettingsError, match="postgres_memory_limit_mb"):
        load_settings(
            tmp_path,
            {"postgres_shared_buffers_mb": "1024", "postgres_memory_limit_mb": "512"},
            environ={},
        )


def test_restore_gives_back_only_what_root_needs_for_the_uploads() -> None:
    from provision.ops.restore import uploads_restore_args

    args = uploads_restore_args("/code/uploads")
    added = {args[i + 1] for i, arg in enumerate(args) if arg == "--cap-add"}
    assert added == {"CHOWN", "DAC_OVERRIDE", "FOWNER"}

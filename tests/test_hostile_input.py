"""Hostile input, values and options: non-ASCII, create-project names and files, settings given
only once, numbers that end in tracebacks, and errors whose fix was wrong. Real CLI, real files;
every refusal is one line, exit 2, and changes nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cli_run import one_line_error, run
from click.testing import CliRunner
from fakeglitchtip import create_superuser, start_fake

from provision.cli import cli
from provision.envfile import read_env_file

pytestmark = pytest.mark.usefixtures("kit_environ")

KEY = "0123456789abcdef0123456789abcdef"


def files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


# --- 4. non-ASCII: Compose-valid output, IDNA host names ---


def test_emoji_in_the_senders_name_renders_a_file_compose_accepts(tmp_path: Path) -> None:
    sender = "Équipe 🚀 GlitchTip <glitchtip@example.com>"
    result = run(tmp_path, "render", "--check", "--set", f"default_from_email={sender}")
    assert result.exit_code == 0, result.output
    assert "docker compose config: compose.yml valid" in result.stdout
    assert f'DEFAULT_FROM_EMAIL: "{sender}"' in (tmp_path / "compose.yml").read_text()


@pytest.mark.parametrize(
    ("setting", "value", "needle"),
    [
        ("glitchtip_domain", "https://🚀.example.com", "not a valid internationalized host name"),
        ("glitchtip_domain", "http://exa_mple.com", "not a valid host name"),
        ("glitchtip_domain", "http://-bad-.example", "not a valid host name"),
        ("default_from_email", "🚀@example.com", "is not an e-mail address"),
        ("default_from_email", "GlitchTip\u2028 <a@example.com>", "unprintable characters"),
        ("admin_email", "admin@🚀.example", "is not an e-mail address"),
        ("email_url", "smtp://ü:pässword@mail.example.com", "non-ASCII"),
    ],
)
def test_non_ascii_that_cannot_work_is_refused(tmp_path, setting, value, needle) -> None:
    line = one_line_error(run(tmp_path, "render", "--set", f"{setting}={value}"))
    assert needle in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("domain", "ascii_domain"),
    [
        ("https://bücher.example", "https://xn--bcher-kva.example"),
        ("https://BÜCHER.Example:8443", "https://xn--bcher-kva.example:8443"),
        ("http://fehler.münchen.de", "http://fehler.xn--mnchen-3ya.de"),
        ("https://ошибки.рф", "https://xn--90anbhr4d.xn--p1ai"),
    ],
)
def test_internationalized_domain_becomes_punycode_everywhere(tmp_path, domain, ascii_domain):
    from urllib.parse import urlsplit

    from provision.dsn import parse_dsn

    result = run(tmp_path, "render", "--domain", domain)
    assert result.exit_code == 0, result.output
    compose = (tmp_path / "compose.yml").read_text()
    host = urlsplit(ascii_domain).hostname
    assert f'GLITCHTIP_DOMAIN: "{ascii_domain}"' in compose
    assert f'CSRF_TRUSTED_ORIGINS: "{ascii_domain}"' in compose
    assert f'ALLOWED_HOSTS: "{host},' in compose
    assert compose.isascii() or "DEFAULT_FROM_EMAIL" in compose
    assert read_env_file(tmp_path / ".env")["GLITCHTIP_DOMAIN"] == ascii_domain
    # The DSN GlitchTip builds from GLITCHTIP_DOMAIN parses and points at the same host.
    scheme, netloc = ascii_domain.split("://")
    assert parse_dsn(f"{scheme}://{KEY}@{netloc}/7").host == host


def test_internationalized_sender_domain_becomes_punycode(tmp_path: Path) -> None:
    result = run(tmp_path, "config", "--json", "--set", "default_from_email=GT <gt@bücher.example>")
    assert result.exit_code == 0, result.output
    assert '"GT <gt@xn--bcher-kva.example>"' in result.stdout


# --- 5. create-project input: refused before any request ---


@pytest.fixture
def fake():
    handle = start_fake()
    create_superuser(handle.store, "admin@example.com", "admin-Passw0rd-123")
    yield handle
    handle.stop()


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROVISION_API_BACKOFF", "0.01")
    return tmp_path


def create(url: str, *args: str):
    login = ["--admin-email", "admin@example.com", "--admin-password", "admin-Passw0rd-123"]
    return CliRunner().invoke(cli, ["create-project", "--url", url, *login, *args])


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--org", ""], "the organization name is empty: give --org a name"),
        (["--org", "   "], "the organization name is empty"),
        (["--project", ""], "the project name is empty: give --project a name"),
        (["--org", "🚀🚀"], "has no letter or digit GlitchTip can make a slug"),
        (["--org", "Acme", "--project", "测试"], "give --project a name with ASCII letters"),
        (["--org", "x" * 5000], "not 1-64 printable characters"),
        (["--org", "Acme", "--key-name", ""], "the key name must be 1-64 printable characters"),
        (["--org", "Acme", "--platform", ""], "the platform '' is not a platform name"),
        (["--org", "Acme", "--platform", "Py thon"], "is not a platform name"),
    ],
)
def test_bad_names_are_refused_before_any_request(fake, workdir, args, needle) -> None:
    line = one_line_error(create(fake.url, *args))
    assert needle in line and len(line) < 300
    assert fake.store.snapshot()["orgs"] == [] or not fake.store.snapshot()["orgs"]
    assert list(workdir.iterdir()) == []


@pytest.mark.parametrize(
    "text",
    ["[defaults\nurl = x\n", "no section header\n", "[defaults]\norg = a\norg = b\n"],
    ids=["unclosed", "no-section", "duplicate"],
)
def test_malformed_glitchtiprc_is_refused_before_any_request(fake, workdir, text) -> None:
    rc = workdir / ".glitchtiprc"
    rc.write_text(text)
    line = one_line_error(create(fake.url, "--org", "Acme"))
    assert ".glitchtiprc is not a valid INI file" in line and "remove .glitchtiprc" in line
    assert not fake.store.snapshot()["orgs"], "an organization was created before the refusal"
    assert rc.read_text() == text


def test_created_glitchtiprc_is_readable_by_provision_dsn(fake, workdir) -> None:
    (workdir / ".glitchtiprc").write_text("# mine\n[other]\nkeep = 1\n")
    result = create(fake.url, "--org", "Acme")
    assert result.exit_code == 0, result.output
    dsn = CliRunner().invoke(cli, ["dsn", "--quiet"])
    assert dsn.exit_code == 0 and dsn.stdout.strip() == result.stdout.strip()
    assert "keep = 1" in (workdir / ".glitchtiprc").read_text()


# --- 6. a setting given once is kept ---


@pytest.mark.parametrize("via", ["option", "environment"])
def test_init_keeps_an_email_url_with_a_password_in_env(tmp_path: Path, via: str) -> None:
    url = "smtp+tls://bob:s3cret-Pass@mail.example.com:587"
    if via == "option":
        result = run(tmp_path, "init", "--set", f"email_url={url}")
    else:
        result = run(tmp_path, "init", env={"EMAIL_URL": url})
    assert result.exit_code == 0, result.output
    assert "s3cret-Pass" not in result.output
    assert read_env_file(tmp_path / ".env")["EMAIL_URL"] == url
    assert "s3cret-Pass" not in (tmp_path / "glitchtip.yaml").read_text()
    config = run(tmp_path, "config", "--json")
    assert '"value": "smtp+tls://bob:********@mail.example.com:587"' in config.stdout
    assert run(tmp_path, "render").exit_code == 0
    assert read_env_file(tmp_path / ".env")["EMAIL_URL"] == url


# --- 7. numbers that ended in tracebacks ---


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "0", "-inf", "1e999", "abc"])
def test_bad_timeouts_are_one_line(workdir, value: str) -> None:
    result = CliRunner().invoke(
        cli,
        ["create-project", "--url", "http://127.0.0.1:9", "--timeout", value],
        prog_name="provision",
    )
    line = one_line_error(result)
    assert "--timeout" in line and "see `provision create-project --help`" in line


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "abc"])
@pytest.mark.parametrize(
    "command",
    [
        ("verify", "--event-timeout"),
        ("verify", "--min-free-gib"),
        ("upgrade", "--event-timeout"),
        ("restore", "/dev/null", "--event-timeout"),
    ],
    ids=["verify-event-timeout", "verify-min-free-gib", "upgrade-event-timeout", "restore"],
)
def test_numbers_of_the_operations_commands_are_checked(tmp_path, command, value: str) -> None:
    """A nan threshold makes every comparison false: `verify --min-free-gib nan` passed its disk
    check on any disk. Refused in one line before anything runs."""
    *args, option = command
    line = one_line_error(run(tmp_path, *args, option, value))
    assert option in line and f"{args[0]} --help`" in line


@pytest.mark.parametrize(
    "project_id",
    ["5" * 5000, "²", "٣", "١٢", "\uff11", "12a", "", "1" * 19],
    ids=[
        "5000-digits",
        "superscript",
        "arabic-indic",
        "arabic-indic-2",
        "fullwidth",
        "hex",
        "empty",
        "19-digits",
    ],
)
@pytest.mark.parametrize("where", ["SENTRY_DSN", ".glitchtiprc"])
def test_dsn_project_id_is_ascii_digits_of_sane_length(workdir, project_id, where) -> None:
    dsn = f"http://{KEY}@glitchtip.example.com/{project_id}"
    env = {}
    if where == "SENTRY_DSN":
        env["SENTRY_DSN"] = dsn
    else:
        (workdir / ".glitchtiprc").write_text(f"[defaults]\nurl = {dsn}\n")
    line = one_line_error(CliRunner().invoke(cli, ["dsn"], env=env))
    assert "the project id must be a number of 1-18 digits 0-9" in line
    assert KEY not in line


@pytest.mark.parametrize("value", ["٨٠٨٠", "²", "8" * 5000, "\uff18\uff10\uff18\uff10", "0x1F"])
def test_settings_numbers_are_ascii_digits(tmp_path: Path, value: str) -> None:
    line = one_line_error(run(tmp_path, "render", "--http-port", value))
    assert "http_port" in line and len(line) < 300
    assert list(tmp_path.iterdir()) == []


# --- 9. errors and their fixes ---


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["render", "--foo"], "error: No such option '--foo': see `provision render --help`"),
        (["nosuch"], "error: No such command 'nosuch': see `provision --help`"),
        (["rotate-secret"], "Missing argument 'NAME': see `provision rotate-secret --help`"),
        (["create-project", "--format", "xml"], "Invalid value for '--format'"),
        (["config", "--json", "extra"], "Got unexpected extra argument (extra)"),
        (["logs", "--tail", "many"], "Invalid value for '--tail': 'many' is not a number"),
        (["logs", "--tail", "\u0663"], "Invalid value for '--tail'"),
    ],
)
def test_click_usage_errors_are_one_line(workdir, args, needle) -> None:
    line = one_line_error(CliRunner().invoke(cli, args, prog_name="provision"))
    assert needle in line


@pytest.mark.parametrize("command", ["render", "config", "init", "status", "down"])
def test_missing_dir_is_refused_not_created(tmp_path: Path, command: str) -> None:
    missing = tmp_path / "typo"
    line = one_line_error(CliRunner().invoke(cli, [command, "--dir", str(missing)]))
    assert f"{missing} does not exist: create it first (mkdir -p {missing})" in line
    assert not missing.exists()


def test_env_file_that_is_not_a_dotenv_gets_the_right_fix(workdir) -> None:
    foreign = workdir / "passwd"
    foreign.write_text("root:x:0:0:root:/root:/bin/bash\n")
    result = CliRunner().invoke(
        cli, ["create-project", "--url", "http://127.0.0.1:9", "--env-file", str(foreign)]
    )
    line = one_line_error(result)
    assert "does not look like a .env file; point the option at the kit's .env" in line
    assert "fix or delete that line" not in line and "root:x" not in line


@pytest.mark.parametrize("char", ["#", "?", "/"])
def test_smtp_password_with_a_url_delimiter_says_percent_encode(tmp_path, char) -> None:
    url = f"smtp+tls://bob:pa{char}ss-Secret@mail.example.com:587"
    line = one_line_error(run(tmp_path, "render", "--set", f"email_url={url}"))
    assert f"the user name or password contains '{char}'" in line
    assert "percent-encode it" in line and "invalid port" not in line
    assert "ss-Secret" not in line


def test_no_dsn_found_names_where_it_looked(workdir) -> None:
    line = one_line_error(CliRunner().invoke(cli, ["dsn"]))
    assert f"there is no .glitchtiprc in {workdir.resolve()} or a parent directory" in line
    (workdir / ".glitchtiprc").write_text("[defaults]\norg = acme\n")
    line = one_line_error(CliRunner().invoke(cli, ["dsn"]))
    assert f"{workdir.resolve() / '.glitchtiprc'} has no [defaults] url" in line


def test_compose_only_error_is_exit_2_and_names_the_real_file(tmp_path: Path) -> None:
    assert run(tmp_path, "init").exit_code == 0
    with (tmp_path / ".env").open("a") as handle:
        handle.write("MINE=${\n")  # parse_env accepts it; only Compose's interpolation refuses
    before = files(tmp_path)
    line = one_line_error(run(tmp_path, "render", "--check"))
    assert "docker compose config rejected" in line and "glitchtip-kit-check" not in line
    assert f"fix that line in {tmp_path / '.env'}" in line
    assert files(tmp_path) == before


def test_compose_error_naming_the_scratch_file_names_the_deployment(tmp_path, monkeypatch):
    import provision.render as render

    real = render.render_files

    def broken(settings, secrets):
        out = dict(real(settings, secrets))
        out["compose.yml"] = out["compose.yml"].replace("services:", "services:\n  x: 1", 1)
        return out

    monkeypatch.setattr(render, "render_files", broken)
    line = one_line_error(run(tmp_path, "render", "--check"))
    assert "docker compose config rejected" in line
    assert "glitchtip-kit-check" not in line and "/tmp/tmp" not in line
    assert list(tmp_path.iterdir()) == []


def test_broken_pipe_is_silent(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = "from provision.cli import main; main()"
    proc = subprocess.run(
        f"{sys.executable} -c '{script}' config --dir {tmp_path} | head -c 1",
        shell=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        env={k: v for k, v in os.environ.items() if not k.startswith("GLITCHTIP")},
        timeout=60,
    )
    assert proc.stdout == "s"
    assert "Traceback" not in proc.stderr and "Broken pipe" not in proc.stderr


def test_concurrent_create_projects_create_one_organization(workdir) -> None:
    """Real processes: GlitchTip's creates are not idempotent, so two runs in one directory must
    not both list, find nothing and create (a second org would get a suffixed slug)."""
    import subprocess
    import sys

    command = [sys.executable, "-c", "from provision.cli import main; main()", "create-project"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLITCHTIP")}
    # 0.1 s per request widens the list -> create window, as a loaded server would.
    fake = start_fake(latency=0.1)
    try:
        create_superuser(fake.store, "admin@example.com", "admin-Passw0rd-123")
        args = ["--url", fake.url, "--org", "Acme", "--project", "Web"]
        args += ["--admin-email", "admin@example.com", "--admin-password", "admin-Passw0rd-123"]
        procs = [
            subprocess.Popen([*command, *args], cwd=workdir, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
            for _ in range(3)
        ]  # fmt: skip
        outputs = [proc.communicate(timeout=60) for proc in procs]
        state = fake.store.snapshot()
    finally:
        fake.stop()
    assert [proc.returncode for proc in procs] == [0, 0, 0], outputs
    assert len(state["orgs"]) == 1 and len(state["projects"]) == 1, state["orgs"]
    assert len({out.strip() for out, _ in outputs}) == 1  # the same DSN three times

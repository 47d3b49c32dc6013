"""The Compose wrapper: the kit's files and project name on every call, secrets redacted."""

from __future__ import annotations

import sys
import textwrap

import pytest

from provision.deployment import Deployment
from provision.errors import KitError
from provision.runtime.compose import Compose, secret_values
from provision.settings import load_settings

SECRET = "k" * 12 + "Vq9-zz-secret-key-value-with-enough-length-1234567890"
PASSWORD = "pg-Password-0123456789"


def fake_compose(tmp_path):
    """A stand-in compose binary: echoes its argv, one env var, and a line with secrets."""
    script = tmp_path / "fake-compose.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import os, sys
            print("ARGV " + " ".join(sys.argv[1:]))
            print("ENV " + os.environ.get("PASSED", "-"))
            print("LEAK SECRET_KEY={SECRET} password={PASSWORD}", file=sys.stderr)
            sys.exit(int(os.environ.get("EXIT", "0")))
            """
        )
    )
    return (sys.executable, str(script))


def test_every_call_carries_the_files_and_project_name(tmp_path):
    compose = Compose(tmp_path, "gtkit", ["compose.yml", "compose.part.yml"], command=("dc",))
    assert compose.argv("ps") == [
        "dc", "-f", "compose.yml", "-f", "compose.part.yml", "--project-name", "gtkit", "ps",
    ]  # fmt: skip


def test_output_is_redacted_and_env_reaches_the_child(tmp_path):
    compose = Compose(tmp_path, "gtkit", secrets=[SECRET, PASSWORD], command=fake_compose(tmp_path))
    result = compose.run("exec", "web", env={"PASSED": "yes", "EXIT": "3"})
    assert result.returncode == 3 and not result.ok
    assert "ARGV -f compose.yml --project-name gtkit exec web" in result.output
    assert "ENV yes" in result.output
    assert SECRET not in result.output and PASSWORD not in result.output
    assert "SECRET_KEY=********" in result.last_lines(1)


def test_the_deployments_env_wins_over_the_callers_environment(tmp_path, monkeypatch):
    """Compose interpolates with the caller's environment over `.env`: a SECRET_KEY or
    DATABASE_URL exported in the operator's shell for another app must not reach it."""
    (tmp_path / ".env").write_text("SECRET_KEY=from-env-file\nDATABASE_URL=postgres://kit/db\n")
    monkeypatch.setenv("SECRET_KEY", "from-the-shell")
    monkeypatch.setenv("DATABASE_URL", "postgres://another-app/db")
    monkeypatch.setenv("UNRELATED", "kept")
    env = Compose(tmp_path, "gtkit", command=("dc",)).child_env({"EXTRA": "1"})
    assert "SECRET_KEY" not in env and "DATABASE_URL" not in env
    assert env["UNRELATED"] == "kept" and env["EXTRA"] == "1"


def test_stream_hands_over_redacted_lines(tmp_path):
    compose = Compose(tmp_path, "gtkit", secrets=[PASSWORD], command=fake_compose(tmp_path))
    lines: list[str] = []
    result = compose.stream("logs", on_line=lines.append)
    assert result.ok
    assert any(line.startswith("ARGV") for line in lines)
    assert all(PASSWORD not in line for line in lines)


def test_for_settings_uses_the_env_secrets_and_the_partman_file(tmp_path):
    (tmp_path / ".env").write_text(
        f"SECRET_KEY={SECRET}\nPOSTGRES_PASSWORD={PASSWORD}\nGLITCHTIP_API_TOKEN={'a' * 64}\n"
        "DJANGO_SUPERUSER_EMAIL=admin@example.com\nCOMPOSE_FILE=compose.yml\n"
    )
    (tmp_path / "compose.part.yml").write_text("services: {}\n")
    settings = load_settings(
        tmp_path, {"glitchtip_major": "5", "advanced_partitioning": "true"}, environ={}
    )
    compose = Deployment(settings, ("dc",)).compose()
    assert compose.files == ("compose.yml", "compose.part.yml")
    assert compose.project_name == "glitchtip"
    assert set(compose.secrets) >= {SECRET, PASSWORD, "a" * 64}
    assert "admin@example.com" not in compose.secrets


def test_secret_values_skip_plain_settings():
    env = {
        "COMPOSE_FILE": "compose.yml",
        "GLITCHTIP_KIT_WEB_CONCURRENCY": "2",
        "X_TOKEN": "tok-123",
    }
    assert secret_values(env) == ["tok-123"]


def test_ps_parses_ndjson_and_arrays(tmp_path):
    script = tmp_path / "ps.py"
    script.write_text(
        "import sys\n"
        "if 'one' in sys.argv:\n"
        '    print(\'[{"Service": "web", "State": "running"}]\')\n'
        "else:\n"
        '    print(\'{"Service": "web"}\')\n'
        '    print(\'{"Service": "migrate"}\')\n'
    )
    compose = Compose(tmp_path, "p", command=(sys.executable, str(script)))
    assert [row["Service"] for row in compose.ps()] == ["web", "migrate"]
    assert compose.ps("one") == [{"Service": "web", "State": "running"}]


def test_a_failed_ps_in_a_directory_without_compose_files_says_so(tmp_path):
    """Compose's "no such file" is not the engine's fault: backup, load and upgrade in a
    directory that is no deployment say which file is missing and what to run."""
    script = tmp_path / "fail.py"
    script.write_text("import sys\nsys.exit(1)\n")
    compose = Compose(tmp_path, "p", command=(sys.executable, str(script)))
    with pytest.raises(KitError) as missing:
        compose.ps()
    assert str(missing.value).startswith(f"no compose.yml in {tmp_path}")
    (tmp_path / "compose.yml").write_text("services: {}\n")
    with pytest.raises(KitError) as engine:
        compose.ps()
    assert "`compose ps` failed" in str(engine.value)


def test_for_settings_masks_the_dsn_key_of_glitchtiprc(tmp_path):
    """`provision logs` and step errors show GlitchTip's access log: no `sentry_key=<key>`."""
    key = "0123456789abcdef0123456789abcdef"
    (tmp_path / ".glitchtiprc").write_text(
        f"[defaults]\norg = glitchtip\nproject = default\nurl = http://{key}@localhost:8000/1\n"
    )
    settings = load_settings(tmp_path, {}, environ={})
    compose = Deployment(settings, ("dc",)).compose()
    line = f'"POST /api/1/envelope/?sentry_key={key}&sentry_version=7 HTTP/1.1" 200'
    assert key not in compose.redact(line)

"""Secrets: generated once, kept byte for byte, refused when edited into an invalid state."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from provision.errors import SecretsError, UsageError
from provision.secrets import (
    SECRETS,
    ensure_secrets,
    rotate_secret,
    rotation_notice,
    secret_values,
)


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_generates_every_secret_with_mode_0600(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    values = ensure_secrets(env)
    assert mode(env) == 0o600
    assert len(values["SECRET_KEY"]) >= 50
    assert len(values["POSTGRES_PASSWORD"]) >= 16
    assert len(values["DJANGO_SUPERUSER_PASSWORD"]) >= 16
    assert len(values["GRAFANA_ADMIN_PASSWORD"]) >= 16
    assert len(set(values.values())) == 4
    assert env.read_text().startswith("# Secrets of this GlitchTip deployment")


def test_never_regenerates(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    ensure_secrets(env)
    before = env.read_bytes()
    mtime = env.stat().st_mtime_ns
    ensure_secrets(env)
    assert env.read_bytes() == before
    assert env.stat().st_mtime_ns == mtime


def test_generates_only_the_missing_and_keeps_other_keys(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    key = "k" * 60
    env.write_text(
        f"# mine\nSECRET_KEY={key}\nGLITCHTIP_API_TOKEN=abc123\nMY_OWN=1\n"
        "DJANGO_SUPERUSER_EMAIL=root@example.com\n"
    )
    values = ensure_secrets(env)
    text = env.read_text()
    assert values["SECRET_KEY"] == key
    assert text.startswith(f"# mine\nSECRET_KEY={key}\nGLITCHTIP_API_TOKEN=abc123\nMY_OWN=1\n")
    assert "POSTGRES_PASSWORD=" in text and "DJANGO_SUPERUSER_EMAIL=root@example.com" in text


def test_tightens_a_readable_env_file(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    ensure_secrets(env)
    os.chmod(env, 0o644)
    ensure_secrets(env)
    assert mode(env) == 0o600


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("SECRET_KEY=short\n", "SECRET_KEY in .env is shorter"),
        ("SECRET_KEY=\n", "SECRET_KEY in .env is empty"),
        ("POSTGRES_PASSWORD=has@at/slash-1234567\n", "POSTGRES_PASSWORD in .env has characters"),
        ("POSTGRES_PASSWORD=short\n", "POSTGRES_PASSWORD in .env is shorter"),
        ("DJANGO_SUPERUSER_PASSWORD=\n", "DJANGO_SUPERUSER_PASSWORD in .env is empty"),
        ("this is not a dotenv line\n", "line 1 is not KEY=value"),
    ],
)
def test_invalid_env_is_refused_and_untouched(tmp_path: Path, content: str, match: str) -> None:
    env = tmp_path / ".env"
    env.write_text(content)
    with pytest.raises(SecretsError, match=match) as caught:
        ensure_secrets(env)
    assert caught.value.exit_code == 2
    assert env.read_text() == content


def test_error_does_not_show_the_secret(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("SECRET_KEY=tooshortbutsecret\n")
    with pytest.raises(SecretsError) as caught:
        ensure_secrets(env)
    assert "tooshortbutsecret" not in caught.value.line()


def test_rotate_secret_key_changes_only_it(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    values = ensure_secrets(env)
    notice = rotate_secret(env, "SECRET_KEY")
    assert "logged out" in notice
    after = ensure_secrets(env)
    assert after["SECRET_KEY"] != values["SECRET_KEY"]
    assert after["POSTGRES_PASSWORD"] == values["POSTGRES_PASSWORD"]
    assert mode(env) == 0o600


@pytest.mark.parametrize("key", ["POSTGRES_PASSWORD", "DJANGO_SUPERUSER_PASSWORD"])
def test_rotation_of_passwords_kept_elsewhere_is_refused(tmp_path: Path, key: str) -> None:
    env = tmp_path / ".env"
    ensure_secrets(env)
    before = env.read_bytes()
    with pytest.raises(UsageError, match="does not rotate") as caught:
        rotate_secret(env, key)
    assert "docker compose exec" in caught.value.fix
    assert env.read_bytes() == before


def test_rotation_of_unknown_name_is_refused() -> None:
    with pytest.raises(UsageError, match="not a secret the kit generates"):
        rotation_notice("NOPE")


def test_secret_values_include_email_password_only() -> None:
    values = {
        "SECRET_KEY": "s" * 50,
        "EMAIL_URL": "smtp://u:mailpassword@mail.example.com",
        "OTHER": "visible",
    }
    found = secret_values(values)
    assert "s" * 50 in found and "mailpassword" in found
    assert "visible" not in found and values["EMAIL_URL"] not in found


def test_every_secret_generator_passes_its_check() -> None:
    for spec in SECRETS:
        assert spec.check(spec.generate()) is None


# --- exact values: lengths, boundaries, messages (a changed number or word must show) ---

FIX_SECRET_KEY = (
    "restore the previous value, or delete the line to generate a new one "
    "(that logs every user out)"
)


def test_generated_secrets_have_their_exact_lengths_and_alphabets() -> None:
    from provision.secrets import SECRET_BY_KEY

    lengths = {"SECRET_KEY": 64, "POSTGRES_PASSWORD": 32, "DJANGO_SUPERUSER_PASSWORD": 24}
    for key, length in lengths.items():
        first, second = SECRET_BY_KEY[key].generate(), SECRET_BY_KEY[key].generate()
        assert len(first) == length and first != second
        assert re.fullmatch(r"[A-Za-z0-9_-]+", first), key


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("SECRET_KEY", "k" * 49, "is shorter than 50 characters"),
        ("SECRET_KEY", "k" * 49 + " ", "contains spaces, quotes, backslashes or '$'"),
        ("SECRET_KEY", "k" * 50 + "$x", "contains spaces, quotes, backslashes or '$'"),
        ("SECRET_KEY", "k" * 50 + "\\", "contains spaces, quotes, backslashes or '$'"),
        ("POSTGRES_PASSWORD", "p" * 15, "is shorter than 16 characters"),
        (
            "POSTGRES_PASSWORD",
            "p" * 16 + "%",
            "has characters other than letters, digits and . _ ~ - (it goes into a URL)",
        ),
        ("DJANGO_SUPERUSER_PASSWORD", "d" * 15, "is shorter than 16 characters"),
        ("DJANGO_SUPERUSER_PASSWORD", "d" * 16 + "'", "contains spaces, quotes, backslashes"),
        ("DJANGO_SUPERUSER_PASSWORD", "d" * 16 + '"', "contains spaces, quotes, backslashes"),
        ("DJANGO_SUPERUSER_PASSWORD", "", "is empty"),
    ],
)
def test_each_check_refuses_at_its_boundary(key: str, value: str, problem: str) -> None:
    from provision.secrets import validate_secrets

    with pytest.raises(SecretsError) as caught:
        validate_secrets({key: value}, source="x.env")
    assert caught.value.line().startswith(f"{key} in x.env {problem}")
    assert value.strip() == "" or value not in caught.value.line()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("SECRET_KEY", "k" * 50),
        ("SECRET_KEY", "k-_.~!#%&()*+,/:;<=>?@[]^`{|}" + "k" * 30),
        ("POSTGRES_PASSWORD", "p" * 16),
        ("POSTGRES_PASSWORD", "Aa0._~-" + "p" * 9),
        ("DJANGO_SUPERUSER_PASSWORD", "d" * 16),
        ("DJANGO_SUPERUSER_PASSWORD", "d@/%:#" + "d" * 10),
    ],
)
def test_each_check_accepts_at_its_boundary(key: str, value: str) -> None:
    from provision.secrets import validate_secrets

    validate_secrets({key: value, "UNRELATED": ""})


def test_the_fix_of_each_refusal_exactly(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("SECRET_KEY=short\n")
    with pytest.raises(SecretsError) as caught:
        ensure_secrets(env)
    assert caught.value.line() == (
        f"SECRET_KEY in .env is shorter than 50 characters: {FIX_SECRET_KEY}"
    )
    env.write_text("POSTGRES_PASSWORD=short\n")
    with pytest.raises(SecretsError) as caught:
        ensure_secrets(env)
    assert caught.value.line() == (
        "POSTGRES_PASSWORD in .env is shorter than 16 characters: restore the previous value "
        "(the database keeps the password it was created with)"
    )
    env.write_text("DJANGO_SUPERUSER_PASSWORD=short\n")
    with pytest.raises(SecretsError) as caught:
        ensure_secrets(env)
    assert caught.value.line() == (
        "DJANGO_SUPERUSER_PASSWORD in .env is shorter than 16 characters: restore the previous "
        "value (the admin account keeps the password it was created with)"
    )


def test_missing_secrets_generates_only_what_is_absent() -> None:
    from provision.secrets import missing_secrets

    assert missing_secrets({"SECRET_KEY": "x", "POSTGRES_PASSWORD": "y"}).keys() == {
        "DJANGO_SUPERUSER_PASSWORD",
        "GRAFANA_ADMIN_PASSWORD",
    }
    assert missing_secrets({key.key: "" for key in SECRETS}) == {}
    assert set(missing_secrets({})) == {key.key for key in SECRETS}


def test_a_new_env_file_is_the_header_and_the_four_secrets(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    values = ensure_secrets(env)
    assert env.read_text() == (
        "# Secrets of this GlitchTip deployment, written by the GlitchTip kit (mode 0600).\n"
        "# Never commit this file. Keys you add are kept; the kit never regenerates a secret.\n"
        f"SECRET_KEY={values['SECRET_KEY']}\n"
        f"POSTGRES_PASSWORD={values['POSTGRES_PASSWORD']}\n"
        f"DJANGO_SUPERUSER_PASSWORD={values['DJANGO_SUPERUSER_PASSWORD']}\n"
        f"GRAFANA_ADMIN_PASSWORD={values['GRAFANA_ADMIN_PASSWORD']}\n"
    )


def test_ensure_secrets_returns_every_key_of_the_file(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("MY_OWN=1\n")
    values = ensure_secrets(env)
    assert set(values) == {
        "MY_OWN",
        "SECRET_KEY",
        "POSTGRES_PASSWORD",
        "DJANGO_SUPERUSER_PASSWORD",
        "GRAFANA_ADMIN_PASSWORD",
    }
    assert values["MY_OWN"] == "1"


def test_a_private_env_file_keeps_its_mode(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    ensure_secrets(env)
    os.chmod(env, 0o400)
    ensure_secrets(env)
    assert mode(env) == 0o400  # already private: not widened to 0600
    os.chmod(env, 0o640)
    ensure_secrets(env)
    assert mode(env) == 0o600


def test_rotation_notices_exactly() -> None:
    assert rotation_notice("SECRET_KEY") == (
        "every user is logged out, password-reset and e-mail confirmation links stop working; "
        "web and worker must be restarted (`provision up`)"
    )
    with pytest.raises(UsageError) as caught:
        rotation_notice("NOPE")
    assert caught.value.line() == (
        "NOPE: not a secret the kit generates: choose one of SECRET_KEY, POSTGRES_PASSWORD, "
        "DJANGO_SUPERUSER_PASSWORD, GRAFANA_ADMIN_PASSWORD"
    )
    with pytest.raises(UsageError) as caught:
        rotation_notice("GRAFANA_ADMIN_PASSWORD")
    assert caught.value.line().startswith(
        "GRAFANA_ADMIN_PASSWORD: the kit does not rotate it: Grafana keeps the admin password it "
        "first started with in its volume"
    )
    with pytest.raises(UsageError) as caught:
        rotation_notice("POSTGRES_PASSWORD")
    assert caught.value.line().startswith(
        "POSTGRES_PASSWORD: the kit does not rotate it: the database keeps its password in its "
        "volume, so a new value in .env alone locks GlitchTip out"
    )
    with pytest.raises(UsageError) as caught:
        rotation_notice("DJANGO_SUPERUSER_PASSWORD")
    assert caught.value.line().startswith(
        "DJANGO_SUPERUSER_PASSWORD: the kit does not rotate it: the admin account keeps the "
        "password it was created with; change it with `docker compose exec web ./manage.py "
        "changepassword <admin e-mail>`"
    )


def test_rotating_a_secret_not_generated_yet_says_run_init(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("MY_OWN=1\n")
    with pytest.raises(SecretsError) as caught:
        rotate_secret(env, "SECRET_KEY")
    assert caught.value.line() == "SECRET_KEY is not in .env yet: run `provision init` first"
    assert env.read_text() == "MY_OWN=1\n"


def test_rotation_keeps_the_other_lines_and_generates_a_valid_key(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    values = ensure_secrets(env)
    with env.open("a") as handle:
        handle.write("MY_OWN=1\n")
    rotate_secret(env, "SECRET_KEY")
    after = env.read_text().splitlines()
    assert after[3:] == [
        f"POSTGRES_PASSWORD={values['POSTGRES_PASSWORD']}",
        f"DJANGO_SUPERUSER_PASSWORD={values['DJANGO_SUPERUSER_PASSWORD']}",
        f"GRAFANA_ADMIN_PASSWORD={values['GRAFANA_ADMIN_PASSWORD']}",
        "MY_OWN=1",
    ]
    assert after[2].startswith("SECRET_KEY=") and len(after[2]) == len("SECRET_KEY=") + 64


def test_secret_values_exactly() -> None:
    values = {
        "SECRET_KEY": "s" * 50,
        "POSTGRES_PASSWORD": "p" * 16,
        "DJANGO_SUPERUSER_PASSWORD": "",
        "GLITCHTIP_API_TOKEN": "t" * 64,
        "EMAIL_URL": "smtp://user:mail-pw@mail.example.com:587",
    }
    assert secret_values(values) == ["s" * 50, "p" * 16, "t" * 64, "mail-pw"]
    assert secret_values({"EMAIL_URL": "smtp://mail.example.com:notaport"}) == []
    assert secret_values({"EMAIL_URL": "consolemail://"}) == []
    assert secret_values({}) == []


def test_the_file_name_in_a_refusal_is_the_real_one(tmp_path: Path) -> None:
    env = tmp_path / "prod.env"
    env.write_text("SECRET_KEY=short\n")
    with pytest.raises(SecretsError) as caught:
        ensure_secrets(env)
    assert caught.value.line().startswith("SECRET_KEY in prod.env is shorter than 50")


def test_tighten_mode_never_follows_a_link(tmp_path: Path) -> None:
    from provision.secrets import _tighten_mode

    foreign = tmp_path / "foreign"
    foreign.write_text("A=1\n")
    foreign.chmod(0o644)
    (tmp_path / ".env").symlink_to(foreign)
    with pytest.raises(OSError):
        _tighten_mode(tmp_path / ".env")
    assert mode(foreign) == 0o644
    _tighten_mode(tmp_path / "absent")  # nothing to tighten
    _tighten_mode(tmp_path)  # a directory is left to the write to report


def test_tighten_mode_does_not_block_on_a_fifo(tmp_path: Path) -> None:
    import threading

    from provision.secrets import _tighten_mode

    fifo = tmp_path / ".env"
    os.mkfifo(fifo, 0o644)
    worker = threading.Thread(target=_tighten_mode, args=(fifo,), daemon=True)
    worker.start()
    worker.join(5)
    blocked = worker.is_alive()
    if blocked:  # release the reader so the thread ends
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert not blocked
    assert mode(fifo) == 0o644  # not a regular file: its mode is not the kit's business


def test_validate_secrets_names_dot_env_by_default() -> None:
    from provision.secrets import validate_secrets

    with pytest.raises(SecretsError) as caught:
        validate_secrets({"SECRET_KEY": ""})
    assert caught.value.line().startswith("SECRET_KEY in .env is empty: ")


def test_secret_values_hold_a_url_password_as_written_and_decoded() -> None:
    """A %-encoded password in DATABASE_URL / VALKEY_URL is masked as written and as a client
    would print it decoded; one that decodes to itself is listed once."""
    values = {
        "DATABASE_URL": "postgres://gt:p%40ss%2Fw0rd@db.example.com:5432/gt",
        "VALKEY_URL": "redis://:plainpass@valkey.example.com:6379/0",
    }
    assert secret_values(values) == ["p%40ss%2Fw0rd", "p@ss/w0rd", "plainpass"]

"""Issue 18, defects 5 to 8: values that must be refused in one line, or masked, before anything
is touched or sent. Each test fails on the code before the fix (see the issue for the cases)."""

from __future__ import annotations

import errno
import json
import os

import pytest
from cli_run import one_line_error, run
from fakeglitchtip import create_superuser, start_fake

from provision.envfile import read_env_file

SECRET = "s3cr3t-Pa55"


@pytest.fixture
def fake():
    handle = start_fake()
    create_superuser(handle.store, "admin@example.com", "admin-Passw0rd-123")
    yield handle
    handle.stop()


@pytest.fixture
def quiet_env(monkeypatch, tmp_path):
    for name in ("GLITCHTIP_URL", "GLITCHTIP_API_TOKEN", "ERROR_TRACKING_DSN", "SENTRY_DSN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PROVISION_API_BACKOFF", "0.01")
    monkeypatch.chdir(tmp_path)


# --- 5: a password in the query string is a password ---


@pytest.mark.parametrize(
    ("name", "variable", "url"),
    [
        ("database_url", "GLITCHTIP_KIT_DATABASE_URL",
         f"postgres://u@db.example.com/g?sslmode=require&password={SECRET}"),
        ("valkey_url", "GLITCHTIP_KIT_VALKEY_URL", f"redis://cache.example.com:6379/0?password={SECRET}"),
    ],
)  # fmt: skip
def test_a_query_password_is_masked_by_config(tmp_path, name, variable, url):
    env = {variable: url}
    text = run(tmp_path, "config", env=env)
    assert text.exit_code == 0, text.output
    assert SECRET not in text.output and "password=********" in text.output
    as_json = run(tmp_path, "config", "--json", env=env)
    assert as_json.exit_code == 0 and SECRET not in as_json.output
    shown = json.loads(as_json.stdout)["settings"][name]["value"]
    assert shown.endswith("password=********"), shown


@pytest.mark.parametrize(
    "line",
    [
        f"database_url: postgres://u@db.example.com/g?password={SECRET}",
        f"valkey_url: redis://cache.example.com:6379/0?password={SECRET}",
    ],
)
def test_a_query_password_in_glitchtip_yaml_is_refused(tmp_path, line):
    (tmp_path / "glitchtip.yaml").write_text(line + "\n")
    error = one_line_error(run(tmp_path, "render"))
    assert "holds a password in a file meant to be committed" in error
    assert SECRET not in error
    assert not (tmp_path / ".env").exists() and not (tmp_path / "compose.yml").exists()


# --- 6: a token that cannot be an HTTP header value ---


@pytest.mark.parametrize("token", ["tökén0123456789", "abc\n0123456789", "abc 123", "abc\x00def"])
def test_a_token_with_non_ascii_or_control_characters_is_one_line(fake, quiet_env, token):
    from click.testing import CliRunner

    from provision.cli import cli

    before = len(fake.store.snapshot()["orgs"])
    args = ["create-project", "--url", fake.url, "--token", token]
    result = CliRunner().invoke(cli, args)
    error = one_line_error(result)
    assert "API token" in error and "control or non-ASCII" in error
    assert token not in result.output and "retr" not in error.lower()
    assert len(fake.store.snapshot()["orgs"]) == before


def test_verify_refuses_such_a_token_in_one_line_too(tmp_path):
    assert run(tmp_path, "render").exit_code == 0
    error = one_line_error(run(tmp_path, "verify", "--token", "tökén0123456789"))
    assert "API token" in error and "tökén" not in error


# --- 7: a refusal changes no file ---


def test_render_swarm_refused_for_a_symlinked_stack_file_leaves_env_alone(tmp_path):
    assert run(tmp_path, "render").exit_code == 0
    before = (tmp_path / ".env").read_bytes()
    (tmp_path / "elsewhere.yml").write_text("x: 1\n")
    (tmp_path / "stack.swarm.yml").symlink_to(tmp_path / "elsewhere.yml")
    error = one_line_error(run(tmp_path, "render", "--target", "swarm"))
    assert "stack.swarm.yml is a symbolic link" in error
    assert (tmp_path / ".env").read_bytes() == before
    assert read_env_file(tmp_path / ".env").get("GLITCHTIP_KIT_TARGET") != "swarm"


def test_create_project_rc_with_a_missing_parent_is_refused_like_backup_output(
    fake, quiet_env, tmp_path
):
    from click.testing import CliRunner

    from provision.cli import cli

    target = tmp_path / "missing" / "dir" / "x"
    args = ["create-project", "--url", fake.url, "--rc", str(target)]
    error = one_line_error(CliRunner().invoke(cli, args))
    assert f"{target.parent} does not exist" in error and "mkdir -p" in error
    assert not (tmp_path / "missing").exists()
    assert not fake.store.snapshot()["orgs"]


# --- 8: the smaller ones ---


@pytest.mark.parametrize(
    ("option", "value", "needle"),
    [
        ("glitchtip_domain", "http://glitchtip.example.com:0", "port 0"),
        ("proxy_subnet", "127.0.0.0/29", "loopback"),
        ("proxy_subnet", "172.17.3.0/29", "docker0"),
        ("proxy_subnet", "172.16.0.0/12", "docker0"),
    ],
)
def test_values_no_server_or_network_can_use_are_refused(tmp_path, option, value, needle):
    error = one_line_error(run(tmp_path, "render", "--set", f"{option}={value}"))
    assert needle in error
    assert list(tmp_path.iterdir()) == []


def test_upgrade_to_a_floating_tag_is_refused_like_latest():
    from provision.errors import UsageError
    from provision.ops.upgrade_plan import check_target_values

    for value in (
        "6",
        "6.2",
        "glitchtip/glitchtip:6",
        "docker.io/glitchtip/glitchtip:v5",
        "latest",
    ):
        with pytest.raises(UsageError, match=r"floating tag|not pinned"):
            check_target_values(value, None)
    check_target_values("6.2.7", "18.1")
    check_target_values("glitchtip/glitchtip@sha256:" + "a" * 64, None)
    check_target_values("registry.local/glitchtip:6", None)  # a mirror's tags are its own
    check_target_values("6", None, current_image="registry.local/glitchtip:6.2.6")


def test_upgrade_to_garbage_is_refused_before_the_engine_is_asked(tmp_path, monkeypatch):
    """Neither Compose nor the engine may run for a value that can never be an image."""
    from provision.stack import context

    assert run(tmp_path, "render").exit_code == 0

    def no_engine(*_args, **_kwargs):
        raise AssertionError("the engine was asked before --to was checked")

    monkeypatch.setattr(context.StackContext, "compose", no_engine)
    monkeypatch.setattr(context.StackContext, "engine", no_engine)
    for value in ("foo;rm -rf /", "6"):
        error = one_line_error(run(tmp_path, "upgrade", "--to", value))
        assert "--to" in error


def test_a_full_disk_during_render_leaves_env_and_compose_agreeing(tmp_path, monkeypatch):
    """ENOSPC while compose.yml is written: .env must not record the new port alone."""
    assert run(tmp_path, "render", "--http-port", "8000").exit_code == 0
    before = {name: (tmp_path / name).read_bytes() for name in (".env", "compose.yml")}
    real_fdopen = os.fdopen

    def full(fd, *args, **kwargs):
        handle = real_fdopen(fd, *args, **kwargs)
        if ".compose.yml." in os.readlink(f"/proc/self/fd/{fd}"):
            handle.close()
            raise OSError(errno.ENOSPC, "No space left on device")
        return handle

    monkeypatch.setattr(os, "fdopen", full)
    error = one_line_error(run(tmp_path, "render", "--http-port", "8123"), exit_code=1)
    assert "No space left on device" in error and "no file was changed" in error
    monkeypatch.undo()
    after = {name: (tmp_path / name).read_bytes() for name in (".env", "compose.yml")}
    assert after == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_symlinked_proxy_directory_is_named_as_proxy(tmp_path):
    elsewhere = tmp_path.parent / f"{tmp_path.name}-elsewhere"
    elsewhere.mkdir()
    (tmp_path / "proxy").symlink_to(elsewhere)
    https = ("--domain", "https://glitchtip.example.com", "--set", "proxy=caddy")
    error = one_line_error(run(tmp_path, "render", *https))
    assert "proxy is a symbolic link" in error and "writes proxy/ only" in error
    assert "monitoring/" not in error
    assert list(elsewhere.iterdir()) == []


def test_dsn_names_a_fifo_at_glitchtiprc_for_what_it_is(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from provision.cli import cli

    for name in ("ERROR_TRACKING_DSN", "SENTRY_DSN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GLITCHTIP_KIT_RC_CEILING", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    os.mkfifo(tmp_path / ".glitchtiprc")
    result = CliRunner().invoke(cli, ["dsn"])
    error = one_line_error(result)
    assert "FIFO" in error and "no .glitchtiprc" not in error


def test_mask_url_password_masks_every_password_form():
    from provision.settings import mask_url_password, url_passwords

    url = "postgres://u:one@h/g?sslmode=require&password=two&PASSWORD=three"
    assert url_passwords(url) == ["one", "two", "three"]
    masked = mask_url_password(url)
    assert not any(word in masked for word in ("one", "two", "three")), masked
    assert url_passwords("redis://h:6379/0") == [] and mask_url_password("redis://h/0") == (
        "redis://h/0"
    )


def test_a_password_holding_at_signs_is_found_and_masked_whole():
    """The userinfo ends at the URL's last '@' (a password written with a raw '@' is still
    one password): both the secret list and the masked URL take all of it, never its first
    piece, which would leave the rest of the password in the output."""
    from provision.settings import mask_url_password, url_passwords

    url = "postgres://glitchtip:p@ss@word@db:5432/glitchtip"
    assert url_passwords(url) == ["p@ss@word"]
    assert mask_url_password(url) == "postgres://glitchtip:********@db:5432/glitchtip"

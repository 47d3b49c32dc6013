"""Hostile input, files: concurrent writers, symlinks, FIFOs, alias bombs, huge and duplicate
keys. Each test drives the real CLI (or real processes) on real files and checks that the file
the kit does not own is untouched, that nothing hangs, and that the error is one line, exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from cli_run import one_line_error, run
from click.testing import CliRunner

from provision.cli import cli
from provision.envfile import read_env_file

pytestmark = pytest.mark.usefixtures("kit_environ")

ROOT = Path(__file__).resolve().parent.parent
SECRET_KEYS = ("SECRET_KEY", "POSTGRES_PASSWORD", "DJANGO_SUPERUSER_PASSWORD")


def tree(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Content and mode of every entry (links as their target), to prove nothing changed."""
    out = {}
    for path in sorted(directory.iterdir()):
        if path.is_symlink():
            out[path.name] = (os.readlink(path).encode(), -1)
        elif path.is_file():
            out[path.name] = (path.read_bytes(), path.stat().st_mode & 0o777)
        else:
            out[path.name] = (b"", path.stat().st_mode)
    return out


# --- 1. concurrency: every read-modify-write is serialized ---


def test_rotate_secret_during_a_render_is_not_undone(tmp_path: Path, monkeypatch) -> None:
    """A render that read .env before the rotation must not write the old key back."""
    import provision.render as render
    from provision.secrets import rotate_secret
    from provision.settings import load_settings

    assert run(tmp_path, "init").exit_code == 0
    before = read_env_file(tmp_path / ".env")["SECRET_KEY"]
    real_plan = render.plan
    planned = threading.Event()

    def slow_plan(settings):
        result = real_plan(settings)  # .env read here, with the old SECRET_KEY
        planned.set()
        time.sleep(0.5)  # the rotation arrives now
        return result

    monkeypatch.setattr(render, "plan", slow_plan)
    settings = load_settings(tmp_path)
    worker = threading.Thread(target=render.write_rendered, args=(settings,))
    worker.start()
    assert planned.wait(5)
    rotate_secret(tmp_path / ".env", "SECRET_KEY")  # waits for the render's lock
    worker.join(10)
    after = read_env_file(tmp_path / ".env")["SECRET_KEY"]
    assert after != before, "the render wrote the old SECRET_KEY back over the rotation"
    assert (tmp_path / "compose.yml").is_file()


SLOW_INIT = """
import sys, time
import provision.secrets as s
real = s.missing_secrets
def slow(values):
    time.sleep(0.4)  # widen the window between reading .env and writing it
    return real(values)
s.missing_secrets = slow
from provision.cli import cli
cli(["init", "--dir", sys.argv[1]], prog_name="provision")
"""


def test_concurrent_inits_generate_each_secret_once(tmp_path: Path) -> None:
    """Real processes: of three concurrent inits exactly one generates, the others keep."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLITCHTIP")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SLOW_INIT, str(tmp_path)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [proc.communicate(timeout=60) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), outputs
    stdout = "".join(out for out, _ in outputs)
    for key in SECRET_KEYS:
        assert stdout.count(f".env {key}: ******** (generated)") == 1, stdout
        assert stdout.count(f".env {key}: ******** (kept)") == 2, stdout
    text = (tmp_path / ".env").read_text()
    assert all(text.count(f"{key}=") == 1 for key in SECRET_KEYS), text


def test_concurrent_env_updates_keep_every_key(tmp_path: Path) -> None:
    """Threads each adding their own key through update_env_file: none is lost."""
    from provision.envfile import update_env_file

    env = tmp_path / ".env"
    env.write_text("A=1\n")

    def add(index: int) -> None:
        update_env_file(env, {f"KEY_{index}": str(index)})

    threads = [threading.Thread(target=add, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    values = read_env_file(env)
    assert values == {"A": "1", **{f"KEY_{i}": str(i) for i in range(20)}}


# --- 2. symlinks and foreign files: never chmod, modify or copy into them ---


@pytest.mark.parametrize(
    "command", [["init"], ["render"], ["rotate-secret", "SECRET_KEY", "--yes"]]
)
def test_env_symlink_is_refused_and_its_target_untouched(tmp_path: Path, command) -> None:
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    foreign = tmp_path / "foreign.env"
    foreign.write_text("SECRET_KEY=" + "f" * 60 + "\n")
    foreign.chmod(0o644)
    (deploy / ".env").symlink_to(foreign)
    before_deploy, before_foreign = tree(deploy), tree(tmp_path)
    line = one_line_error(run(deploy, *command))
    assert "symbolic link" in line and str(foreign) in line
    assert foreign.stat().st_mode & 0o777 == 0o644, "the foreign target was chmodded"
    assert tree(deploy) == before_deploy and tree(tmp_path) == before_foreign


@pytest.mark.parametrize("name", ["compose.yml", "compose.part.yml"])
def test_render_refuses_a_symlinked_compose_file_before_writing_anything(
    tmp_path: Path, name: str
) -> None:
    foreign = tmp_path.parent / f"{tmp_path.name}-foreign.yml"
    foreign.write_text("keep: me\n")
    (tmp_path / name).symlink_to(foreign)
    line = one_line_error(run(tmp_path, "render"))
    assert name in line and "symbolic link" in line
    assert foreign.read_text() == "keep: me\n"
    assert not (tmp_path / ".env").exists(), ".env was written before the refusal"


def test_glitchtiprc_symlink_to_passwd_is_refused_before_any_request(tmp_path: Path) -> None:
    target = tmp_path / "passwd"
    target.write_text("root:x:0:0:root:/root:/bin/bash\n")
    (tmp_path / ".glitchtiprc").symlink_to(target)
    os.chdir(tmp_path)
    # Port 9 on loopback: a request would be "cannot reach" (exit 1), not this refusal.
    result = CliRunner().invoke(
        cli, ["create-project", "--url", "http://127.0.0.1:9", "--token", "t" * 40]
    )
    line = one_line_error(result)
    assert ".glitchtiprc is a symbolic link" in line and "remove the link" in line
    assert (tmp_path / ".glitchtiprc").is_symlink()
    assert target.read_text() == "root:x:0:0:root:/root:/bin/bash\n"


def test_write_atomic_refuses_links_and_fifos(tmp_path: Path) -> None:
    from provision.errors import UsageError
    from provision.fileio import write_atomic

    target = tmp_path / "target"
    target.write_text("mine")
    (tmp_path / "link").symlink_to(target)
    os.mkfifo(tmp_path / "fifo")
    for name in ("link", "fifo"):
        with pytest.raises(UsageError):
            write_atomic(tmp_path / name, "new")
    assert target.read_text() == "mine"
    assert (tmp_path / "link").is_symlink() and (tmp_path / "fifo").exists()


# --- 3. hostile files: FIFOs, alias bombs, nesting, huge files, huge values ---


@pytest.mark.parametrize(
    ("name", "command"),
    [
        ("glitchtip.yaml", ["config"]),
        ("glitchtip.yaml", ["render"]),
        (".env", ["config"]),
        (".env", ["render"]),
        (".env", ["init"]),
    ],
)
def test_fifo_is_refused_without_hanging(tmp_path: Path, name: str, command) -> None:
    os.mkfifo(tmp_path / name)
    started = time.monotonic()
    line = one_line_error(run(tmp_path, *command))
    assert time.monotonic() - started < 5
    assert f"{name} cannot be read: it is a named pipe (FIFO)" in line


def test_dsn_with_a_fifo_glitchtiprc_does_not_hang(tmp_path: Path) -> None:
    from provision.dsn import read_rc_dsn
    from provision.errors import UsageError

    os.mkfifo(tmp_path / ".glitchtiprc")
    with pytest.raises(UsageError, match="named pipe"):
        read_rc_dsn(tmp_path / ".glitchtiprc")


ALIAS_BOMB = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
    "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
    "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    "h: [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (ALIAS_BOMB, "line 1 uses a YAML anchor or alias"),
        ("http_port: &p 8000\nretention_days: *p\n", "line 1 uses a YAML anchor or alias"),
        ("http_port: " + "[" * 50000 + "]" * 50000 + "\n", "its value is a list or mapping"),
        ("http_port:\n  nested: 1\n", "its value is a list or mapping"),
        ("- a\n- b\n", "is not a mapping of settings"),
        ("http_port: 8000\n---\nhttp_port: 9000\n", "line 2 starts a second YAML document"),
        ("http_port: 8000\nretention_days: 30\nhttp_port: 9000\n", "set twice (lines 1 and 3)"),
        ("http_port: " + "9" * 5000 + "\n", "a value cannot be read as a setting"),
    ],
    ids=["bomb", "alias", "deep", "nested", "list", "documents", "duplicate", "huge-int"],
)
def test_hostile_yaml_is_refused_in_one_line(tmp_path: Path, text: str, expected: str) -> None:
    (tmp_path / "glitchtip.yaml").write_text(text)
    line = one_line_error(run(tmp_path, "config"))
    assert expected in line
    assert len(line) < 400


def test_huge_settings_file_is_refused_by_size(tmp_path: Path) -> None:
    (tmp_path / "glitchtip.yaml").write_text("organization: " + "x" * 10_000_000 + "\n")
    line = one_line_error(run(tmp_path, "render"))
    assert "more than the 262144" in line and len(line) < 400
    assert sorted(p.name for p in tmp_path.iterdir()) == ["glitchtip.yaml"]


@pytest.mark.parametrize(
    "option",
    [
        "organization=" + "x" * 10_000_000,
        "http_port=" + "9" * 5000,
        "glitchtip_domain=https://" + "a" * 100_000 + ".example",
        "email_url=smtp://u:" + "p" * 100_000 + "@host:587 x",
        "x" * 100_000 + "=1",
    ],
    ids=["name", "port", "domain", "email-url", "unknown-key"],
)
def test_huge_values_are_not_echoed_whole(tmp_path: Path, option: str) -> None:
    line = one_line_error(run(tmp_path, "render", "--set", option))
    assert len(line) < 600, len(line)
    assert "p" * 100 not in line  # a password-like value is neither echoed nor leaked
    assert list(tmp_path.iterdir()) == []


def test_huge_env_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("BIG=" + "x" * 2_000_000 + "\n")
    line = one_line_error(run(tmp_path, "render"))
    assert ".env cannot be read" in line and len(line) < 400


# --- 8. duplicate keys ---


def test_duplicate_secret_key_in_env_is_refused_with_line_numbers(tmp_path: Path) -> None:
    assert run(tmp_path, "init").exit_code == 0
    env = tmp_path / ".env"
    first = read_env_file(env)["SECRET_KEY"]
    env.write_text(env.read_text() + "SECRET_KEY=" + "z" * 60 + "\n")
    lines = env.read_text().splitlines()
    first_line = next(i for i, line in enumerate(lines, 1) if line.startswith("SECRET_KEY="))
    before = tree(tmp_path)
    for command in (["render"], ["config"], ["rotate-secret", "SECRET_KEY", "--yes"], ["init"]):
        line = one_line_error(run(tmp_path, *command))
        assert f"SECRET_KEY is set twice in {env} (lines {first_line} and {len(lines)})" in line
        assert first not in line and "z" * 60 not in line
    assert tree(tmp_path) == before


@pytest.mark.parametrize("key", ["EMAIL_URL", "GLITCHTIP_KIT_HTTP_PORT", "MY_OWN"])
def test_any_duplicate_env_key_is_refused(tmp_path: Path, key: str) -> None:
    (tmp_path / ".env").write_text(f"{key}=a\n# comment\nexport {key}=b\n")
    line = one_line_error(run(tmp_path, "config"))
    assert f"{key} is set twice" in line and "(lines 1 and 3)" in line


def test_unterminated_quote_in_env_is_refused_before_compose(tmp_path: Path) -> None:
    assert run(tmp_path, "init").exit_code == 0
    with (tmp_path / ".env").open("a") as handle:
        handle.write('MINE="abc\n')
    before = tree(tmp_path)
    line = one_line_error(run(tmp_path, "render"))
    assert "MINE opens a quote it does not close" in line
    assert tree(tmp_path) == before

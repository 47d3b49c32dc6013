"""The streams into and out of Compose hand the child what the kit decides and nothing of the
caller's: stdin closed for a dump (never the terminal the kit runs in), the environment Compose
builds with the caller's extra variables, and the child's output back exactly; a child that
stops reading its input is a failure named as such (issue 20: `stream_out`'s `stdin` and
`stream_in`'s arguments kept surviving mutants)."""

from __future__ import annotations

import os

import pytest

from provision.errors import KitError
from provision.runtime.streams import stream_in, stream_out


class ShellCompose:
    """`compose ARGS` is `sh -c ARGS[0]`; the child's environment is PATH plus the extras."""

    def __init__(self, directory) -> None:
        self.directory = directory

    def argv(self, *args: str) -> list[str]:
        return ["sh", "-c", *args]

    def child_env(self, env=None) -> dict:
        return {"PATH": "/usr/bin:/bin", "FROM_COMPOSE": "yes", **(env or {})}

    def redact(self, text: str) -> str:
        return text.replace("s3cret", "***")


@pytest.fixture
def typed_stdin():
    """The kit's own stdin holds bytes (a terminal someone typed into, a pipe): a child that
    inherited it would read them."""
    read, write = os.pipe()
    os.write(write, b"typed by someone")
    os.close(write)
    saved = os.dup(0)
    os.dup2(read, 0)
    os.close(read)
    try:
        yield
    finally:
        os.dup2(saved, 0)
        os.close(saved)


def test_a_dump_never_reads_the_kits_stdin(tmp_path, typed_stdin):
    chunks: list[bytes] = []
    count = stream_out(ShellCompose(tmp_path), ["printf abc; cat"], chunks.append, what="dump")
    assert (count, b"".join(chunks)) == (3, b"abc")


def test_a_dump_runs_in_the_environment_compose_builds_with_the_extras(tmp_path):
    chunks: list[bytes] = []
    stream_out(
        ShellCompose(tmp_path),
        ['printf "%s %s" "$FROM_COMPOSE" "$EXTRA"; pwd'],
        chunks.append,
        what="dump",
        env={"EXTRA": "given"},
    )
    assert b"".join(chunks) == f"yes given{tmp_path}\n".encode()


def test_a_restore_feeds_every_chunk_and_returns_the_childs_words_redacted(tmp_path):
    seen: list[int] = []
    said = stream_in(
        ShellCompose(tmp_path),
        ['wc -c; printf "%s s3cret" "$EXTRA" >&2'],
        [b"a" * 10, b"b" * 5],
        what="restore",
        env={"EXTRA": "given"},
        progress=seen.append,
    )
    assert said.split() == ["15", "given", "***"]
    assert seen == [10, 15]


def test_a_restore_whose_child_fails_or_stops_reading_is_named(tmp_path):
    with pytest.raises(KitError) as caught:
        stream_in(ShellCompose(tmp_path), ["cat >/dev/null; echo no s3cret; exit 4"], [b"x"],
                  what="restore")  # fmt: skip
    assert caught.value.line() == "restore failed (exit 4): no ***"
    big = [b"x" * (1 << 20)] * 8  # more than a pipe holds: the writer meets a closed pipe
    with pytest.raises(KitError) as caught:
        stream_in(ShellCompose(tmp_path), ["exec 0<&-; echo closed"], big, what="restore")
    assert caught.value.line() == "restore failed (it stopped reading its input): closed"


def test_a_failure_quotes_only_the_end_of_a_long_stderr(tmp_path):
    """The error line quotes the last lines of the child's stderr from its last 2000 bytes only:
    a child that printed megabytes before failing gives one bounded line, the earliest of the
    last lines cut at the 2000-byte mark (secrets masked as always)."""
    script = (
        "printf 'first %01500d\\n' 0 >&2; printf 'second %01500d\\n' 0 >&2; "
        "printf 'third s3cret\\n' >&2; exit 4"
    )
    with pytest.raises(KitError) as caught:
        stream_out(ShellCompose(tmp_path), [script], lambda chunk: None, what="dump")
    # The last 2000 bytes: 13 of `third`, 1,508 of `second`, the last 479 of `first` (its
    # newline and 478 zeros, without the word "first").
    assert caught.value.message == (
        f"dump failed (exit 4): {'0' * 478} | second {'0' * 1500} | third ***"
    )


def test_a_dump_moves_in_chunks_of_one_mib_and_counts_every_byte(tmp_path):
    sizes: list[int] = []
    size = (5 << 19) + 7  # 2.5 MiB and 7 bytes
    count = stream_out(
        ShellCompose(tmp_path), [f"head -c {size} /dev/zero"], lambda c: sizes.append(len(c)),
        what="dump",
    )  # fmt: skip
    assert (count, sizes) == (size, [1 << 20, 1 << 20, (1 << 19) + 7])


def test_a_failure_quotes_the_last_three_non_empty_lines_or_nothing(tmp_path):
    script = "printf 'one\\ntwo\\n\\n  three  \\nfour s3cret\\n\\n' >&2; exit 3"
    with pytest.raises(KitError) as caught:
        stream_out(ShellCompose(tmp_path), [script], lambda chunk: None, what="dump")
    assert caught.value.line() == "dump failed (exit 3): two | three | four ***"
    with pytest.raises(KitError) as caught:
        stream_out(ShellCompose(tmp_path), ["exit 5"], lambda chunk: None, what="dump")
    assert caught.value.line() == "dump failed (exit 5)"
    with pytest.raises(KitError) as caught:
        stream_in(ShellCompose(tmp_path), ["cat >/dev/null; exit 2"], [b"x"], what="restore")
    assert caught.value.line() == "restore failed (exit 2)"


def test_a_failure_quotes_stderr_that_is_not_utf8_with_replacement_characters(tmp_path):
    """pg_dump under a Latin-1 locale: its bytes are quoted, never a UnicodeDecodeError."""
    with pytest.raises(KitError) as caught:
        stream_out(
            ShellCompose(tmp_path), ["printf 'caf\\351 s3cret\\n' >&2; exit 1"],
            lambda chunk: None, what="dump",
        )  # fmt: skip
    assert caught.value.line() == "dump failed (exit 1): caf\ufffd ***"

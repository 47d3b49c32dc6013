"""Byte streams into and out of Compose (`exec -T`, `run -T`), in constant memory.

`Compose.run` captures text; a database dump is bytes and may be larger than RAM. These run the
same argv (`Compose.argv`, so the same files and project) with stdout or stdin as a pipe moved
in 1 MiB chunks, and stderr kept in a temporary file whose end, redacted, explains a failure.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from provision.errors import KitError
from provision.runtime.compose import compose_child

CHUNK = 1 << 20


def _tail(compose: Any, handle: Any, limit: int = 2000) -> str:
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    handle.seek(max(0, size - limit))
    text = handle.read().decode("utf-8", "replace")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return compose.redact(" | ".join(lines[-3:])) if lines else ""


def stream_out(
    compose: Any,
    args: Iterable[str],
    sink: Callable[[bytes], None],
    *,
    what: str,
    env: Mapping[str, str] | None = None,
) -> int:
    """Run `compose ARGS` and hand its stdout to `sink` chunk by chunk; return the bytes.

    A non-zero exit is a `KitError` naming `what` and the end of its stderr.
    """
    argv = compose.argv(*args)
    total = 0
    with tempfile.TemporaryFile() as errors:
        with compose_child(
            compose,
            argv,
            env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errors,
        ) as process:
            assert process.stdout is not None
            while chunk := process.stdout.read(CHUNK):
                sink(chunk)
                total += len(chunk)
            code = process.wait()
        if code != 0:
            tail = _tail(compose, errors)
            raise KitError(f"{what} failed (exit {code})" + (f": {tail}" if tail else ""))
    return total


def stream_in(
    compose: Any,
    args: Iterable[str],
    chunks: Iterable[bytes],
    *,
    what: str,
    env: Mapping[str, str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> str:
    """Run `compose ARGS` with `chunks` on its stdin; return its output (redacted).

    The child's stdout and stderr go to one temporary file (never a pipe nobody reads, which
    would stall it). A child that exits early (a broken pipe) or non-zero is a `KitError`.
    """
    argv = compose.argv(*args)
    total = 0
    with tempfile.TemporaryFile() as output:
        broken = False
        with compose_child(
            compose,
            argv,
            env,
            stdin=subprocess.PIPE,
            stdout=output,
            stderr=subprocess.STDOUT,
        ) as process:
            assert process.stdin is not None
            for chunk in chunks:
                try:
                    process.stdin.write(chunk)
                except BrokenPipeError:
                    broken = True
                    break
                total += len(chunk)
                if progress is not None:
                    progress(total)
            try:
                process.stdin.close()
            except BrokenPipeError:
                broken = True
            code = process.wait()
        tail = _tail(compose, output)
        if code != 0 or broken:
            why = f"exit {code}" if code != 0 else "it stopped reading its input"
            raise KitError(f"{what} failed ({why})" + (f": {tail}" if tail else ""))
        output.seek(0)
        return compose.redact(output.read().decode("utf-8", "replace"))

"""The deployment lock opens only a directory: `locked` walks to an existing directory first,
but the path can be swapped for a file (or removed) between that check and the open; then the
lock must refuse in one line rather than lock the file (issue 20: `_open_directory`'s
`O_DIRECTORY` under another name, and its message, survived every test)."""

from __future__ import annotations

import os

import pytest

from provision import locking
from provision.errors import KitError


def test_a_directory_opens_for_the_lock(tmp_path):
    fd = locking._open_directory(tmp_path)
    try:
        assert os.path.samestat(os.fstat(fd), os.stat(tmp_path))
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda path: path.write_text("a file now"), "Not a directory"),
        (lambda path: None, "No such file or directory"),
    ],
    ids=["swapped-for-a-file", "removed"],
)
def test_a_path_that_is_no_directory_is_refused_in_one_line(tmp_path, make, why):
    path = tmp_path / "deployment"
    make(path)
    with pytest.raises(KitError) as caught:
        locking._open_directory(path)
    assert caught.value.line() == (
        f"cannot lock {path} ({why}): check that {path} is a directory readable by you"
    )

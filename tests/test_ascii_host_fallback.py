"""Host names without the `idna` package (it comes with httpx, but the parser does not rely on
it): Python's own IDNA codec gives the same punycode, and a name it cannot encode is refused in
one whole line."""

from __future__ import annotations

import sys

import pytest

from provision.settings.base import Invalid
from provision.settings.parsers import ascii_host

FIX = "use a host name of letters, digits, '-' and '.', e.g. glitchtip.example.com"


def test_without_idna_pythons_codec_encodes_and_refuses(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "idna", None)  # `import idna` fails
    assert ascii_host(" Bücher.example. ") == "xn--bcher-kva.example"
    long_label = "ü" * 70 + ".example"  # a label of more than 63 characters once encoded
    with pytest.raises(Invalid) as refused:
        ascii_host(long_label)
    assert (refused.value.problem, refused.value.fix) == (
        "'" + "ü" * 54 + "...' (78 characters) is not a valid host name",
        FIX,
    )

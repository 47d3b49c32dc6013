"""The Docker engine wrapper: an engine that stops answering is one KitError line."""

from __future__ import annotations

import pytest
import requests

from provision.errors import KitError
from provision.stack.engine import Engine


class VanishedEngine:
    """A docker client whose engine went away after the first ping (socket closed)."""

    def version(self):
        raise requests.exceptions.ConnectionError("('Connection aborted.', FileNotFoundError)")


def test_engine_gone_mid_session_is_a_kit_error():
    with pytest.raises(KitError) as caught:
        Engine(client=VanishedEngine()).version()
    assert caught.value.line().startswith("the Docker engine does not answer")

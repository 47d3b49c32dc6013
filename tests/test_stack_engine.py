"""The Docker engine wrapper: an engine that stops answering is one KitError line."""

from __future__ import annotations

import pytest
import requests

from provision.errors import KitError
from provision.runtime.engine import Engine


class VanishedEngine:
    """A docker client whose engine went away after the first ping (socket closed)."""

    def version(self):
        raise requests.exceptions.ConnectionError("('Connection aborted.', FileNotFoundError)")


def test_engine_gone_mid_session_is_a_kit_error():
    with pytest.raises(KitError) as caught:
        Engine(client=VanishedEngine()).version()
    assert caught.value.line().startswith("the Docker engine does not answer")


LABELS = {
    "com.docker.compose.project": "gtkit",
    "com.docker.compose.service": "migrate",
    "com.docker.compose.config-hash": "c0ffee",
}


class Api:
    """The low-level API of a docker client: one container of `up`, one of `compose run`."""

    def containers(self, all=False, filters=None):
        run_labels = {**LABELS, "com.docker.compose.oneoff": "True"}
        return [
            {"Id": "a", "Names": ["/gtkit-migrate-1"], "Labels": LABELS, "State": "exited"},
            {"Id": "b", "Names": ["/gtkit-migrate-run-1"], "Labels": run_labels, "State": "exited"},
        ]

    def inspect_container(self, ident):
        state = {"Status": "exited", "ExitCode": 0}
        return {"State": state, "Image": f"sha256:{ident}1", "Config": {"Image": "gt:6"}}

    def inspect_image(self, reference):
        from docker.errors import ImageNotFound

        if reference != "gt:6":
            raise ImageNotFound(f"No such image: {reference}")
        return {"Id": "sha256:a1"}


class Client:
    api = Api()


def test_containers_carry_what_decides_whether_up_would_recreate_them():
    engine = Engine(client=Client())
    up, run = engine.containers("gtkit")
    assert (up.name, up.config_hash, up.image_id, up.oneoff) == (
        "gtkit-migrate-1",
        "c0ffee",
        "sha256:a1",
        False,
    )
    assert (run.name, run.oneoff, run.exit_code) == ("gtkit-migrate-run-1", True, 0)
    assert engine.image_id("gt:6") == "sha256:a1" and engine.image_present("gt:6")
    assert engine.image_id("gt:7") is None and not engine.image_present("gt:7")

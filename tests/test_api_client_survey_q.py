"""A GlitchTip URL whose password holds an `@`: the refusal names the host alone, no part of
the user or the password (part q of the CI-shaped run's survivors)."""

from __future__ import annotations

import socket

import pytest

from provision.api.client import ApiError, GlitchTipClient, RetryPolicy


def test_a_password_with_an_at_sign_is_not_shown_in_the_refusal():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    url = f"http://admin:p@ss@127.0.0.1:{port}"
    policy = RetryPolicy(attempts=1, backoff=0)
    with (
        GlitchTipClient(url, "tok", retry=policy, sleep=lambda _: None, timeout=0.5) as client,
        pytest.raises(ApiError) as error,
    ):
        client.send("GET", "/api/0/organizations/")
    assert error.value.message == (
        f"cannot reach GlitchTip at http://127.0.0.1:{port} (ConnectError, 1 attempt)"
    )

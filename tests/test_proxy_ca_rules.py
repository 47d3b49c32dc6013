"""The internal CA root's checks, whole: exactly one PEM certificate, and read_root's one-line
reason after its attempts (the last failure, with the fix)."""

from __future__ import annotations

import pytest
from test_proxy_steps import a_pem

from provision.errors import KitError
from provision.proxy import ca
from provision.proxy.caddyfile import ROOT_CERT_PATH
from provision.runtime.process import ProcessResult


def test_one_certificate_is_kept_with_one_final_newline():
    pem = a_pem()
    assert ca.check_pem("\n\n" + pem.strip() + "\n\n\n") == pem.strip() + "\n"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "garbage",
        "PEM? " + a_pem(),  # text before BEGIN
        a_pem() + "trailing words",  # text after END
        a_pem().strip().removesuffix(ca.PEM_END),  # no END
        a_pem().strip().removeprefix(ca.PEM_BEGIN),  # no BEGIN
        a_pem() + a_pem(),  # two certificates
    ],
)
def test_anything_but_one_certificate_is_refused(text):
    with pytest.raises(ValueError, match=r"^not one PEM certificate$"):
        ca.check_pem(text)


class Answers:
    """compose.run for `exec proxy cat`: the answers in order, the last one repeated."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = []

    def run(self, *args, timeout=None):
        self.calls.append((args, timeout))
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def ok(text):
    return ProcessResult(("compose",), 0, text, "")


def test_read_root_retries_and_names_the_last_failure_and_the_fix():
    pauses = []
    compose = Answers(
        ProcessResult(("compose",), 1, "", "cat: root.crt: No such file or directory"),
        ok("<html>"),
    )
    with pytest.raises(KitError) as failed:
        ca.read_root(compose, attempts=3, pause=0.25, sleep=pauses.append)
    assert failed.value.message == (
        f"cannot read the proxy's CA root {ROOT_CERT_PATH} (the file is not a PEM certificate)"
    )
    assert failed.value.fix == (
        "check that the proxy runs (`provision status`, `provision logs proxy`), then run "
        "`provision proxy-ca` again"
    )
    assert pauses == [0.25, 0.25]  # between attempts, not after the last
    assert compose.calls == [(("exec", "-T", "proxy", "cat", ROOT_CERT_PATH), 60)] * 3


def test_read_root_says_how_the_command_failed():
    silent = Answers(ProcessResult(("compose",), 7, "", ""))
    with pytest.raises(KitError) as failed:
        ca.read_root(silent, attempts=1, sleep=pytest.fail)
    assert failed.value.message.endswith("(exit 7)")
    loud = Answers(ProcessResult(("compose",), 1, "one\ntwo", 'service "proxy" is not running'))
    with pytest.raises(KitError) as failed:
        ca.read_root(loud, attempts=1, sleep=pytest.fail)
    assert failed.value.message.endswith('(two | service "proxy" is not running)')


def test_read_root_returns_the_certificate_once_caddy_wrote_it():
    compose = Answers(ProcessResult(("compose",), 1, "", "No such file"), ok(a_pem()))
    assert ca.read_root(compose, attempts=5, sleep=lambda s: None) == a_pem()
    assert len(compose.calls) == 2


def test_read_root_by_default_tries_20_times_half_a_second_apart():
    """Caddy writes its root right after it starts: the callers (`provision proxy-ca`, the
    proxy step of `up`) rely on the defaults, 20 reads 0.5 s apart (about 10 s), and then one
    line naming the last failure."""
    pauses = []
    compose = Answers(ProcessResult(("compose",), 1, "", "cat: root.crt: No such file"))
    with pytest.raises(KitError) as failed:
        ca.read_root(compose, sleep=pauses.append)
    assert failed.value.message == (
        f"cannot read the proxy's CA root {ROOT_CERT_PATH} (cat: root.crt: No such file)"
    )
    assert compose.calls == [(("exec", "-T", "proxy", "cat", ROOT_CERT_PATH), 60)] * 20
    assert pauses == [0.5] * 19

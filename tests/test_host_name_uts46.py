"""An internationalized host name goes to punycode through UTS #46's mapping, as browsers do:
a name typed with full-width letters (an East Asian keyboard's input mode) is the same name as
its ASCII letters, and the kit writes the one form DNS, Django's ALLOWED_HOSTS and the Host
header carry, rather than refusing it."""

from __future__ import annotations

import pytest

from provision.settings import load_settings, mail

pytestmark = pytest.mark.usefixtures("kit_environ")


def test_a_domain_typed_with_full_width_letters_is_its_punycode_name(tmp_path):
    full_width_gt = "\uff47\uff54"  # "gt" typed in full-width letters
    overrides = {"glitchtip_domain": f"https://{full_width_gt}.bücher.example"}
    settings = load_settings(tmp_path, overrides, environ={})
    assert settings.glitchtip_domain == "https://gt.xn--bcher-kva.example"


def test_a_sender_domain_typed_with_full_width_letters_is_its_punycode_name():
    assert mail.parse_from_email("ops@\uff42ücher.example") == "ops@xn--bcher-kva.example"

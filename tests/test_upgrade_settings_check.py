"""The upgrade's preflight loads the settings it would write as the kit will load them: with
the `.env` values it would add and with the caller's environment (not the process's), in a
scratch directory that is gone afterwards.

Bug fixed with this test (issue 20, a surviving mutant showed it): `check_plan_settings` took
`environ` and never passed it on, so preflight judged the settings under the process's
environment instead of the one the upgrade runs with."""

from __future__ import annotations

import pytest
from test_ops_upgrade import deployment

from provision.errors import SettingsError
from provision.ops.upgrade_files import check_plan_settings


def test_the_values_to_add_to_env_are_part_of_the_check(tmp_path):
    directory = deployment(tmp_path)
    before = sorted(path.name for path in directory.iterdir())
    check_plan_settings(directory, {"glitchtip_major": 6}, {}, {})
    with pytest.raises(SettingsError) as caught:
        check_plan_settings(directory, {}, {"GLITCHTIP_KIT_PROFILE": "huge"}, {})
    assert caught.value.line() == (
        "profile (from .env GLITCHTIP_KIT_PROFILE): 'huge' is not a profile: use standard, minimal"
    )
    assert sorted(path.name for path in directory.iterdir()) == before  # no scratch left


def test_the_check_uses_the_environment_it_is_given(tmp_path, monkeypatch):
    directory = deployment(tmp_path)
    monkeypatch.delenv("GLITCHTIP_KIT_HTTP_PORT", raising=False)
    with pytest.raises(SettingsError) as caught:
        check_plan_settings(directory, {}, {}, {"GLITCHTIP_KIT_HTTP_PORT": "notaport"})
    assert caught.value.line() == (
        "http_port (from environment variable GLITCHTIP_KIT_HTTP_PORT): 'notaport' is not a "
        "port number: use a whole number from 1 to 65535"
    )
    monkeypatch.setenv("GLITCHTIP_KIT_HTTP_PORT", "notaport")
    check_plan_settings(directory, {}, {}, {})  # the process's environment is not the run's

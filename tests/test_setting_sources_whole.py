"""Where a setting comes from, and every refusal of that, compared whole: glitchtip.yaml's
shape and unknown keys (with the suggestion), a setting given as an option or variable that only
the file may set, a secret written into the committed file, a bad value in `.env` or the
environment. `{d}` stands for the deployment's directory."""

from __future__ import annotations

import pytest

from provision.errors import SettingsError
from provision.settings import load_settings

pytestmark = pytest.mark.usefixtures("kit_environ")


@pytest.mark.parametrize(
    ("kind", "given", "message", "fix"),
    [
        (
            "file",
            "GLITCHTIP_KIT_HTTP_PORT: 8080\n",
            "GLITCHTIP_KIT_HTTP_PORT: unknown setting in glitchtip.yaml",
            "did you mean http_port? (glitchtip.yaml uses setting names)",
        ),
        (
            "file",
            "http_prot: 8080\n",
            "http_prot: unknown setting in glitchtip.yaml",
            "did you mean http_port?",
        ),
        (
            "file",
            "zzzzqqq: 1\n",
            "zzzzqqq: unknown setting in glitchtip.yaml",
            "see the settings reference in docs/settings.md or `provision config`",
        ),
        (
            "file",
            "ünïcødé\u200b: 1\n",
            "'ünïcødé\\u200b': unknown setting in glitchtip.yaml",
            "see the settings reference in docs/settings.md or `provision config`",
        ),
        (
            "file",
            "1: 2\n",
            "1: unknown setting in glitchtip.yaml",
            "see the settings reference in docs/settings.md or `provision config`",
        ),
        (
            "file",
            "- a\n- b\n",
            "glitchtip.yaml: is not a mapping of settings",
            "write one 'setting: value' per line",
        ),
        (
            "file",
            "a: &x 1\nb: *x\n",
            "glitchtip.yaml: line 1 uses a YAML anchor or alias (& or *)",
            "write each setting's value out in full",
        ),
        (
            "file",
            "http_port: 1\n---\nhttp_port: 2\n",
            "glitchtip.yaml: line 2 starts a second YAML document",
            "keep one 'setting: value' per line in {d}/glitchtip.yaml, without '---'",
        ),
        (
            "file",
            "http_port: 1\nhttp_port: 2\n",
            "glitchtip.yaml: 'http_port' is set twice (lines 1 and 2)",
            "delete one of the two lines (YAML would silently keep the last)",
        ),
        (
            "file",
            "error_budgets:\n  web: {max_errors: 1, per: 1h}\n  web: {max_errors: 2, per: 1h}\n",
            "glitchtip.yaml: error_budgets: 'web' is set twice (lines 2 and 3)",
            "delete one of the two lines (YAML would silently keep the last)",
        ),
        (
            "file",
            "http_port: [1, 2]\n",
            "glitchtip.yaml: line 1: http_port: its value is a list or mapping",
            "give each setting a single value ('setting: value')",
        ),
        (
            "file",
            "http_port:\n  a: 1\n",
            "glitchtip.yaml: line 2: http_port: its value is a list or mapping",
            "give each setting a single value ('setting: value')",
        ),
        (
            "file",
            "error_budgets:\n  web:\n    max_errors:\n      deep: 1\n",
            "glitchtip.yaml: line 4: max_errors: its value is a list or mapping",
            "write budgets as `error_budgets:` then `  <project>: {max_errors: 200, per: 1d}`",
        ),
        (
            "file",
            "http_port: 'unclosed\n",
            "glitchtip.yaml: not valid YAML at line 2",
            "fix the syntax of {d}/glitchtip.yaml (one 'setting: value' per line)",
        ),
        (
            "file",
            "http_port: 1e99999999999999\n",
            "http_port (from glitchtip.yaml): '1e99999999999999' is not a port number",
            "use a whole number from 1 to 65535",
        ),
        (
            "file",
            "uploads_secret_access_key: abc\n",
            "uploads_secret_access_key (from glitchtip.yaml): is a secret in a file meant to be "
            "committed",
            "remove it from glitchtip.yaml and set GLITCHTIP_KIT_UPLOADS_SECRET_ACCESS_KEY in "
            "the environment or pass --set uploads_secret_access_key=...; the kit keeps it in "
            ".env (0600)",
        ),
        (
            "file",
            "database_url: postgres://gt:pw@db.example.com/gt\n",
            "database_url (from glitchtip.yaml): holds a password in a file meant to be committed",
            "remove it from glitchtip.yaml and set GLITCHTIP_KIT_DATABASE_URL in the "
            "environment or pass --set database_url=...; the kit keeps it in .env (0600)",
        ),
        (
            "file",
            "http_port: 0\n",
            "http_port (from glitchtip.yaml): 0 is out of range",
            "use a whole number from 1 to 65535",
        ),
        (
            "file",
            "just text\n",
            "glitchtip.yaml: is not a mapping of settings",
            "write one 'setting: value' per line",
        ),
        (
            "options",
            {"http_prot": "1"},
            "http_prot: unknown setting given as an option",
            "did you mean http_port?",
        ),
        (
            "options",
            {"GLITCHTIP_KIT_HTTP_PORT": "1"},
            "GLITCHTIP_KIT_HTTP_PORT: unknown setting given as an option",
            "did you mean http_port? (glitchtip.yaml uses setting names)",
        ),
        (
            "options",
            {"error_budgets": "x"},
            "error_budgets (from option error_budgets): can only be set in glitchtip.yaml",
            "write it in {d}/glitchtip.yaml (see docs/metrics.md)",
        ),
        (
            "environ",
            {"GLITCHTIP_KIT_ERROR_BUDGETS": "x"},
            "error_budgets (from environment variable GLITCHTIP_KIT_ERROR_BUDGETS): can only be "
            "set in "
            "glitchtip.yaml",
            "write it in {d}/glitchtip.yaml (see docs/metrics.md)",
        ),
        (
            "environ",
            {"GLITCHTIP_KIT_HTTP_PORT": "0"},
            "http_port (from environment variable GLITCHTIP_KIT_HTTP_PORT): 0 is out of range",
            "use a whole number from 1 to 65535",
        ),
        (
            "dotenv",
            "EMAIL_URL=bogus\n",
            "email_url (from .env EMAIL_URL): 'bogus' is not an e-mail URL",
            "use e.g. smtp+tls://user:password@mail.example.com:587 or consolemail://",
        ),
        (
            "dotenv",
            "GLITCHTIP_KIT_HTTP_PORT=0\n",
            "http_port (from .env GLITCHTIP_KIT_HTTP_PORT): 0 is out of range",
            "use a whole number from 1 to 65535",
        ),
    ],
)
def test_each_source_refusal_is_whole(tmp_path, kind, given, message, fix):
    overrides: dict = {}
    environ: dict = {}
    if kind == "file":
        (tmp_path / "glitchtip.yaml").write_text(given, encoding="utf-8")
    elif kind == "dotenv":
        (tmp_path / ".env").write_text(given)
    elif kind == "options":
        overrides = given
    else:
        environ = given
    with pytest.raises(SettingsError) as refused:
        load_settings(tmp_path, overrides, environ=environ)
    assert (refused.value.message, refused.value.fix) == (
        message.replace("{d}", str(tmp_path)),
        fix.replace("{d}", str(tmp_path)),
    )

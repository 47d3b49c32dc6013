"""`provision.provisioning` called directly against the fake GlitchTip over HTTP.

The CLI tests (test_create_project.py) cover the command; these pin the decisions inside:
which token wins and what happens when a stored one is rejected, how an existing organization
or project is recognised (slug, name, or the slug of the name), which key gives the DSN, and the
refusals of bad input before any request is sent.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fakeglitchtip import create_api_token, create_superuser, start_fake

from provision.api.client import RetryPolicy
from provision.envfile import read_env_file
from provision.errors import ApiError, UsageError
from provision.provisioning import (
    TOKEN_KEY,
    ProjectRequest,
    ProjectResult,
    provision_project,
    slugify,
)

ADMIN = "admin@example.com"
PASSWORD = "admin-Passw0rd-123"
SCOPES = ["org:admin", "team:admin", "project:admin", "project:write", "project:read"]
FAST = {"retry": RetryPolicy(attempts=2, backoff=0.01)}


@pytest.fixture
def fake():
    handle = start_fake()
    create_superuser(handle.store, ADMIN, PASSWORD)
    yield handle
    handle.stop()


def request(fake, tmp_path: Path, **values) -> ProjectRequest:
    wanted = {
        "url": fake.url,
        "org": "Acme Corp",
        "project": "Web App",
        "admin_email": ADMIN,
        "admin_password": PASSWORD,
        "env_path": tmp_path / ".env",
        "rc_path": tmp_path / ".glitchtiprc",
        "client_options": dict(FAST),
        **values,
    }
    return ProjectRequest(**wanted)


def posts(fake) -> list[str]:
    return [r.path for r in fake.requests if r.method == "POST"]


# --- token ---


def test_first_run_mints_and_stores_a_token_then_reuses_it(fake, tmp_path):
    notes: list[str] = []
    first = provision_project(request(fake, tmp_path), progress=notes.append)
    token = read_env_file(tmp_path / ".env")[TOKEN_KEY]
    assert first.token_source == "created" and token in fake.store.snapshot()["tokens"]
    assert f"logging in as {ADMIN} to create an API token" in notes
    assert (tmp_path / ".env").stat().st_mode & 0o777 == 0o600
    fake.clear_log()
    second = provision_project(request(fake, tmp_path, admin_password=None))
    assert second.token_source == "stored" and posts(fake) == []
    assert read_env_file(tmp_path / ".env")[TOKEN_KEY] == token


def test_a_rejected_stored_token_is_replaced_by_a_new_one(fake, tmp_path):
    (tmp_path / ".env").write_text(f"KEEP=1\n{TOKEN_KEY}={'f' * 64}\n")
    notes: list[str] = []
    result = provision_project(request(fake, tmp_path), progress=notes.append)
    env = read_env_file(tmp_path / ".env")
    assert result.token_source == "created"
    assert env[TOKEN_KEY] != "f" * 64 and env[TOKEN_KEY] in fake.store.snapshot()["tokens"]
    assert env["KEEP"] == "1"
    assert notes[0] == f"the token stored in {tmp_path / '.env'} was rejected; creating a new one"
    assert "f" * 64 not in " ".join(notes)


def test_a_rejected_stored_token_without_credentials_says_what_to_give(fake, tmp_path):
    (tmp_path / ".env").write_text(f"{TOKEN_KEY}={'f' * 64}\n")
    with pytest.raises(UsageError) as error:
        provision_project(request(fake, tmp_path, admin_password=None))
    assert error.value.line() == (
        "no API token and no admin credentials to create one: "
        "give --token (GLITCHTIP_API_TOKEN) or --admin-email and --admin-password"
    )
    assert posts(fake) == [] and not (tmp_path / ".glitchtiprc").exists()


def test_a_given_token_wins_and_a_rejected_one_is_an_error(fake, tmp_path):
    token = create_api_token(fake.store, ADMIN, SCOPES)
    (tmp_path / ".env").write_text(f"{TOKEN_KEY}={'e' * 64}\n")
    result = provision_project(request(fake, tmp_path, token=token, admin_password=None))
    assert result.token_source == "given"
    assert read_env_file(tmp_path / ".env")[TOKEN_KEY] == "e" * 64  # a given token is not stored
    (tmp_path / "other").mkdir()  # a missing one is refused before any request (issue 18)
    with pytest.raises(ApiError, match=r"token rejected by GlitchTip \(401\)") as error:
        provision_project(request(fake, tmp_path / "other", token="d" * 64))
    assert error.value.status == 401 and "d" * 64 not in error.value.line()
    assert list((tmp_path / "other").iterdir()) == []


def test_without_an_env_path_nothing_is_stored(fake, tmp_path):
    result = provision_project(request(fake, tmp_path, env_path=None))
    assert result.token_source == "created" and not (tmp_path / ".env").exists()


# --- get or create ---


def test_second_run_creates_nothing_and_gives_the_same_dsn(fake, tmp_path):
    first = provision_project(request(fake, tmp_path))
    assert first.created == ["organization acme-corp", "team acme-corp", "project web-app"]
    assert (first.org_slug, first.team_slug, first.project_slug) == (
        "acme-corp",
        "acme-corp",
        "web-app",
    )
    assert first.rc_changed is True and first.rc_path == tmp_path / ".glitchtiprc"
    assert first.posts == 3  # org, team, project: the project came with its default key
    fake.clear_log()
    second = provision_project(request(fake, tmp_path))
    assert second.created == [] and second.posts == 0 and posts(fake) == []
    assert second.dsn == first.dsn and second.rc_changed is False
    assert (tmp_path / ".glitchtiprc").read_text() == (
        f"[defaults]\norg = acme-corp\nproject = web-app\nurl = {first.dsn}\n"
    )


@pytest.mark.parametrize("org", ["ACME CORP", " acme   corp ", "Acme-Corp!", "acme-corp"])
def test_an_existing_organization_is_found_by_the_slug_of_its_name(fake, tmp_path, org):
    provision_project(request(fake, tmp_path))
    fake.clear_log()
    result = provision_project(request(fake, tmp_path, org=org))
    assert result.org_slug == "acme-corp" and posts(fake) == []
    assert len(fake.store.snapshot()["orgs"]) == 1


@pytest.mark.parametrize("project", ["WEB APP", "web-app", "Web  App?", " Web App "])
def test_an_existing_project_is_found_by_the_slug_of_its_name(fake, tmp_path, project):
    provision_project(request(fake, tmp_path))
    fake.clear_log()
    result = provision_project(request(fake, tmp_path, project=project))
    assert result.project_slug == "web-app" and posts(fake) == []
    assert len(fake.store.snapshot()["projects"]) == 1


def test_an_organization_is_found_by_its_exact_name_when_its_slug_differs(fake, tmp_path):
    provision_project(request(fake, tmp_path, org="Acme"))
    # GlitchTip suffixes the slug of a second org with the same name ("acme-x1"): that org is
    # then found by its name only when no org has the slug itself.
    provision_project(request(fake, tmp_path, org="Acme Corp"))
    orgs = {o["slug"]: o["name"] for o in fake.store.snapshot()["orgs"].values()}
    assert orgs == {"acme": "Acme", "acme-corp": "Acme Corp"}
    fake.clear_log()
    assert provision_project(request(fake, tmp_path, org="Acme")).org_slug == "acme"
    assert posts(fake) == []


def test_a_given_team_is_created_once_under_the_org(fake, tmp_path):
    first = provision_project(request(fake, tmp_path, team="backend"))
    assert first.team_slug == "backend" and "team backend" in first.created
    fake.clear_log()
    again = provision_project(request(fake, tmp_path, team="backend"))
    assert again.team_slug == "backend" and posts(fake) == []


def test_a_named_key_is_created_once_and_gives_its_own_dsn(fake, tmp_path):
    default = provision_project(request(fake, tmp_path))
    named = provision_project(request(fake, tmp_path, key_name="ci"))
    assert named.created == ["key ci"] and named.dsn != default.dsn
    fake.clear_log()
    again = provision_project(request(fake, tmp_path, key_name="ci"))
    assert again.dsn == named.dsn and posts(fake) == []
    # Without a key name, the oldest key (the project's default one) still wins.
    assert provision_project(request(fake, tmp_path)).dsn == default.dsn


def test_sentryclirc_is_written_with_the_server_and_the_dsn(fake, tmp_path):
    rc = tmp_path / ".sentryclirc"
    result = provision_project(request(fake, tmp_path, rc_path=rc, rc_format="sentryclirc"))
    assert rc.read_text() == (
        f"[defaults]\nurl = {fake.url}/\norg = acme-corp\nproject = web-app\n\n"
        f"[auth]\ndsn = {result.dsn}\n"
    )
    assert rc.stat().st_mode & 0o777 == 0o600


def test_no_rc_path_writes_no_file(fake, tmp_path):
    result = provision_project(request(fake, tmp_path, rc_path=None))
    assert result.rc_changed is False and result.rc_path is None
    assert not any(p.name.endswith("rc") for p in tmp_path.iterdir())


def test_result_as_dict_never_holds_the_token(fake, tmp_path):
    result = provision_project(request(fake, tmp_path))
    data = result.as_dict()
    assert data == {
        "org": "acme-corp",
        "team": "acme-corp",
        "project": "web-app",
        "dsn": result.dsn,
        "created": ["organization acme-corp", "team acme-corp", "project web-app"],
        "posts": 3,
        "token_source": "created",
        "rc_path": str(tmp_path / ".glitchtiprc"),
        "rc_changed": True,
    }
    assert read_env_file(tmp_path / ".env")[TOKEN_KEY] not in str(data)
    bare = ProjectResult("o", "t", "p", "d", [], 0, "given")
    assert bare.as_dict()["rc_path"] is None


# --- refusals before any request ---


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"url": "ftp://127.0.0.1:1"}, "must start with http:// or https://"),
        ({"url": "http://"}, "must start with http:// or https://"),
        ({"url": "http://127.0.0.1:port"}, "malformed (host or port)"),
        ({"url": "http://admin:hunter2@127.0.0.1:1"}, "must not contain a user or password"),
        ({"org": "   "}, "the organization name is empty"),
        ({"org": "!!!"}, "the organization name"),
        ({"org": ""}, "the organization name is empty"),
        ({"project": " "}, "the project name is empty"),
        ({"team": "back end"}, "team slug may contain only"),
        ({"team": ""}, "team slug may contain only"),
        ({"rc_format": "yaml"}, "unknown rc format 'yaml'"),
    ],
)
def test_bad_input_is_refused_before_any_request(fake, tmp_path, values, message):
    with pytest.raises(UsageError) as error:
        provision_project(request(fake, tmp_path, **values))
    assert message in error.value.line()
    assert "hunter2" not in error.value.line()
    assert fake.requests == [] and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Web App", "web-app"),
        ("  Héllo  Wörld! ", "hello-world"),
        ("a--b__c", "a-b__c"),
        ("_x_", "x"),
        ("-x-", "x"),
        ("Acme, Inc.", "acme-inc"),
        ("日本", ""),
        ("tab\tand\nnewline", "tab-and-newline"),
    ],
)
def test_slugify_matches_django(name, slug):
    assert slugify(name) == slug


# --- a scripted GlitchTip (httpx.MockTransport) for answers the fake never gives ---

KEY = "0123456789abcdef0123456789abcdef"


def scripted(keys: list[dict], whoami: tuple[int, dict] | None = None, **extra):
    """A transport answering the list calls for org `acme`, team `acme`, project `web`."""
    import httpx

    answers = {
        "/api/0/": whoami or (200, {"user": {"email": ADMIN}}),
        "/api/0/organizations/": (200, [{"slug": "acme", "name": "Acme"}]),
        "/api/0/organizations/acme/teams/": (200, [{"slug": "acme"}]),
        "/api/0/organizations/acme/projects/": (200, [{"slug": "web", "name": "Web"}]),
        "/api/0/projects/acme/web/keys/": (200, keys),
        **extra,
    }
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        status, body = answers[request.url.path]
        return httpx.Response(status, json=body)

    transport = httpx.MockTransport(handle)
    transport.seen = seen  # type: ignore[attr-defined]
    return transport


def scripted_request(tmp_path: Path, transport, **values) -> ProjectRequest:
    wanted = {
        "url": "http://glitchtip.test",
        "org": "Acme",
        "project": "Web",
        "token": "t" * 64,
        "env_path": None,
        "rc_path": tmp_path / ".glitchtiprc",
        "client_options": {"transport": transport, **FAST},
        **values,
    }
    return ProjectRequest(**wanted)


def test_a_key_without_a_public_dsn_is_an_api_error(tmp_path):
    transport = scripted([{"name": "default", "dateCreated": "2025", "dsn": {}}])
    with pytest.raises(ApiError) as error:
        provision_project(scripted_request(tmp_path, transport))
    assert error.value.line().startswith("GlitchTip's client key has no dsn.public")
    assert transport.seen[-1] == "GET /api/0/projects/acme/web/keys/"
    assert not (tmp_path / ".glitchtiprc").exists()


def test_a_malformed_dsn_from_glitchtip_is_refused_and_not_written(tmp_path):
    transport = scripted([{"name": "default", "dateCreated": "2025", "dsn": {"public": "x"}}])
    with pytest.raises(UsageError) as error:
        provision_project(scripted_request(tmp_path, transport))
    assert error.value.line().startswith(
        "the DSN GlitchTip returned is not a valid DSN: the scheme must be http or https"
    )
    assert not (tmp_path / ".glitchtiprc").exists()


def test_the_oldest_key_gives_the_dsn(tmp_path):
    keys = [
        {
            "name": "b",
            "dateCreated": "2025-02-01T00:00:00Z",
            "dsn": {"public": f"http://{KEY}@h/2"},
        },
        {
            "name": "a",
            "dateCreated": "2025-01-01T00:00:00Z",
            "dsn": {"public": f"http://{KEY}@h/1"},
        },
        {
            "name": "c",
            "dateCreated": "2025-03-01T00:00:00Z",
            "dsn": {"public": f"http://{KEY}@h/3"},
        },
    ]
    result = provision_project(scripted_request(tmp_path, scripted(keys)))
    assert result.dsn == f"http://{KEY}@h/1" and result.created == [] and result.posts == 0


def test_a_401_to_a_given_token_is_the_token_refusal(tmp_path):
    transport = scripted([], whoami=(401, {"detail": "Invalid token"}))
    with pytest.raises(ApiError) as error:
        provision_project(scripted_request(tmp_path, transport))
    assert error.value.line() == (
        "token rejected by GlitchTip (401): give a valid API token (--token / "
        "GLITCHTIP_API_TOKEN) or omit it to create one from the admin's e-mail and password"
    )
    assert error.value.status == 401 and transport.seen == ["GET /api/0/"]


def test_another_error_checking_the_token_is_not_taken_for_a_rejection(tmp_path):
    transport = scripted([], whoami=(403, {"detail": "forbidden"}))
    with pytest.raises(ApiError) as error:
        provision_project(scripted_request(tmp_path, transport))
    assert error.value.status == 403 and "token rejected" not in error.value.line()


def test_a_401_to_a_stored_token_mints_a_new_one(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text(f"{TOKEN_KEY}={'s' * 64}\n")
    minted = []

    def bootstrap(url, email, password, **options):
        minted.append((url, email, password, sorted(options)))
        return "n" * 64

    monkeypatch.setattr("provision.api.bootstrap.bootstrap_token", bootstrap)
    keys = [{"name": "d", "dateCreated": "1", "dsn": {"public": f"http://{KEY}@h/1"}}]
    transport = scripted(keys, whoami=(401, {"detail": "Invalid token"}))
    notes: list[str] = []
    request = scripted_request(
        tmp_path, transport, token=None, env_path=tmp_path / ".env", admin_email=ADMIN,
        admin_password=PASSWORD,
    )  # fmt: skip
    result = provision_project(request, progress=notes.append)
    assert result.token_source == "created" and result.dsn == f"http://{KEY}@h/1"
    assert minted == [("http://glitchtip.test", ADMIN, PASSWORD, ["retry", "transport"])]
    assert read_env_file(tmp_path / ".env")[TOKEN_KEY] == "n" * 64
    assert notes == [
        f"the token stored in {tmp_path / '.env'} was rejected; creating a new one",
        f"logging in as {ADMIN} to create an API token",
    ]


# --- objects found by exact slug, by name, or by the slug of the name ---


def rename(fake, table: str, old_slug: str, new_slug: str) -> None:
    with fake.store.transaction() as state:
        for item in state[table].values():
            if item.get("slug") == old_slug:
                item["slug"] = new_slug


def test_an_org_is_found_by_its_exact_slug_even_an_unusual_one(fake, tmp_path):
    provision_project(request(fake, tmp_path))
    rename(fake, "orgs", "acme-corp", "acme--corp")
    fake.clear_log()
    result = provision_project(request(fake, tmp_path, org="acme--corp", team="acme-corp"))
    assert result.org_slug == "acme--corp" and posts(fake) == []


def test_an_org_is_found_by_its_name_whatever_its_slug(fake, tmp_path):
    provision_project(request(fake, tmp_path))
    rename(fake, "orgs", "acme-corp", "renamed")
    fake.clear_log()
    result = provision_project(request(fake, tmp_path, team="acme-corp"))
    assert result.org_slug == "renamed" and posts(fake) == []


def test_a_project_is_found_by_its_exact_slug_or_its_name(fake, tmp_path):
    provision_project(request(fake, tmp_path))
    rename(fake, "projects", "web-app", "web--app")
    fake.clear_log()
    assert provision_project(request(fake, tmp_path, project="web--app")).project_slug == (
        "web--app"
    )
    assert provision_project(request(fake, tmp_path)).project_slug == "web--app"  # by name
    assert posts(fake) == []


def test_progress_says_what_is_created_and_the_platform_is_sent(fake, tmp_path):
    notes: list[str] = []
    provision_project(request(fake, tmp_path, platform="go"), progress=notes.append)
    assert notes == [
        f"logging in as {ADMIN} to create an API token",
        "creating organization 'Acme Corp'",
        "creating team 'acme-corp'",
        "creating project 'Web App' in team 'acme-corp'",
    ]
    assert [p["platform"] for p in fake.store.snapshot()["projects"].values()] == ["go"]
    with fake.store.transaction() as state:
        state["keys"].clear()  # a project whose keys were all deleted
    notes.clear()
    result = provision_project(request(fake, tmp_path), progress=notes.append)
    assert notes == ["creating client key 'default'"] and result.created == ["key default"]


# --- every refusal, word for word ---


@pytest.mark.parametrize(
    ("values", "line"),
    [
        (
            {"url": "http://127.0.0.1:port"},
            "the GlitchTip URL is malformed (host or port): e.g. --url http://127.0.0.1:8000",
        ),
        (
            {"url": "https:///x"},
            "the GlitchTip URL must start with http:// or https:// and name a host: "
            "e.g. --url http://127.0.0.1:8000",
        ),
        (
            {"url": "http://u:p@127.0.0.1:1"},
            "the GlitchTip URL must not contain a user or password: drop the part before '@' "
            "(e.g. --url http://127.0.0.1:8000); the kit logs in with a token",
        ),
        (
            {"org": "a" * 65},
            "the organization name is not 1-64 printable characters: "
            "give --org a shorter name, e.g. Acme",
        ),
        (
            {"project": "tab\there"},
            "the project name is not 1-64 printable characters: "
            "give --project a shorter name, e.g. Acme",
        ),
        (
            {"org": "!" * 30},
            f"the organization name {'!' * 20!r} has no letter or digit GlitchTip can make a slug "
            "(its URL name) from: give --org a name with ASCII letters or digits, e.g. --org Acme",
        ),
        (
            {"team": "Back End"},
            "the team slug may contain only letters, digits, '-' and '_': e.g. --team backend",
        ),
        ({"rc_format": "toml"}, "unknown rc format 'toml': use glitchtiprc or sentryclirc"),
        (
            {"key_name": "k" * 65},
            "the key name must be 1-64 printable characters: e.g. --key-name ci, or omit it",
        ),
        (
            {"key_name": "  "},
            "the key name must be 1-64 printable characters: e.g. --key-name ci, or omit it",
        ),
        (
            {"platform": "Python!"},
            "the platform 'Python!' is not a platform name: "
            "e.g. --platform python, javascript or node",
        ),
        (
            {"platform": "p" * 30 + "!"},
            f"the platform {'p' * 20!r} is not a platform name: "
            "e.g. --platform python, javascript or node",
        ),
        (
            {"client_options": {"timeout": 0}},
            "the timeout 0 is not a positive number of seconds: e.g. --timeout 10",
        ),
        (
            {"client_options": {"timeout": float("nan")}},
            "the timeout nan is not a positive number of seconds: e.g. --timeout 10",
        ),
        (
            {"client_options": {"timeout": "10"}},
            "the timeout '10' is not a positive number of seconds: e.g. --timeout 10",
        ),
    ],
)
def test_each_refusal_word_for_word(fake, tmp_path, values, line):
    with pytest.raises(UsageError) as error:
        provision_project(request(fake, tmp_path, **values))
    assert error.value.line() == line
    assert fake.requests == []


def test_the_edges_of_what_is_accepted(fake, tmp_path):
    result = provision_project(
        request(fake, tmp_path, org="o" * 64, project="p" * 64, key_name="k" * 64, team="T_1-x")
    )
    assert result.org_slug == "o" * 64 and result.created[-1] == "key " + "k" * 64
    fast = {"timeout": 0.5, **FAST}
    assert provision_project(request(fake, tmp_path, client_options=fast)).org_slug == "acme-corp"


def test_an_https_url_is_accepted(tmp_path):
    keys = [{"name": "d", "dateCreated": "1", "dsn": {"public": f"https://{KEY}@h/1"}}]
    transport = scripted(keys)
    result = provision_project(scripted_request(tmp_path, transport, url="https://glitchtip.test"))
    assert result.dsn == f"https://{KEY}@h/1" and transport.seen[0] == "GET /api/0/"


def test_a_given_token_that_cannot_be_a_header_is_refused_before_any_request(fake, tmp_path):
    """provision_project checks a given token before anything is asked of GlitchTip: one line
    naming where it came from and the fix, never the token, nothing sent, nothing written."""
    bad = "tok en\twith-control-0123456789"
    fake.clear_log()
    with pytest.raises(UsageError) as refused:
        provision_project(request(fake, tmp_path, token=bad, admin_password=None))
    assert refused.value.line() == (
        "the API token (--token / GLITCHTIP_API_TOKEN) has spaces, control or non-ASCII "
        "characters, or is too long; GlitchTip's tokens are letters and digits: copy the token "
        "again (Profile > Auth Tokens in GlitchTip)"
    )
    assert bad not in refused.value.line()
    assert fake.requests == [] and list(tmp_path.iterdir()) == []

"""A small GlitchTip world for the project exporter's tests: a fake with an admin, a token, an org
with projects, and events sent through each project's DSN like an SDK would.

The fake runs with uWSGI's manners (`keep_alive=False`: one request per connection) and a little
latency, as GlitchTip 5 does; events become visible only when its worker runs (`store`).
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from fakeglitchtip import ALL_SCOPES, create_api_token, create_superuser, model, process_pending

ADMIN = "admin@example.com"
ORG = "acme"


@dataclass
class World:
    """The fake, the admin's token, and each project's id and DSN key."""

    handle: object
    token: str
    projects: dict[str, tuple[int, str]] = field(default_factory=dict)

    def send_errors(self, slug: str, count: int = 1) -> None:
        """POST `count` error events to the project's store endpoint (the DSN path)."""
        project_id, key = self.projects[slug]
        for number in range(count):
            body = json.dumps({"message": f"boom {number}", "level": "error"}).encode()
            self._post(f"/api/{project_id}/store/?sentry_key={key}", body, "application/json")

    def send_transactions(self, slug: str, count: int = 1) -> None:
        """POST `count` transactions in envelopes, as sentry-sdk does."""
        project_id, key = self.projects[slug]
        for _ in range(count):
            lines = [
                json.dumps({"event_id": uuid.uuid4().hex}),
                json.dumps({"type": "transaction"}),
                json.dumps({"type": "transaction", "transaction": "GET /orders"}),
            ]
            self._post(
                f"/api/{project_id}/envelope/?sentry_key={key}",
                "\n".join(lines).encode(),
                "application/x-sentry-envelope",
            )

    def store(self) -> int:
        """Run GlitchTip's worker once: what was queued becomes events (and stats)."""
        return process_pending(self.handle.store, self.handle.queue)

    def add_project(self, slug: str) -> None:
        """Create another project in the org (and remember its id and key)."""
        with self.handle.store.transaction() as state:
            user = model.find_user(state, ADMIN)
            org = next(o for o in state["orgs"].values() if o["slug"] == ORG)
            team = model.org_teams(state, org["id"])[0]
            project = model.add_project(state, org, team, slug, "python", slug)
            key = model.project_keys(state, project["id"])[0]["uuid"].replace("-", "")
            self.projects[slug] = (project["id"], key)
            assert user is not None

    def _post(self, path: str, body: bytes, content_type: str) -> None:
        request = urllib.request.Request(
            self.handle.url + path, data=body, method="POST", headers={"Content-Type": content_type}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200


def make_world(handle, slugs=("web", "worker")) -> World:
    """An admin with a full-scope token, org `acme`, team `backend` and the projects `slugs`."""
    create_superuser(handle.store, ADMIN, "admin-Passw0rd-123")
    token = create_api_token(handle.store, ADMIN, list(ALL_SCOPES), "kit")
    with handle.store.transaction() as state:
        user = model.find_user(state, ADMIN)
        org = model.add_org(state, user, "Acme")
        model.add_team(state, org, "backend", user)
    world = World(handle, token)
    for slug in slugs:
        world.add_project(slug)
    return world


def write_config(directory: Path, url: str, token: str, **overrides) -> Path:
    """config.json (and the token file it names, mode 0600) as the kit renders them."""
    token_file = directory / "glitchtip_api_token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    config = {
        "api_url": url,
        "host_header": None,
        "organization": ORG,
        "poll_seconds": 60,
        "max_projects": 50,
        "listen_port": 9808,
        "token_file": str(token_file),
        "error_budgets": {"default": {"max_errors": 200, "per_seconds": 86400}},
    }
    config.update(overrides)
    path = directory / "config.json"
    path.write_text(json.dumps(config))
    return path

"""A Grafana stand-in for the Docker test tier: it checks the wiring, it renders nothing.

Grafana has no Debian or PyPI package, and no registry is reachable here, so the tier cannot run
the real thing. This program takes Grafana's place in the kit's compose.metrics.yml and proves
what the compose file can get wrong, reading the same environment variables and paths as the
official grafana/grafana image:

* ``GF_SECURITY_ADMIN_PASSWORD__FILE`` (or ``GF_SECURITY_ADMIN_PASSWORD``): the file must exist,
  be readable by this user (472, like the official image) and not be empty. Real Grafana falls
  back to the password ``admin`` when none is given; the stand-in refuses to start instead.
* ``GF_PATHS_PROVISIONING`` (``/etc/grafana/provisioning``): every ``datasources/*.y*ml`` and
  ``dashboards/*.y*ml`` must parse (with Grafana's ``$VAR``/``${VAR}``/``$__env{}``/``$__file{}``
  expansion), at most one datasource may be the default (Grafana refuses that too), every
  dashboard provider's ``options.path`` must be a directory, and every ``*.json`` below it must
  parse, carry a title, a uid of at most 40 characters used once, and name only provisioned
  datasources (by uid or name; ``$variables`` and Grafana's built-in ones pass). Real Grafana
  starts with a broken dashboard and shows empty panels; the stand-in refuses to start.
* ``GF_PATHS_DATA`` (``/var/lib/grafana``) must be writable (the volume's ownership).

Then it serves on ``GF_SERVER_HTTP_PORT`` (3000):
* ``GET /api/health`` -> ``{"commit", "database": "ok", "version"}`` like Grafana's Health API;
* ``GET /api/datasources`` (Admin: basic auth with the admin user and password) and
  ``GET /api/search`` (any signed-in user; anonymous only when ``GF_AUTH_ANONYMOUS_ENABLED`` is
  ``true``) list what was provisioned, in the shape of Grafana's HTTP API; 401 otherwise.

It never logs the admin password. Stdlib + PyYAML (Debian's python3-yaml) only.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import json
import os
import re
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

VERSION = os.environ.get("GRAFANA_STANDIN_VERSION", "0.0.0-standin")
BUILTIN_DATASOURCES = {"-- Grafana --", "grafana", "-- Mixed --", "-- Dashboard --", "__expr__"}
MAX_UID = 40  # Grafana refuses longer dashboard uids


class Refusal(Exception):
    """A wiring mistake: the stand-in prints it and exits 1, as Grafana does on bad provisioning."""


def log(message: str) -> None:
    print(f"grafana-standin: {message}", file=sys.stderr, flush=True)


def setting(name: str, default: str = "") -> str:
    """A GF_* setting, honouring Grafana's ``__FILE`` suffix (the value read from that file)."""
    path = os.environ.get(f"{name}__FILE", "")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise Refusal(f"{name}__FILE={path} cannot be read ({exc.strerror})") from None
    return os.environ.get(name, default)


def admin_password() -> str:
    if not (os.environ.get("GF_SECURITY_ADMIN_PASSWORD__FILE") or "GF_SECURITY_ADMIN_PASSWORD"
            in os.environ):  # fmt: skip
        raise Refusal(
            "no admin password: set GF_SECURITY_ADMIN_PASSWORD__FILE (real Grafana would "
            "start with the password 'admin')"
        )
    password = setting("GF_SECURITY_ADMIN_PASSWORD")
    if not password:
        raise Refusal("the admin password is empty")
    return password


_VAR = re.compile(r"\$__(env|file)\{([^}]*)\}|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_]\w*)")


def expand(text: str, source: Path) -> str:
    """Grafana's provisioning interpolation: $VAR, ${VAR}, $__env{VAR}, $__file{path}."""

    def one(match: re.Match) -> str:
        kind, arg, braced, bare = match.groups()
        if kind == "file":
            try:
                return Path(arg).read_text().strip()
            except OSError as exc:
                raise Refusal(
                    f"{source}: $__file{{{arg}}} cannot be read ({exc.strerror})"
                ) from None
        name = arg if kind == "env" else (braced or bare)
        return os.environ.get(name, "")

    return _VAR.sub(one, text)


def load_yaml_dir(directory: Path) -> list[tuple[Path, dict]]:
    documents = []
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        try:
            data = yaml.safe_load(expand(path.read_text(), path))
        except yaml.YAMLError as exc:
            raise Refusal(f"{path} does not parse as YAML: {exc}") from None
        except OSError as exc:
            raise Refusal(f"{path} cannot be read ({exc.strerror})") from None
        if not isinstance(data, dict):
            raise Refusal(f"{path} is not a YAML mapping")
        documents.append((path, data))
    return documents


def load_datasources(provisioning: Path) -> list[dict]:
    found: list[dict] = []
    for path, data in load_yaml_dir(provisioning / "datasources"):
        for item in data.get("datasources") or []:
            if not isinstance(item, dict) or not item.get("name") or not item.get("type"):
                raise Refusal(f"{path}: every datasource needs a name and a type")
            found.append({**item, "_file": str(path)})
    defaults = [d["name"] for d in found if d.get("isDefault")]
    if len(defaults) > 1:
        raise Refusal(f"only one datasource may be the default, not {defaults}")
    return found


def datasource_refs(node: object):
    """Every panel/target `datasource` value in a dashboard (rows and nested panels included)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource" and value is not None:
                yield value
            elif key != "templating":
                yield from datasource_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from datasource_refs(item)


def check_ref(ref: object, datasources: list[dict]) -> str | None:
    uids = {d.get("uid") for d in datasources if d.get("uid")}
    names = {d["name"] for d in datasources}
    if isinstance(ref, dict):
        uid = ref.get("uid")
        if uid is None or str(uid).startswith("$") or uid in BUILTIN_DATASOURCES or uid in uids:
            return None
        return f"datasource uid {uid!r} (provisioned: {sorted(uids)})"
    if isinstance(ref, str):
        if ref.startswith("$") or ref in BUILTIN_DATASOURCES or ref in names or ref in uids:
            return None
        return f"datasource {ref!r} (provisioned: {sorted(names)})"
    return f"datasource {ref!r} of an unknown shape"


def load_dashboards(provisioning: Path, datasources: list[dict]) -> list[dict]:
    dashboards: list[dict] = []
    seen: dict[str, Path] = {}
    for path, data in load_yaml_dir(provisioning / "dashboards"):
        for provider in data.get("providers") or []:
            if provider.get("type", "file") != "file":
                continue
            folder = Path(str((provider.get("options") or {}).get("path") or ""))
            if not folder.is_dir():
                raise Refusal(f"{path}: provider {provider.get('name')!r} path {folder} is missing")
            files = sorted(folder.rglob("*.json"))
            if not files:
                raise Refusal(f"{path}: provider {provider.get('name')!r}: no *.json in {folder}")
            for file in files:
                try:
                    board = json.loads(file.read_text())
                except (OSError, ValueError) as exc:
                    raise Refusal(f"{file} does not parse as JSON: {exc}") from None
                if not isinstance(board, dict) or not board.get("title"):
                    raise Refusal(f"{file}: a dashboard needs a title")
                uid = str(board.get("uid") or "")
                if len(uid) > MAX_UID:
                    raise Refusal(f"{file}: uid {uid!r} is longer than {MAX_UID} characters")
                if uid and uid in seen:
                    raise Refusal(f"{file}: uid {uid!r} is also used by {seen[uid]}")
                seen[uid] = file
                for ref in datasource_refs(board.get("panels") or []):
                    problem = check_ref(ref, datasources)
                    if problem:
                        raise Refusal(f"{file}: a panel names an unprovisioned {problem}")
                dashboards.append(
                    {"uid": uid, "title": board["title"], "tags": board.get("tags") or [],
                     "folderTitle": provider.get("folder") or "", "file": str(file)}
                )  # fmt: skip
    if not dashboards:
        raise Refusal(f"no dashboard provider in {provisioning / 'dashboards'}")
    return dashboards


class State:
    def __init__(self) -> None:
        self.user = setting("GF_SECURITY_ADMIN_USER", "admin")
        self.password = admin_password()
        self.anonymous = setting("GF_AUTH_ANONYMOUS_ENABLED", "false").lower() == "true"
        provisioning = Path(setting("GF_PATHS_PROVISIONING", "/etc/grafana/provisioning"))
        if not provisioning.is_dir():
            raise Refusal(f"the provisioning directory {provisioning} is missing")
        self.datasources = load_datasources(provisioning)
        if not self.datasources:
            raise Refusal(f"no datasource provisioned in {provisioning / 'datasources'}")
        self.dashboards = load_dashboards(provisioning, self.datasources)
        data = Path(setting("GF_PATHS_DATA", "/var/lib/grafana"))
        probe = data / ".standin-write-probe"
        try:
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise Refusal(f"the data directory {data} is not writable ({exc.strerror})") from None

    def role(self, header: str | None) -> str | None:
        """'Admin' for the admin's basic auth, 'Viewer' for anonymous when enabled, else None."""
        if header and header.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                return None
            ok = hmac.compare_digest(user, self.user) and hmac.compare_digest(
                password.encode(), self.password.encode()
            )
            return "Admin" if ok else None
        return "Viewer" if self.anonymous else None


def make_handler(state: State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "grafana-standin"

        def log_message(self, format: str, *args: object) -> None:
            log(f"{self.address_string()} {format % args}")

        def reply(self, status: int, body: object) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/")
            if path == "/api/health":
                self.reply(200, {"commit": "standin", "database": "ok", "version": VERSION})
                return
            if path not in ("/api/datasources", "/api/search"):
                self.reply(404, {"message": "Not found"})
                return
            role = state.role(self.headers.get("Authorization"))
            if role is None:
                self.reply(401, {"message": "Unauthorized"})
            elif path == "/api/search":
                self.reply(200, [
                    {"id": i + 1, "uid": d["uid"], "title": d["title"], "type": "dash-db",
                     "url": f"/d/{d['uid']}", "tags": d["tags"], "isStarred": False,
                     "folderTitle": d["folderTitle"]}
                    for i, d in enumerate(state.dashboards)
                ])  # fmt: skip
            elif role != "Admin":
                self.reply(403, {"message": "Permission denied"})
            else:
                self.reply(200, [
                    {"id": i + 1, "uid": d.get("uid", ""), "orgId": 1, "name": d["name"],
                     "type": d["type"], "access": d.get("access", "proxy"), "url": d.get("url", ""),
                     "isDefault": bool(d.get("isDefault")), "readOnly": True,
                     "jsonData": d.get("jsonData") or {}}
                    for i, d in enumerate(state.datasources)
                ])  # fmt: skip

    return Handler


def main() -> int:
    try:
        state = State()
    except Refusal as exc:
        log(f"ERROR: {exc}; refusing to start")
        return 1
    port = int(setting("GF_SERVER_HTTP_PORT", "3000"))
    address = setting("GF_SERVER_HTTP_ADDR", "")
    log(
        f"provisioned {len(state.datasources)} datasource(s) "
        f"({', '.join(d['name'] for d in state.datasources)}) and {len(state.dashboards)} "
        f"dashboard(s) ({', '.join(d['title'] for d in state.dashboards)}); anonymous "
        f"{'on' if state.anonymous else 'off'}; listening on {address or '0.0.0.0'}:{port}"
    )
    # PID 1 gets no default SIGTERM action: exit at once on `docker stop`, as Grafana does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = ThreadingHTTPServer((address, port), make_handler(state))
    server.daemon_threads = True
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Replay recorded GlitchTip exchanges against the fake and compare status and JSON shape.

The recordings are redacted (`<TOKEN>`, `<CSRF_TOKEN>`, ...) and come from three server states
(the main instance, one bootstrapped by INITIAL_USER_* env vars, and a fresh one), so the replay
runs each group against its own fake, in recorded order, and:
- binds a placeholder to the value the fake answered where the recording shows the placeholder,
  and substitutes it into later requests;
- keeps a cookie jar like the recording client's: explicit `Cookie` headers are rebuilt from the
  latest value of each named cookie, other requests carry the jar (deleted cookies dropped);
- maps slugs and ids that legitimately differ (GlitchTip's random org-slug suffixes, issue ids)
  onto the fake's values when they appear in later paths;
- runs the few steps that happened outside HTTP between recordings (createsuperuser, the worker).
"""

from __future__ import annotations

import http.client
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"
PLACEHOLDER = re.compile(r"<([A-Z0-9_]+)>")
COLLECTIONS = {"alerts", "monitors", "issues", "organizations", "teams", "projects", "keys"}


def fixture_order(name: str) -> tuple[int, str, str]:
    """Numeric order of the recordings (`15` before `15b` before `16`, `100` after `93`)."""
    match = re.match(r"(\d+)([a-z]?)_", name)
    assert match, name
    return int(match.group(1)), match.group(2), name


def load_fixtures() -> dict[str, dict]:
    """Every recorded exchange by file stem."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(FIXTURES.glob("*.json"))}


def shape_errors(expected: Any, actual: Any, where: str = "$") -> list[str]:
    """Differences in JSON shape: dict key sets recursively; list items against recorded items."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object, got {type(actual).__name__}"]
        errors = []
        if set(expected) != set(actual):
            missing = sorted(set(expected) - set(actual))
            extra = sorted(set(actual) - set(expected))
            errors.append(f"{where}: keys differ: missing {missing}, extra {extra}")
        for key in set(expected) & set(actual):
            errors += shape_errors(expected[key], actual[key], f"{where}.{key}")
        return errors
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{where}: expected a list, got {type(actual).__name__}"]
        if bool(expected) != bool(actual):
            return [f"{where}: expected {len(expected)} items, got {len(actual)}"]
        errors = []
        for index, item in enumerate(actual):
            attempts = [shape_errors(e, item, f"{where}[{index}]") for e in expected]
            if all(attempts):
                errors += min(attempts, key=len)
        return errors
    if expected is not None and isinstance(actual, dict | list):
        return [f"{where}: expected a scalar, got {type(actual).__name__}"]
    return []


@dataclass
class Replayer:
    """Sends recorded requests to one fake, tracking placeholders, cookies and aliases."""

    host: str
    port: int
    bindings: dict[str, str] = field(default_factory=dict)
    jar: dict[str, str] = field(default_factory=dict)
    last_seen: dict[str, str] = field(default_factory=dict)
    slug_aliases: dict[str, str] = field(default_factory=dict)
    id_aliases: dict[tuple[str, str], str] = field(default_factory=dict)

    def substitute(self, text: str) -> str:
        return PLACEHOLDER.sub(lambda m: self.bindings.get(m.group(1), m.group(0)), text)

    def _deep(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.substitute(value)
        if isinstance(value, list):
            return [self._deep(v) for v in value]
        if isinstance(value, dict):
            return {k: self._deep(v) for k, v in value.items()}
        return value

    def _path(self, path: str) -> str:
        base, sep, query = self.substitute(path).partition("?")
        parts = base.split("/")
        for index, part in enumerate(parts):
            if part in self.slug_aliases:
                parts[index] = self.slug_aliases[part]
            elif index and (parts[index - 1], part) in self.id_aliases:
                parts[index] = self.id_aliases[(parts[index - 1], part)]
        return "/".join(parts) + sep + query

    def request(self, method: str, path: str, headers=None, body: bytes | None = None):
        """One raw request; applies Set-Cookie to the jar. Returns (status, headers, body)."""
        connection = http.client.HTTPConnection(self.host, self.port, timeout=15)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            payload = response.read()
            for header in response.headers.get_all("Set-Cookie") or []:
                pair = header.split(";", 1)[0]
                name, _, value = pair.partition("=")
                if value in ("", '""') or "max-age=0" in header.lower():
                    self.jar.pop(name, None)
                else:
                    self.jar[name] = value
                    self.last_seen[name] = value
            return response.status, response.headers, payload
        finally:
            connection.close()

    def send(self, fixture: dict) -> tuple[int, Any, bytes]:
        """Replay a recorded request with placeholders, cookies and aliases resolved."""
        recorded = fixture["request"]
        headers: dict[str, str] = {}
        wants_csrf = any(k.lower() == "x-csrftoken" for k in recorded.get("headers", {}))
        if wants_csrf and "csrftoken" not in self.last_seen:
            self.request("GET", "/_allauth/browser/v1/config")  # as the recorder did first
        for name, value in recorded.get("headers", {}).items():
            lower = name.lower()
            if lower == "cookie":
                names = [p.split("=", 1)[0].strip() for p in value.split(";") if p.strip()]
                value = "; ".join(f"{n}={self.last_seen[n]}" for n in names if n in self.last_seen)
                if not value:
                    continue
            elif lower == "x-csrftoken":
                value = self.last_seen.get("csrftoken", "")
            else:
                value = self.substitute(value)
            headers[name] = value
        explicit = any(k.lower() == "cookie" for k in recorded.get("headers", {}))
        if self.jar and not explicit:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        body = None
        if "json" in recorded:
            body = json.dumps(self._deep(recorded["json"])).encode()
            headers.setdefault("Content-Type", "application/json")
        elif "body_text" in recorded:
            body = self.substitute(recorded["body_text"]).encode()
        return self.request(recorded["method"], self._path(recorded["path"]), headers, body)

    def learn(self, fixture: dict, actual: Any) -> None:
        """Bind placeholders and record slug/id aliases from a response's recorded form."""
        expected = fixture["response"].get("json")
        exact: dict[str, str] = {}
        embedded: dict[str, str] = {}
        self._bind(expected, actual, exact, embedded)
        for name, value in {**embedded, **exact}.items():
            self.bindings.setdefault(name, value)
        words = [w for w in fixture["request"]["path"].split("?")[0].split("/") if w]
        collection = next((w for w in reversed(words) if w in COLLECTIONS), None)
        roots = (
            list(zip(expected, actual, strict=False))
            if isinstance(expected, list) and isinstance(actual, list)
            else [(expected, actual)]
        )
        for want, got in roots:
            if not (isinstance(want, dict) and isinstance(got, dict)):
                continue
            slugs = want.get("slug"), got.get("slug")
            if all(isinstance(s, str) for s in slugs) and slugs[0] != slugs[1]:
                self.slug_aliases[want["slug"]] = got["slug"]
            if collection and "id" in want and "id" in got and str(want["id"]) != str(got["id"]):
                self.id_aliases[(collection, str(want["id"]))] = str(got["id"])

    def _bind(self, expected: Any, actual: Any, exact: dict, embedded: dict) -> None:
        if isinstance(expected, str) and isinstance(actual, str) and "<" in expected:
            names = PLACEHOLDER.findall(expected)
            if not names:
                return
            if PLACEHOLDER.fullmatch(expected):
                exact.setdefault(names[0], actual)
                return
            pattern = "".join(
                "(.+?)" if i % 2 else re.escape(p)
                for i, p in enumerate(PLACEHOLDER.split(expected))
            )
            match = re.fullmatch(pattern, actual)
            if match:
                for name, value in zip(names, match.groups(), strict=True):
                    embedded.setdefault(name, value)
        elif isinstance(expected, dict) and isinstance(actual, dict):
            for key in expected.keys() & actual.keys():
                self._bind(expected[key], actual[key], exact, embedded)
        elif isinstance(expected, list) and isinstance(actual, list):
            for want, got in zip(expected, actual, strict=False):
                self._bind(want, got, exact, embedded)

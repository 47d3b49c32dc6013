"""Send recorded requests to a fake GlitchTip, tracking placeholders, cookies and aliases.

The recordings are redacted and come from several server states, so a replay:
- binds a placeholder to the value the fake answered where the recording shows the placeholder,
  and substitutes it into later requests (and into the comparison of later answers);
- keeps a cookie jar like the recording client's: explicit `Cookie` headers are rebuilt from the
  latest value of each named cookie, other requests carry the jar (deleted cookies dropped);
- maps slugs and ids that legitimately differ (GlitchTip's random org-slug suffixes, issue ids)
  onto the fake's values when they appear in later paths.

A `Replayer` talks to a fake through a transport: `AppTransport` calls the application in
process (a fresh fake per recording costs nothing), `HttpTransport` goes over a real socket.
"""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from compare import PLACEHOLDER, form_of
from fakeglitchtip import FakeGlitchTip, Request

COLLECTIONS = {"alerts", "monitors", "issues", "organizations", "teams", "projects", "keys"}
# Ids that legitimately differ: the recorded server held issues from earlier runs.
FOREIGN_IDS = {"issues"}
SUFFIXED = re.compile(r"(.+)-[a-z0-9]{2}")


def random_suffix(recorded: str, actual: str) -> bool:
    """Both slugs carry GlitchTip's random two-character suffix on the same base (a taken org
    name, NOTES.md §3): the one difference a replay cannot reproduce."""
    want, got = SUFFIXED.fullmatch(recorded), SUFFIXED.fullmatch(actual)
    return bool(want and got and want.group(1) == got.group(1) and recorded != actual)


Headers = list[tuple[str, str]]
Answer = tuple[int, Headers, bytes]


@dataclass
class AppTransport:
    """Calls `FakeGlitchTip.handle` directly; `host` is the Host the recording client sent."""

    app: FakeGlitchTip
    host: str

    def __call__(self, method: str, path: str, headers: dict[str, str], body: bytes | None):
        lowered = {k.lower(): v for k, v in headers.items()}
        lowered.setdefault("host", self.host)
        response = self.app.handle(Request(method, path, lowered, body or b""))
        return response.status, list(response.headers), response.body


@dataclass
class HttpTransport:
    """One request per connection over a real socket (as the recording client did)."""

    host: str
    port: int
    host_header: str

    def __call__(self, method: str, path: str, headers: dict[str, str], body: bytes | None):
        connection = http.client.HTTPConnection(self.host, self.port, timeout=15)
        try:
            if not any(k.lower() == "host" for k in headers):
                headers = {"Host": self.host_header, **headers}
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, list(response.getheaders()), response.read()
        finally:
            connection.close()


@dataclass
class Replayer:
    """Replays recordings through `transport`; its state is plain data (deep-copyable)."""

    transport: Callable[[str, str, dict[str, str], bytes | None], Answer] | None = None
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

    def request(self, method: str, path: str, headers=None, body: bytes | None = None) -> Answer:
        """One raw request; applies Set-Cookie to the jar."""
        assert self.transport is not None, "a Replayer needs a transport"
        status, answer_headers, payload = self.transport(method, path, headers or {}, body)
        for name, value in answer_headers:
            if name.lower() != "set-cookie":
                continue
            cookie, _, cookie_value = value.split(";", 1)[0].partition("=")
            if cookie_value in ("", '""') or "max-age=0" in value.lower():
                self.jar.pop(cookie, None)
            else:
                self.jar[cookie] = cookie_value
                self.last_seen[cookie] = cookie_value
        return status, answer_headers, payload

    def send(self, fixture: dict) -> Answer:
        """Replay a recorded request with placeholders, cookies and aliases resolved."""
        recorded = fixture["request"]
        headers: dict[str, str] = {}
        wants_csrf = any(k.lower() == "x-csrftoken" for k in recorded.get("headers", {}))
        if wants_csrf and "csrftoken" not in self.last_seen:
            self.request("GET", "/_allauth/browser/v1/config")  # as the recorder did first
        for name, value in recorded.get("headers", {}).items():
            lower = name.lower()
            if lower == "cookie":
                # The recording shows the cookies passed by hand; the client's jar (live
                # cookies) went along too, as a logged-in logout that deletes `sessionid` shows.
                names = [p.split("=", 1)[0].strip() for p in value.split(";") if p.strip()]
                names += [n for n in self.jar if n not in names]
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
            if all(isinstance(s, str) for s in slugs) and random_suffix(*slugs):
                self.slug_aliases[want["slug"]] = got["slug"]
            ids = str(want.get("id")), str(got.get("id"))
            if collection in FOREIGN_IDS and "id" in want and "id" in got and ids[0] != ids[1]:
                self.id_aliases[(collection, ids[0])] = ids[1]

    def _bind(self, expected: Any, actual: Any, exact: dict, embedded: dict) -> None:
        if isinstance(expected, str) and isinstance(actual, str) and "<" in expected:
            names = PLACEHOLDER.findall(expected)
            if not names:
                return
            if PLACEHOLDER.fullmatch(expected):
                if re.fullmatch(form_of(names[0]), actual):  # a malformed value binds nothing
                    exact.setdefault(names[0], actual)
                return
            pattern = "".join(
                "(.+?)" if i % 2 else re.escape(p)
                for i, p in enumerate(PLACEHOLDER.split(expected))
            )
            match = re.fullmatch(pattern, actual)
            if match:
                for name, value in zip(names, match.groups(), strict=True):
                    if re.fullmatch(form_of(name), value):
                        embedded.setdefault(name, value)
        elif isinstance(expected, dict) and isinstance(actual, dict):
            for key in expected.keys() & actual.keys():
                self._bind(expected[key], actual[key], exact, embedded)
        elif isinstance(expected, list) and isinstance(actual, list):
            for want, got in zip(expected, actual, strict=False):
                self._bind(want, got, exact, embedded)

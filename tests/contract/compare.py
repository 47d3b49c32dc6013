"""Compare a fake's answer with a recorded one: JSON keys, value types, the values the kit reads,
content types, and the headers and cookie attributes the kit depends on.

Recorded values are redacted (`<TOKEN>`, `<PUBLIC_KEY>`, ...). A placeholder that the replay has
bound to the fake's value must reappear as exactly that value (the dashed and the 32-hex forms of
a key are the same key); one not bound yet must at least have the recorded form, so a fake that
answers `dsn.public = "not-a-dsn"` fails.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

PLACEHOLDER = re.compile(r"<([A-Z0-9_]+)>")
HEX32 = r"[0-9a-f]{32}"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
# The recorded form of each kind of placeholder (what GlitchTip really sends there).
FORMS = (
    (re.compile(r"PUBLIC_KEY(_\d+)?"), f"(?:{UUID}|{HEX32})"),
    (re.compile(r"HEARTBEAT_ENDPOINT_ID"), UUID),
    (re.compile(r"(CSRF_TOKEN|SESSION_ID|INVITE_TOKEN.*)"), r"[^\s;]+"),
    (re.compile(r".*TOKEN"), r"[0-9a-f]{64}"),
)
# Keys whose values the kit (or an operator following NOTES.md) reads: compared exactly.
VALUE_KEYS = {
    "slug",
    "id",
    "scopes",
    "token",
    "projectID",
    "detail",
    "dsn",
    "public",
    "secret",
    "security",
    "name",
    "label",
    "platform",
    "isSuperuser",
    "is_authenticated",
    "errors",
    "code",
    "param",
    "isMember",
    "status",
}
# Inside these keys every scalar is compared (error details, DSNs, scope lists).
VALUE_SUBTREES = {"detail", "dsn", "scopes", "errors", "access"}
# Lists GlitchTip builds from a Python set: their order changes from one answer to the next.
UNORDERED = {"access"}


def form_of(name: str) -> str:
    """The regex a placeholder's real value has (its recorded form)."""
    for pattern, form in FORMS:
        if pattern.fullmatch(name):
            return form
    return r".+"


def _variants(value: str) -> list[str]:
    """A bound key in both of GlitchTip's spellings (dashed UUID in `public`, hex in the DSN)."""
    plain = value.replace("-", "")
    variants = {value, plain}
    if re.fullmatch(HEX32, plain):
        variants.add(f"{plain[:8]}-{plain[8:12]}-{plain[12:16]}-{plain[16:20]}-{plain[20:]}")
    return sorted(variants, key=len, reverse=True)


def placeholder_pattern(expected: str, bindings: dict[str, str]) -> re.Pattern[str]:
    """A regex for a recorded string: bound placeholders exact, unbound ones by their form."""
    parts = PLACEHOLDER.split(expected)
    regex = []
    for index, part in enumerate(parts):
        if index % 2 == 0:
            regex.append(re.escape(part))
        elif part in bindings:
            regex.append("(?:" + "|".join(re.escape(v) for v in _variants(bindings[part])) + ")")
        else:
            regex.append(form_of(part))
    return re.compile("".join(regex), re.DOTALL)


def kind(value: Any) -> str:
    """The JSON type of a value (bool is not a number; int and float differ in GlitchTip)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object"


def json_errors(
    expected: Any,
    actual: Any,
    bindings: dict[str, str],
    where: str = "$",
    *,
    values: bool = False,
    aliases: dict[str, str] | None = None,
) -> list[str]:
    """Differences in keys (recursively), value types, list lengths and the values the kit reads.

    `aliases` maps recorded slugs that legitimately differ (GlitchTip's random suffix on a taken
    org name) to the fake's; they apply to `slug` values only.
    """
    aliases = aliases or {}
    if isinstance(expected, str) and where.rsplit(".", 1)[-1] == "slug":
        expected = aliases.get(expected, expected)
    want, got = kind(expected), kind(actual)
    if want != got:
        return [f"{where}: type {got} ({_short(actual)}), recorded {want} ({_short(expected)})"]
    if want == "object":
        errors = []
        if set(expected) != set(actual):
            missing = sorted(set(expected) - set(actual))
            extra = sorted(set(actual) - set(expected))
            errors.append(f"{where}: keys differ: missing {missing}, extra {extra}")
        for key in sorted(set(expected) & set(actual)):
            errors += json_errors(
                expected[key],
                actual[key],
                bindings,
                f"{where}.{key}",
                values=values or key in VALUE_SUBTREES or key in VALUE_KEYS,
                aliases=aliases,
            )
        return errors
    if want == "list":
        if where.rsplit(".", 1)[-1] in UNORDERED:
            expected, actual = sorted(expected, key=repr), sorted(actual, key=repr)
        if len(expected) != len(actual):
            return [f"{where}: {len(actual)} items, recorded {len(expected)}"]
        errors = []
        for index, (e, a) in enumerate(zip(expected, actual, strict=True)):
            errors += json_errors(
                e, a, bindings, f"{where}[{index}]", values=values, aliases=aliases
            )
        return errors
    if want == "string" and PLACEHOLDER.search(expected):
        if not placeholder_pattern(expected, bindings).fullmatch(actual):
            return [f"{where}: {_short(actual)} does not have the recorded form {expected!r}"]
        return []
    if values and expected != actual:
        return [f"{where}: value {_short(actual)}, recorded {_short(expected)}"]
    return []


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- headers -------------------------------------------------------------------------------------


def header_values(headers: Iterable[tuple[str, str]], name: str) -> list[str]:
    """Every value of a header (case-insensitive name), in order."""
    return [v for k, v in headers if k.lower() == name.lower()]


def _content_type(value: str) -> str:
    return "; ".join(p.strip().lower() for p in value.split(";") if p.strip())


def parse_link(value: str) -> list[dict[str, str]] | None:
    """GlitchTip's malformed Link (a Python set repr `{'...'}`) as a list of links; None if the
    wrapper is missing (the kit's parser expects it, recorded bug NOTES.md §3)."""
    if not (value.startswith("{'") and value.endswith("'}")):
        return None
    links = []
    for part in re.split(r",\s*(?=<)", value[2:-2]):
        match = re.match(r"<([^>]*)>(.*)", part.strip())
        if match is None:
            return None
        link = {"url": match.group(1)}
        for attribute in match.group(2).split(";"):
            name, _, raw = attribute.strip().partition("=")
            if name:
                link[name] = raw.strip('"')
        links.append(link)
    return links


def _link_errors(recorded: str, actual: list[str]) -> list[str]:
    if not actual:
        return ["Link: missing, recorded " + _short(recorded)]
    want, got = parse_link(recorded), parse_link(actual[0])
    if got is None:
        return [f"Link: {_short(actual[0])} is not the recorded set-repr form"]
    assert want is not None, recorded
    errors = []
    if [link.get("rel") for link in got] != [link.get("rel") for link in want]:
        return [f"Link: rels {[link.get('rel') for link in got]}, recorded {want}"]
    for w, g in zip(want, got, strict=True):
        rel = w.get("rel")
        if g.get("results") != w.get("results"):
            errors.append(f"Link {rel}: results={g.get('results')}, recorded {w.get('results')}")
        if ("cursor" in g) != ("cursor" in w):
            errors.append(f"Link {rel}: cursor {'present' if 'cursor' in g else 'absent'}")
        if _link_target(g["url"]) != _link_target(w["url"]):
            errors.append(f"Link {rel}: url {g['url']}, recorded {w['url']}")
    return errors


def _link_target(url: str) -> tuple[str, str, frozenset]:
    parts = urlsplit(url)
    query = frozenset((k, v) for k, v in parse_qsl(parts.query) if k != "cursor")
    return parts.netloc, parts.path, query


def parse_cookie(header: str) -> tuple[str, str, dict[str, str]]:
    """A Set-Cookie header as (name, value, attributes with lower-case names)."""
    pair, *attributes = header.split(";")
    name, _, value = pair.strip().partition("=")
    parsed = {}
    for attribute in attributes:
        key, _, raw = attribute.strip().partition("=")
        if key:
            parsed[key.lower()] = raw
    return name, value, parsed


COOKIE_VALUED = ("max-age", "path", "samesite")
COOKIE_FLAGS = ("httponly", "secure", "expires")


def cookie_errors(recorded: list[str], actual: list[str], *, secure: bool = False) -> list[str]:
    """Same cookie names; same HttpOnly, Max-Age, Path, SameSite, expires; Secure iff https."""
    want = {parse_cookie(h)[0]: parse_cookie(h) for h in recorded}
    got = {parse_cookie(h)[0]: parse_cookie(h) for h in actual}
    if set(want) != set(got):
        return [f"Set-Cookie: names {sorted(got)}, recorded {sorted(want)}"]
    errors = []
    for name, (_, value, attributes) in want.items():
        _, actual_value, actual_attributes = got[name]
        if not actual_value and actual_attributes.get("max-age") != "0":
            errors.append(f"Set-Cookie {name}: empty value")
        # A deleted cookie is recorded with its value redacted: Max-Age=0 is what marks it.
        deleted = actual_attributes.get("max-age") == "0"
        if deleted and actual_value not in ("", '""'):
            errors.append(f"Set-Cookie {name}: deleted with a value {actual_value!r}")
        if not deleted and not PLACEHOLDER.fullmatch(value) and value != actual_value:
            errors.append(f"Set-Cookie {name}: value {actual_value!r}, recorded {value!r}")
        for key in COOKIE_VALUED:
            if attributes.get(key) != actual_attributes.get(key):
                errors.append(
                    f"Set-Cookie {name}: {key}={actual_attributes.get(key)}, "
                    f"recorded {attributes.get(key)}"
                )
        for key in COOKIE_FLAGS:
            expected_flag = (key in attributes) or (key == "secure" and secure)
            if expected_flag != (key in actual_attributes):
                errors.append(
                    f"Set-Cookie {name}: {key} {'set' if key in actual_attributes else 'missing'}"
                )
    return errors


def header_errors(
    recorded: dict[str, Any], actual: list[tuple[str, str]], *, secure: bool = False
) -> list[str]:
    """Differences in the headers the kit depends on (those the recording shows)."""
    errors = []
    for name, value in recorded.items():
        lower = name.lower()
        got = header_values(actual, lower)
        if lower == "content-type":
            if not got or _content_type(got[0]) != _content_type(value):
                errors.append(f"Content-Type: {got}, recorded {value!r}")
        elif lower == "link":
            errors += _link_errors(value, got)
        elif lower == "set-cookie":
            errors += cookie_errors(
                value if isinstance(value, list) else [value], got, secure=secure
            )
        elif got != [value]:
            errors.append(f"{name}: {got}, recorded {value!r}")
    return errors

"""The requests real SDKs send to GlitchTip's ingest endpoints (stdlib only).

This module runs in two places: in the Locust container, beside `locustfile.py` (no kit, no
third-party packages there), and in the kit's fast tests, which post every kind to the fake
GlitchTip and check what its worker stored. The shapes follow sentry-sdk 2.x (python, gzip
envelopes; `sentry_sdk.envelope` writes the same header/item-header/payload lines) and the
browser SDK (uncompressed envelopes with `dsn` and `sdk` in the envelope header), checked
against the recorded ingest exchanges (contract fixtures 100-104):

- `POST /api/<project>/envelope/`, `Content-Type: application/x-sentry-envelope`,
  `X-Sentry-Auth: Sentry sentry_key=<key>, sentry_version=7, sentry_client=<sdk>/<version>`;
  body = envelope header line, item header line (`type`, `content_type`, `length`), payload line.
- `POST /api/<project>/store/` (the legacy endpoint): one JSON event, same auth header.

Grouping is exercised on purpose: error events come from `distinct_issues` signatures (exception
type, value, culprit and stack), messages from a fixed set of log lines, so the number of issues
stays bounded however long the load runs.
"""

from __future__ import annotations

import gzip
import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

SDK_PYTHON = ("sentry.python", "2.75.0")
SDK_BROWSER = ("sentry.javascript.browser", "9.40.0")

# What one request sends, by kind; the Locust user picks kinds by these weights.
KINDS = ("error_gzip", "error_plain", "message", "transaction", "store")
MIX = {"error_gzip": 50, "error_plain": 15, "message": 10, "transaction": 20, "store": 5}

MESSAGES = (
    "Payment provider answered slowly",
    "Cache miss ratio above threshold",
    "Retrying webhook delivery",
    "User session expired during checkout",
    "Disk almost full on /var/lib/app",
    "Feature flag evaluation fell back to default",
    "Background job exceeded its soft time limit",
    "Deprecated API version requested",
)

TRANSACTIONS = (
    ("GET /orders", "http.server"),
    ("GET /orders/{id}", "http.server"),
    ("POST /checkout", "http.server"),
    ("GET /api/products", "http.server"),
    ("POST /api/cart/items", "http.server"),
    ("tasks.send_invoice", "queue.task.celery"),
    ("tasks.rebuild_search_index", "queue.task.celery"),
    ("GET /health", "http.server"),
)

_EXCEPTIONS = (
    ("KeyError", "'{name}'"),
    ("ValueError", "invalid literal for int() with base 10: '{name}'"),
    ("TypeError", "unsupported operand type(s) for +: 'int' and 'NoneType' in {name}"),
    ("ZeroDivisionError", "division by zero in {name}"),
    ("ConnectionError", "connection to {name}.internal:5432 refused"),
    ("TimeoutError", "timed out waiting for {name}"),
    ("PermissionError", "[Errno 13] Permission denied: '/srv/app/{name}.lock'"),
    ("AttributeError", "'NoneType' object has no attribute '{name}'"),
)
_MODULES = ("orders", "billing", "catalog", "accounts", "search", "shipping", "reports", "auth")
_JS_ERRORS = (
    ("TypeError", "Cannot read properties of undefined (reading '{name}')"),
    ("ReferenceError", "{name} is not defined"),
    ("Error", "Request failed with status code 500 ({name})"),
)


@dataclass(frozen=True)
class Dsn:
    """The parts of a DSN an SDK uses: public key and project id (the host is the target's)."""

    public_key: str
    project_id: str

    @classmethod
    def parse(cls, dsn: str) -> Dsn:
        """Parse `scheme://key@host[:port][/path]/project_id`; ValueError when malformed."""
        parts = urlsplit(dsn.strip())
        project_id = parts.path.rstrip("/").rpartition("/")[2]
        if parts.scheme not in ("http", "https") or not parts.username or not project_id.isdigit():
            raise ValueError("a DSN looks like http://<public key>@host/<project id>")
        return cls(parts.username, project_id)


@dataclass(frozen=True)
class IngestRequest:
    """One HTTP request as an SDK would send it, and what it carries."""

    kind: str
    path: str
    headers: dict[str, str]
    body: bytes
    event_id: str
    item_type: str  # "event" or "transaction"
    title: str | None  # the issue title GlitchTip shows for an event; None for transactions


def auth_header(public_key: str, client: tuple[str, str]) -> str:
    """`X-Sentry-Auth` as sentry-sdk writes it (`sentry_sdk.utils.Auth.to_header`)."""
    name, version = client
    return f"Sentry sentry_key={public_key}, sentry_version=7, sentry_client={name}/{version}"


def iso(moment: datetime) -> str:
    """A timestamp as sentry-sdk writes it (UTC, microseconds, `Z`)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _sdk(client: tuple[str, str]) -> dict:
    name, version = client
    package = "pypi:sentry-sdk" if name == "sentry.python" else "npm:@sentry/browser"
    return {"name": name, "version": version, "packages": [{"name": package, "version": version}]}


def issue_signature(index: int) -> tuple[str, str, str, str]:
    """(exception type, value, module, function) of error issue number `index`."""
    kind, template = _EXCEPTIONS[index % len(_EXCEPTIONS)]
    module = _MODULES[(index // len(_EXCEPTIONS)) % len(_MODULES)]
    name = f"{module}_{index}"
    return kind, template.format(name=name), f"app.{module}.views", f"handle_{name}"


def _python_frames(module: str, function: str, rng: random.Random) -> list[dict]:
    """Several frames, outermost first (the SDK's order): framework, then in-app code."""
    path = module.replace(".", "/")
    frames = [
        {
            "filename": "django/core/handlers/exception.py",
            "abs_path": "/usr/local/lib/python3.13/site-packages/django/core/handlers/exception.py",
            "function": "inner",
            "module": "django.core.handlers.exception",
            "lineno": 55,
            "pre_context": ["    @wraps(get_response)", "    def inner(request):", "        try:"],
            "context_line": "            response = get_response(request)",
            "post_context": ["        except Exception as exc:", "            response = ..."],
            "in_app": False,
        },
        {
            "filename": "django/core/handlers/base.py",
            "abs_path": "/usr/local/lib/python3.13/site-packages/django/core/handlers/base.py",
            "function": "_get_response",
            "module": "django.core.handlers.base",
            "lineno": 197,
            "pre_context": ["        if response is None:", "            wrapped = ..."],
            "context_line": "                response = wrapped_callback(request, *args, **kwargs)",
            "post_context": ["            except Exception as e:"],
            "in_app": False,
        },
    ]
    for depth, (suffix, line) in enumerate(
        (("views", 42), ("services", 118), ("repository", 77), ("models", 23))
    ):
        name = function if depth == 0 else f"{function}_{suffix}"
        frames.append(
            {
                "filename": f"{path}/{suffix}.py",
                "abs_path": f"/srv/app/{path}/{suffix}.py",
                "function": name,
                "module": f"{module}.{suffix}",
                "lineno": line + depth,
                "pre_context": [f"def {name}(request, pk):", "    order = load(pk)"],
                "context_line": f"    return {suffix}_step(order, request.user)",
                "post_context": ["", ""],
                "vars": {"pk": str(rng.randint(1, 10_000)), "request": "<WSGIRequest: GET>"},
                "in_app": True,
            }
        )
    return frames


def error_event(index: int, rng: random.Random, now: datetime) -> dict:
    """A python error event as sentry-sdk sends it for `capture_exception()`."""
    kind, value, module, function = issue_signature(index)
    trace_id = uuid.UUID(int=rng.getrandbits(128)).hex
    return {
        "event_id": uuid.UUID(int=rng.getrandbits(128)).hex,
        "timestamp": iso(now),
        "platform": "python",
        "level": "error",
        "exception": {
            "values": [
                {
                    "type": kind,
                    "value": value,
                    "module": None,
                    "mechanism": {"type": "django", "handled": False},
                    "stacktrace": {"frames": _python_frames(module, function, rng)},
                }
            ]
        },
        "transaction": f"/{module.split('.')[1]}/<int:pk>/",
        "contexts": {
            "trace": {"trace_id": trace_id, "span_id": trace_id[:16], "parent_span_id": None},
            "runtime": {"name": "CPython", "version": "3.13.5"},
        },
        "breadcrumbs": {
            "values": [
                {
                    "timestamp": iso(now - timedelta(milliseconds=40)),
                    "category": "query",
                    "message": 'SELECT "orders_order"."id" FROM "orders_order" WHERE id = %s',
                    "type": "default",
                    "level": "info",
                }
            ]
        },
        "request": {
            "url": f"https://shop.example.com/{module.split('.')[1]}/{rng.randint(1, 999)}/",
            "method": "GET",
            "headers": {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"},
        },
        "tags": {"load_test": "glitchtip-kit"},
        "release": "shop@1.4.2",
        "environment": "loadtest",
        "server_name": f"web-{rng.randint(1, 4)}",
        "sdk": _sdk(SDK_PYTHON),
    }


def browser_error_event(index: int, rng: random.Random, now: datetime) -> dict:
    """A javascript error event as the browser SDK sends it (no context lines, minified)."""
    kind, template = _JS_ERRORS[index % len(_JS_ERRORS)]
    name = f"{_MODULES[index % len(_MODULES)]}_{index}"
    frames = [
        {
            "filename": f"https://shop.example.com/static/js/{chunk}.js",
            "function": function,
            "lineno": 1,
            "colno": 1000 + 17 * position,
            "in_app": True,
        }
        for position, (chunk, function) in enumerate(
            (
                ("vendor.3f2a", "HTMLButtonElement.onclick"),
                ("main.9c1d", "submitOrder"),
                ("main.9c1d", f"render_{name}"),
            )
        )
    ]
    return {
        "event_id": uuid.UUID(int=rng.getrandbits(128)).hex,
        "timestamp": iso(now),
        "platform": "javascript",
        "level": "error",
        "exception": {
            "values": [
                {
                    "type": kind,
                    "value": template.format(name=name),
                    "stacktrace": {"frames": frames},
                    "mechanism": {"type": "onerror", "handled": False},
                }
            ]
        },
        "request": {
            "url": "https://shop.example.com/checkout",
            "headers": {"User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/140.0"},
        },
        "environment": "loadtest",
        "release": "shop-frontend@2.0.1",
        "sdk": _sdk(SDK_BROWSER),
    }


def message_event(rng: random.Random, now: datetime) -> dict:
    """A `capture_message()` event (logentry, level warning or info)."""
    text = MESSAGES[rng.randrange(len(MESSAGES))]
    trace_id = uuid.UUID(int=rng.getrandbits(128)).hex
    return {
        "event_id": uuid.UUID(int=rng.getrandbits(128)).hex,
        "contexts": {"trace": {"trace_id": trace_id, "span_id": trace_id[16:]}},
        "timestamp": iso(now),
        "platform": "python",
        "level": rng.choice(("warning", "info")),
        "message": text,
        "logentry": {"message": text, "params": []},
        "logger": "app.monitoring",
        "environment": "loadtest",
        "release": "shop@1.4.2",
        "sdk": _sdk(SDK_PYTHON),
    }


def transaction_event(rng: random.Random, now: datetime) -> dict:
    """A sampled transaction with a handful of spans (db, cache, http), as sentry-sdk sends."""
    name, op = TRANSACTIONS[rng.randrange(len(TRANSACTIONS))]
    trace_id = uuid.UUID(int=rng.getrandbits(128)).hex
    root = trace_id[:16]
    start = now - timedelta(milliseconds=rng.randint(20, 400))
    spans, cursor = [], start
    for number in range(rng.randint(3, 8)):
        span_op, description = (
            ("db", 'SELECT "catalog_product"."id" FROM "catalog_product" LIMIT 21'),
            ("cache.get", "product:42"),
            ("http.client", "GET https://payments.example.net/v1/charges"),
        )[number % 3]
        end = cursor + timedelta(milliseconds=rng.randint(1, 30))
        spans.append(
            {
                "trace_id": trace_id,
                "span_id": f"{rng.getrandbits(64):016x}",
                "parent_span_id": root,
                "same_process_as_parent": True,
                "op": span_op,
                "description": description,
                "start_timestamp": iso(cursor),
                "timestamp": iso(end),
                "origin": "auto",
            }
        )
        cursor = end
    return {
        "type": "transaction",
        "event_id": uuid.UUID(int=rng.getrandbits(128)).hex,
        "transaction": name,
        "transaction_info": {"source": "route"},
        "start_timestamp": iso(start),
        "timestamp": iso(max(now, cursor)),
        "contexts": {
            "trace": {
                "trace_id": trace_id,
                "span_id": root,
                "parent_span_id": None,
                "op": op,
                "status": "ok",
            }
        },
        "spans": spans,
        "measurements": {},
        "platform": "python",
        "environment": "loadtest",
        "release": "shop@1.4.2",
        "sdk": _sdk(SDK_PYTHON),
    }


def envelope(headers: dict, item_type: str, payload: dict) -> bytes:
    """Serialize a one-item envelope as `sentry_sdk.envelope.Envelope.serialize` does."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    item = {"type": item_type, "content_type": "application/json", "length": len(body)}
    lines = [json.dumps(headers, separators=(",", ":")).encode(), json.dumps(item).encode(), body]
    return b"\n".join(lines) + b"\n"


def event_title(event: dict) -> str:
    """The issue title GlitchTip derives: `Type: value` for errors, the message otherwise."""
    values = (event.get("exception") or {}).get("values") or []
    if values:
        last = values[-1]
        return f"{last['type']}: {last['value']}" if last.get("value") else str(last["type"])
    return str(event.get("message") or "<unlabeled event>")


def build_request(
    kind: str, dsn: Dsn, rng: random.Random, distinct_issues: int, now: datetime | None = None
) -> IngestRequest:
    """The request of `kind` (one of KINDS) for `dsn`'s project."""
    if distinct_issues < 1:
        raise ValueError("distinct_issues must be at least 1")
    now = now or datetime.now(UTC)
    index = rng.randrange(distinct_issues)
    if kind == "store":
        event = error_event(index, rng, now)
        headers = {
            "Content-Type": "application/json",
            "X-Sentry-Auth": auth_header(dsn.public_key, SDK_PYTHON),
            "User-Agent": f"{SDK_PYTHON[0]}/{SDK_PYTHON[1]}",
        }
        body = json.dumps(event, separators=(",", ":")).encode()
        path = f"/api/{dsn.project_id}/store/"
        return IngestRequest(
            kind, path, headers, body, event["event_id"], "event", event_title(event)
        )
    if kind == "error_gzip":
        event, item_type, client = error_event(index, rng, now), "event", SDK_PYTHON
    elif kind == "error_plain":
        event, item_type, client = browser_error_event(index, rng, now), "event", SDK_BROWSER
    elif kind == "message":
        event, item_type, client = message_event(rng, now), "event", SDK_PYTHON
    elif kind == "transaction":
        event, item_type, client = transaction_event(rng, now), "transaction", SDK_PYTHON
    else:
        raise ValueError(f"unknown kind {kind!r} (one of {', '.join(KINDS)})")
    header: dict = {"event_id": event["event_id"], "sent_at": iso(now)}
    if client is SDK_BROWSER:
        # The browser SDK names the DSN and itself in the envelope header.
        header["dsn"] = f"https://{dsn.public_key}@glitchtip.invalid/{dsn.project_id}"
        header["sdk"] = {"name": client[0], "version": client[1]}
    else:
        header["trace"] = {
            "trace_id": event["contexts"]["trace"]["trace_id"],
            "environment": "loadtest",
            "release": event.get("release"),
            "public_key": dsn.public_key,
        }
    body = envelope(header, item_type, event)
    headers = {
        "Content-Type": "application/x-sentry-envelope",
        "X-Sentry-Auth": auth_header(dsn.public_key, client),
        "User-Agent": f"{client[0]}/{client[1]}",
    }
    if kind == "error_gzip" or kind in ("message", "transaction"):
        # sentry-sdk compresses every envelope with gzip (level 9) when brotli is absent.
        body = gzip.compress(body, compresslevel=9)
        headers["Content-Encoding"] = "gzip"
    title = event_title(event) if item_type == "event" else None
    return IngestRequest(
        kind, f"/api/{dsn.project_id}/envelope/", headers, body, event["event_id"], item_type, title
    )


def parse_mix(text: str) -> dict[str, int]:
    """`error_gzip=50,transaction=20,...` -> weights; kinds left out weigh 0. ValueError if bad."""
    weights = dict.fromkeys(KINDS, 0)
    for part in text.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep or name.strip() not in weights or not value.strip().isdigit():
            raise ValueError(f"{part.strip()!r} is not KIND=WEIGHT (kinds: {', '.join(KINDS)})")
        weights[name.strip()] = int(value)
    if not any(weights.values()):
        raise ValueError("every weight is 0: nothing would be sent")
    return weights


def format_mix(weights: dict[str, int]) -> str:
    """The inverse of `parse_mix` (what travels to the Locust container in one variable)."""
    return ",".join(f"{kind}={weights.get(kind, 0)}" for kind in KINDS)

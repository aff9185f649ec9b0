"""Property-based fuzzing of every route the sidecar serves.

Hypothesis draws hostile requests: bodies (random bytes, invalid UTF-8, huge numbers, NaN and
Infinity, deep nesting, wrong JSON types, very long strings, nulls and junk in the fields of real
payloads), headers (bad Content-Type, bogus Authorization, odd signatures, huge Content-Length
claims, junk in the headers the parsers read) and paths and query strings (bad UUIDs and ids,
encoded junk, traversal). Most carry valid credentials or a valid signature over the hostile body,
so they reach the parsers rather than stopping at a 401. The properties: no answer is a 5xx, every
error answer is a JSON object with an "error" key, and the sidecar still answers /health.

Hypothesis drives a synchronous test function, so it runs in a worker thread and hands each batch
of requests to the event loop the sidecar runs on. The run is derandomized: every run sends the
same requests, and a failure names the request that caused it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import quote, quote_plus

import httpx
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from bot.runtime import Runtime
from tests.fixtures import load_fixture
from tests.open_sidecar import ADMIN, INCOMPRESSIBLE, MAX_BODY_BYTES, http, sidecar, signed  # noqa: F401 — fixtures, used by name
from tests.webhook_senders import WEBHOOK_TOKEN

REQUESTS_PER_EXAMPLE = 10
EXAMPLES = 510
MIN_REQUESTS = 5000
HEARTBEAT_APPS = 4  # each UUID may send 20 heartbeats at once (rate limit): more UUIDs reach the writer more often
SOURCES = ("sentry", "alertmanager", "github", "generic", "heroku")
ODD_METHODS = ("HEAD", "PATCH", "OPTIONS", "DELETE", "PUT", "POST", "TRACE")


# --- the route table ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    template: str  # aiohttp's canonical form, as the router names it
    methods: tuple[str, ...]
    auth: str  # "none", "admin", "token" (PULSER_WEBHOOK_TOKEN), or "webhook" (per source)
    shape: str | None = None  # the realistic body this route takes, mutated into hostile ones
    weight: int = 1  # routes that parse bodies and store what they accept get more of the requests


ROUTES = (
    Route("/health", ("GET",), "none"),
    Route("/metrics", ("GET",), "none"),
    Route("/api/openapi.json", ("GET",), "none"),
    *(Route(f"{prefix}/{{uuid}}{tail}", ("GET", "POST"), "none", "heartbeat", weight=2)
      for prefix in ("/heartbeat", "/ping") for tail in ("", "/{signal}")),
    Route("/heartbeats", ("POST",), "none", "bulk", weight=3),
    Route("/api/applications", ("GET", "POST"), "admin", "application", weight=2),
    Route("/api/applications/{id}", ("GET", "PUT", "DELETE"), "admin", "application", weight=2),
    Route("/api/applications/{id}/heartbeats", ("GET",), "admin"),
    Route("/api/rules", ("GET", "POST"), "admin", "rule", weight=2),
    Route("/api/rules/{id}", ("GET", "PUT", "DELETE"), "admin", "rule", weight=2),
    Route("/api/rules/{id}/move", ("POST",), "admin", "move"),
    Route("/api/silences", ("GET", "POST"), "admin", "silence", weight=2),
    Route("/api/silences/{id}", ("GET", "DELETE"), "admin"),
    Route("/api/inhibitions", ("GET", "POST"), "admin", "inhibition", weight=2),
    Route("/api/inhibitions/{id}", ("GET", "DELETE"), "admin"),
    Route("/api/services", ("GET", "POST"), "admin", "service", weight=2),
    Route("/api/services/{id}", ("GET", "PUT", "DELETE"), "admin", "service", weight=2),
    Route("/api/deploys", ("GET",), "admin"),
    Route("/api/delivery", ("GET",), "admin"),
    Route("/api/status", ("GET",), "admin"),
    Route("/api/events", ("GET",), "admin"),
    Route("/api/event-routes", ("GET", "PUT"), "admin", "event_routes", weight=2),
    *(Route(f"{prefix}{tail}", methods, "admin", shape)
      for prefix in ("/api/incidents", "/api/alert-groups")
      for tail, methods, shape in (("", ("GET",), None), ("/{id}", ("GET",), None), ("/{id}/ack", ("POST",), None),
                                   ("/{id}/snooze", ("POST",), "snooze"), ("/{id}/resolve", ("POST",), None))),
    Route("/api/incidents/{id}/assign", ("POST",), "admin", "assign"),
    Route("/api/incidents/{id}/notes", ("POST",), "admin", "note"),
    Route("/api/alerts", ("GET",), "admin"),
    Route("/api/dashboard/overview", ("GET",), "admin"),
    Route("/api/integrations", ("GET",), "admin"),
    Route("/api/integrations/{source}/test", ("POST",), "admin"),
    Route("/api/users/{user_id}/notification-rules", ("GET", "PUT"), "admin", "notification_rules", weight=2),
    Route("/api/users/{user_id}/test-page", ("POST",), "admin"),
    Route("/api/escalation-policies", ("GET", "POST"), "admin", "policy", weight=2),
    Route("/api/escalation-policies/example", ("GET",), "admin"),
    Route("/api/escalation-policies/{id}", ("GET", "PUT", "DELETE"), "admin", "policy", weight=2),
    Route("/api/outbound-channels", ("GET", "POST"), "admin", "channel", weight=2),
    Route("/api/outbound-channels/{id}", ("GET", "PUT", "DELETE"), "admin", "channel", weight=2),
    Route("/api/outbound-channels/{id}/test", ("POST",), "admin"),
    Route("/api/outbound-channels/{id}/deliveries", ("GET",), "admin"),
    Route("/api/schedules", ("GET", "POST"), "admin", "schedule", weight=2),
    Route("/api/schedules/{id}", ("GET", "PUT", "DELETE"), "admin", "schedule", weight=2),
    Route("/api/schedules/{id}/oncall", ("GET",), "admin"),
    Route("/api/schedules/{id}/shifts", ("GET",), "admin"),
    Route("/api/schedules/{id}/overrides", ("POST",), "admin", "override", weight=2),
    Route("/api/schedules/{id}/overrides/{oid}", ("DELETE",), "admin"),
    Route("/api/schedules/{id}/swaps", ("POST",), "admin", "swap"),
    Route("/api/schedules/{id}/refresh", ("POST",), "admin"),
    Route("/schedules/{token}.ics", ("GET",), "none"),
    Route("/events", ("POST",), "token", "event", weight=5),
    Route("/webhooks/{source}", ("POST",), "webhook", weight=15),
)  # fmt: skip


def fuzzed_routes() -> set[tuple[str, str]]:
    """(method, template) pairs the fuzz sends; aiohttp answers HEAD on every GET route."""
    pairs = {(method, route.template) for route in ROUTES for method in route.methods}
    return pairs | {("HEAD", template) for method, template in pairs if method == "GET"}


def served_routes(runtime: Runtime) -> set[tuple[str, str]]:
    return {(r.method, r.resource.canonical) for r in runtime.http_runner.app.router.routes()}


# --- what the sidecar holds before the fuzz starts ---------------------------------------------------


@dataclass(frozen=True)
class Seeds:
    """Existing rows, so paths with a real id and heartbeats with a real UUID reach past the lookup."""

    ids: dict[str, str]  # "applications" → "1", …
    uuids: tuple[str, ...]


async def plant(http: httpx.AsyncClient) -> Seeds:
    creations = {
        "applications": {"name": "fuzzed-app", "expected_interval": 300},
        "rules": {"name": "api in prod", "channel": "#api-alerts", "envs": ["prod"], "min_severity": "high"},
        "silences": {"matchers": {"env": "staging"}, "duration": "2h"},
        "inhibitions": INHIBITION,
        "services": SERVICE,
        "schedules": SCHEDULE,
        "outbound-channels": CHANNEL,
        "escalation-policies": POLICY,
    }
    ids = {}
    for family, body in creations.items():
        response = await http.post(f"/api/{family}", json=body, headers=ADMIN)
        assert response.status_code == 201, response.text
        ids[family] = str(response.json()["id"])
    ids["incidents"] = await open_an_incident(http)
    uuids = []
    for n in range(HEARTBEAT_APPS):
        response = await http.post("/api/applications", json={"name": f"beats-{n}", "expected_interval": 60}, headers=ADMIN)
        assert response.status_code == 201, response.text
        uuids.append(response.json()["uuid"])
    return Seeds(ids=ids, uuids=tuple(uuids))


async def open_an_incident(http: httpx.AsyncClient) -> str:
    """An incident, opened the way every incident is (a webhook the pipeline turns into one)."""
    alert = {"title": "Fuzzed incident", "severity": "high", "service": "api", "env": "prod"}
    response = await http.post("/webhooks/generic", json=alert, headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}"})
    assert response.status_code == 202, response.text
    for _ in range(600):
        listed = (await http.get("/api/incidents", headers=ADMIN)).json()["incidents"]
        if listed:
            return str(listed[0]["id"])
        await asyncio.sleep(0.05)
    raise AssertionError("the fuzzed incident was not opened within 30 s")


# --- realistic bodies, to be mutated -------------------------------------------------------------------

INHIBITION = {
    "name": "critical mutes warnings",
    "source_matchers": {"severity": "critical"},
    "target_matchers": [{"name": "severity", "op": "=~", "value": "low|medium|high"}],
    "equal": ["service", "env"],
}
CHANNEL = {"name": "hook", "kind": "webhook", "settings": {"url": "http://127.0.0.1:9/hook", "signing_secret": "s3cret"}}
POLICY = {"name": "paging", "steps": [{"kind": "slack_channel", "target": "#ops", "mention": "@here"},
                                      {"kind": "wait", "wait_minutes": 5}, {"kind": "user_group", "target": "S0OPS"}]}
SCHEDULE = {"name": "primary", "time_zone": "Europe/Berlin", "layers": [
    {"members": ["U0ADA1", "U0BOB2"], "shift": "1 week", "handoff": "09:00", "start": "2026-11-30"},
    {"members": ["U0CY3"], "shift": "1 day", "start": "2026-11-30", "days": "weekdays", "hours": "09:00-17:00"},
]}
SERVICE = {"name": "api", "action_type": "github_workflow", "action": {"repo": "acme/api", "workflow": "deploy.yml"}}
# (Sentry-Hook-Resource or X-GitHub-Event, fixture file) per source; None: the sender sets no such header.
WEBHOOK_SAMPLES = {
    "sentry": [("error", "error-created.json"), ("event_alert", "event-alert-triggered.json"),
               ("issue", "issue-created.json"), ("metric_alert", "metric-alert-resolved.json"),
               (None, "legacy-webhooks-plugin-sentry9.json")],
    "github": [("workflow_run", "workflow_run-completed-failure.json"),
               ("deployment_status", "deployment_status-created-failure.json")],
    "alertmanager": [(None, "captured-v0.25-firing-two-alerts.json"), (None, "captured-v0.25-truncated-max-alerts-1.json")],
    "generic": [(None, "full.json"), (None, "minimal.json")],
    "heroku": [(None, "webhook-api-release-update.json"), (None, "webhook-real-dyno-destroy-crashed-2023.json"),
               (None, "webhook-api-formation-update.json")],
}  # fmt: skip


def shapes(seeds: Seeds) -> dict[str, list[Any]]:
    """Valid bodies per route shape (webhook sources by name): hostile ones start from these."""
    found: dict[str, list[Any]] = {
        source: [load_fixture(source, name) for _, name in samples] for source, samples in WEBHOOK_SAMPLES.items()
    }
    found.update(
        heartbeat=[{"log": "backup done", "timestamp": "2026-11-23T02:00:00Z", "rows": 120}],
        bulk=[{"uuids": list(seeds.uuids)}, list(seeds.uuids)],
        application=[{"name": "nightly", "expected_interval": 300, "grace_period": 60, "channel": "#ops"},
                     {"name": "report", "schedule": "0 2 * * *", "timezone": "Europe/Berlin"}],
        rule=[{"name": "db", "channel": "#db", "services": "db", "envs": ["prod"], "min_severity": "high"}],
        move=[{"position": 1}],
        silence=[{"matchers": [{"name": "env", "op": "=", "value": "staging"}], "duration": "2h", "comment": "x"}],
        inhibition=[INHIBITION],
        service=[SERVICE],
        event_routes=[{"deploy": "#ops-deploy", "ci": None}],
        schedule=[SCHEDULE, {"name": "imported", "time_zone": "UTC", "layers": [{"ical_url": "http://127.0.0.1:9/x.ics"}]}],
        policy=[POLICY, {"name": "L1-L3", "repeat": 1, "steps": [
            {"kind": "outbound", "channel": "hook"}, {"kind": "wait", "wait_minutes": 15},
            {"kind": "user", "target": "U0DEE4", "min_severity": "critical"}]}],
        channel=[CHANNEL, {"name": "mail", "kind": "email", "settings": {
            "host": "smtp.example.com", "from": "pulser@example.com", "to": ["ops@example.com"], "password": "x"}}],
        override=[{"user": "U0DEE4", "start": "now", "end": "+4h"}, {"user": "U0DEE4", "start": "2027-01-04 09:00", "end": "+1d"}],
        swap=[{"shift_start": "2026-12-07T09:00:00+01:00", "from_user": "U0BOB2", "to_user": "U0DEE4"}],
        snooze=[{"minutes": 60}],
        assign=[{"assignee": "U0123ABCD"}],
        note=[{"text": "Failing over to the replica."}],
        notification_rules=[{"contacts": {"email": "ada@example.com", "phone": "+14155550123"},
                             "rules": [{"method": "slack_dm", "delay_minutes": 0}, {"method": "sms", "delay_minutes": 5}]}],
        event=[{"event_type": "deploy", "status": "failed", "service": "api", "env": "prod", "title": "Deploy",
                "link": "https://ci.example.com/1", "occurred_at": "2026-11-23T02:00:00Z", "deployment_id": "d-1",
                "details": {"commit": "abc"}, "actor": "ada", "event_id": "e-1"}],
    )  # fmt: skip
    return found


# --- hostile values --------------------------------------------------------------------------------------

ODD_TEXT = st.sampled_from([
    "", "\x00", "a\x00b", "\ud800", "\udfff", "x\udc80y", "\u2028", "\ufeff", "\u202eevil", "NaN", "null", "true",
    "../../etc/passwd", "%00", "%ff", "<script>", "' OR 1=1 --", "#", "#ops-alerts", "C0123ABCD", "🙂🙂", "ＡＢＣ",
    "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00",
    "2026-13-45T99:99:99Z", "-1", "1e999", "P1Y", "999999999999h", "1e9w", "0 2 * * *", "*/0 * * * *", "Etc/GMT+99",
    "http://[::1", "https://[", "http://a:99999", "javascript:alert(1)", "(a|", INCOMPRESSIBLE,
])  # fmt: skip
LONG_TEXT = st.builds(
    lambda piece, times: piece * times,
    st.sampled_from(["a", "é", "🙂", "\\", '"', "9", "ab\x00"]),
    st.sampled_from([101, 301, 1001, 3001, 101, 301, 1001, 10_001, 70_000]),
)
NUMBERS = st.one_of(
    st.integers(),
    st.sampled_from([0, -1, 2**31, 2**63, 2**64, -(2**63) - 1, 10**30, 10**300, -(10**4000)]),
    st.floats(),  # NaN and ±Infinity included: json.dumps writes them
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=20), ODD_TEXT, LONG_TEXT)
KEYS = st.one_of(st.text(max_size=12), ODD_TEXT)
DEPTHS = st.sampled_from([63, 64, 65, 100, 900, 1100, 5000, 20_000])
NESTINGS = st.sampled_from(["array", "object", "mixed"])


def deep_text(depth: int, nesting: str) -> str:
    """JSON nested `depth` levels deep, built as text: json.dumps itself cannot write it."""
    if nesting == "array":
        return "[" * depth + "]" * depth
    if nesting == "object":
        return '{"a":' * depth + "1" + "}" * depth
    return '[{"a":' * (depth // 2) + "null" + "}]" * (depth // 2)


def deep_marker(depth: int, nesting: str) -> str:
    """A string standing in for deep JSON inside a payload, replaced after json.dumps."""
    return f"@@deep-{depth}-{nesting}@@"


DEEP_MARKERS = st.builds(deep_marker, DEPTHS, NESTINGS)
# Flat on purpose: nesting is DEEP_MARKERS' job, and every draw costs time the requests need.
HOSTILE_VALUES = st.one_of(
    SCALARS, SCALARS, st.lists(SCALARS, max_size=3), st.dictionaries(KEYS, SCALARS, max_size=3), DEEP_MARKERS
)


def expand_deep(text: str) -> str:
    """Serialized JSON with each deep marker (a JSON string) replaced by the deep JSON it stands for."""
    while '"@@deep-' in text:
        start = text.index('"@@deep-')
        end = text.index('@@"', start + 2) + 3
        _, depth, nesting = text[start + 3 : end - 3].split("-")
        text = text[:start] + deep_text(int(depth), nesting) + text[end:]
    return text


def places(payload: Any) -> list[tuple[Any, Any]]:
    """Every (container, key or index) in a payload, found without recursion."""
    found, pending = [], [payload]
    while pending:
        node = pending.pop()
        keys = list(node) if isinstance(node, dict) else range(len(node)) if isinstance(node, list) else []
        for key in keys:
            found.append((node, key))
            pending.append(node[key])
    return found


@st.composite
def mutated(draw: st.DrawFn, samples: list[Any]) -> Any:
    """A real payload with a few fields replaced by hostile values, removed, or added."""
    payload = json.loads(json.dumps(draw(st.sampled_from(samples))))
    # Unchanged half the time: hostile headers only reach storage with a body the parser accepts.
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 1, 2]))):
        spots = places(payload)
        if not spots:
            return draw(HOSTILE_VALUES)
        container, key = draw(st.sampled_from(spots))
        action = draw(st.sampled_from(["replace", "replace", "replace", "remove", "add"]))
        if action == "remove":
            del container[key]
        elif action == "add" and isinstance(container, dict):
            container[draw(KEYS)] = draw(HOSTILE_VALUES)
        else:
            container[key] = draw(HOSTILE_VALUES)
    return payload


def serialize(payload: Any, style: str) -> bytes:
    text = expand_deep(json.dumps(payload, ensure_ascii=style != "utf-8"))
    if style == "utf-8":  # lone surrogates as raw (invalid) UTF-8 bytes instead of \\ud800 escapes
        return text.encode("utf-8", "surrogatepass")
    if style == "utf-16":
        return text.encode("utf-16")
    if style == "bom":
        return b"\xef\xbb\xbf" + text.encode()
    if style == "truncated":
        return text.encode()[: len(text) // 2]
    if style == "trailing":
        return text.encode() + b" }"
    return text.encode()


STYLES = st.sampled_from(["ascii"] * 10 + ["utf-8", "utf-16", "bom", "truncated", "trailing"])
RAW_BODIES = st.one_of(
    st.binary(max_size=300),
    st.sampled_from([
        b"", b"{", b"[", b"null", b"0", b'""', b"[]", b"{}", b"NaN", b"-Infinity", b"1e400", b"\xff\xfe\xfd",
        b'{"title": "\xff\xfe"}', b'{"a": "\xed\xa0\x80"}', b'{"x": ' + b"9" * 5000 + b"}", b"[" + b"1," * 5000 + b"1]",
        b'{"a":1,"a":2}', b"\x00", b"{}" * 100, b" " * (MAX_BODY_BYTES + 1), b'{"uuids": "' + b"x" * 11_000 + b'"}',
    ]),
    st.builds(lambda depth, nesting: deep_text(depth, nesting).encode(), DEPTHS, NESTINGS),
)  # fmt: skip


def bodies(shape: list[Any] | None) -> st.SearchStrategy[bytes]:
    hostile = st.builds(serialize, HOSTILE_VALUES, STYLES)
    if shape is None:
        return st.one_of(RAW_BODIES, hostile, st.just(b""))
    realistic = st.builds(serialize, mutated(shape), STYLES)
    return st.one_of(realistic, realistic, realistic, hostile, RAW_BODIES)


# --- hostile paths and query strings ---------------------------------------------------------------------

JUNK_SEGMENTS = st.sampled_from([
    "..", "%2e%2e", "..%2F..%2Fetc%2Fpasswd", "%00", "%ff%fe", "%", "%zz", "%20", "~", "*", ";", "a;b=c", "x" * 3000,
    "NaN", "-0", "+1", "0x1F", "1e3", "٣", "%D9%A3", "\u00e9", "🙂", "null", "undefined", "[]", "{}", "%7B%7D",
])  # fmt: skip
TEXT_SEGMENTS = st.text(min_size=1, max_size=40).map(lambda text: quote(text, safe=""))


def uuid_segments(seeds: Seeds) -> st.SearchStrategy[str]:
    known = st.sampled_from(seeds.uuids)
    odd = st.one_of(
        known.map(str.upper), known.map(lambda u: "{" + u + "}"), known.map(lambda u: "urn:uuid:" + u),
        known.map(lambda u: u.replace("-", "")), known.map(lambda u: u[:-1] + "g"), known.map(lambda u: u + "0"),
        st.uuids().map(str), JUNK_SEGMENTS, TEXT_SEGMENTS,
    )  # fmt: skip
    return mostly(known, odd)


def mostly(usual: st.SearchStrategy, unusual: st.SearchStrategy, *, one_in: int = 3) -> st.SearchStrategy:
    """`unusual` once in `one_in` draws: hostile input is only worth sending where it gets past
    the front door (the right path, method and credentials) most of the time."""
    return st.integers(1, one_in).flatmap(lambda n: unusual if n == 1 else usual)


SIGNALS = st.one_of(
    st.sampled_from(["start", "fail", "0", "1", "255", "256", "-1", "-0", "00", "9" * 30, "9" * 5000, "-" + "9" * 5000]),
    st.integers(-(10**20), 10**20).map(str),
    JUNK_SEGMENTS,
)


def id_segments(seed: str | None) -> st.SearchStrategy[str]:
    ids = st.sampled_from(["0", "-1", "999999999", "9" * 18, "9" * 19, "9" * 400, "0" * 17 + "1", "1.0", " 1"])
    odd = st.one_of(ids, JUNK_SEGMENTS, TEXT_SEGMENTS)
    return odd if seed is None else mostly(st.just(seed), odd)


QUERY_KEYS = st.sampled_from(["limit", "offset", "all", "type", "token", "timestamp", "x", "", "limit[]", "at", "start", "end"])
QUERY_VALUES = st.one_of(
    st.sampled_from(["", "0", "1", "-1", "1000", "1001", "9" * 30, "1e3", "true", "yes", "deploy", "action", "\x00"]),
    NUMBERS.map(str), st.text(max_size=30), LONG_TEXT.map(lambda text: text[:2000]),
)  # fmt: skip
# aiohttp's parser answers a request line over 8190 bytes itself, in plain text, before any route:
# the method, the target and " HTTP/1.1" must stay under it.
MAX_QUERY = 4000
MAX_TARGET = 8000
RAW_QUERIES = st.sampled_from(["?", "?&&", "?=", "?%ff%fe=%00", "?limit=%zz", "?limit=1&limit=2", "?a=" + "%41" * 1000])


@st.composite
def queries(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 2)):
        return ""
    if draw(st.booleans()):
        return draw(RAW_QUERIES)
    pairs = draw(st.lists(st.tuples(QUERY_KEYS, QUERY_VALUES), min_size=1, max_size=3))
    query = "?" + "&".join(f"{quote(key, safe='')}={quote(value, safe='', errors='surrogatepass')}" for key, value in pairs)
    return query[:MAX_QUERY]


# --- hostile headers ---------------------------------------------------------------------------------------

HeaderValue = str | bytes
CONTENT_TYPES = st.sampled_from([
    "application/json"] * 6 + [None, "", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
    "multipart/form-data; boundary=zz", "application/json; charset=bogus", "application/json; charset=utf-16",
    "application/problem+json", "json", "*/*", ";;;", b"application/json\xff", "application/json; charset=\"",
])  # fmt: skip
# Header values never start or end with blanks, nor hold control characters: an HTTP client will not send them.
# Nor "gzip" or "deflate": aiohttp's parser decompresses the body and answers one that is not itself.
JUNK_HEADER_VALUES = st.sampled_from([
    "x", "0", "-1", "null", "x" * 4000, "../../etc/passwd", "%00", "<script>", "a\tb", "é".encode(), b"\xff\xfe",
    b"\xed\xa0\x80", "🙂".encode(), str(uuid.UUID(int=0)), "2026-11-23T02:00:00Z", "Thu, 01 Jan 1970 00:00:00 GMT",
    "identity", "chunked", INCOMPRESSIBLE,
])  # fmt: skip
READ_HEADERS = st.sampled_from([
    "Idempotency-Key", "X-GitHub-Event", "X-GitHub-Delivery", "Sentry-Hook-Resource", "Sentry-Hook-Timestamp",
    "Request-ID", "Heroku-Webhook-Id", "X-Client-Time", "User-Agent", "X-Pulser-Token", "Authorization", "Accept",
    "Content-Type", "Content-Encoding", "X-Forwarded-For",
])  # fmt: skip
BOGUS_AUTHORIZATION = st.sampled_from([
    "Bearer", "Bearer wrong", "bearer x", "Basic", "Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode(),
    "Basic " + base64.b64encode(b"user:\xff\xfe").decode(), "Token abc", "Bearer " + "x" * 4000,
    b"Bearer \xff\xfe", "Bearer t\u00f6ken".encode(), "Bearer a b c", "Negotiate YII=",
])  # fmt: skip
ODD_SIGNATURES = st.sampled_from([
    "sha256=", "sha1=abc", "sha256=" + "0" * 64, "sha256=zz", "=" * 100, "x" * 4000, b"\xff\xfe", "sha256==",
    "0" * 64, base64.b64encode(b"\x00" * 32).decode(), "sha256=" + "é" * 10,
])  # fmt: skip
SIGNATURE_HEADERS = {
    "sentry": "Sentry-Hook-Signature", "github": "X-Hub-Signature-256", "heroku": "Heroku-Webhook-Hmac-SHA256"
}
# Only claims over the body limit: a smaller lie would leave the server waiting for bytes that never come.
CLAIMED_LENGTHS = st.sampled_from([MAX_BODY_BYTES + 1, 10**9, 2**62])


def token_headers(draw: st.DrawFn) -> dict[str, HeaderValue]:
    """PULSER_WEBHOOK_TOKEN presented each way a sender may, or a bogus one."""
    if draw(st.integers(0, 5)):
        return {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}
    return draw(st.sampled_from([
        {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}, {"X-Pulser-Token": WEBHOOK_TOKEN},
        {"Authorization": "Basic " + base64.b64encode(f"am:{WEBHOOK_TOKEN}".encode()).decode()},
    ]) | BOGUS_AUTHORIZATION.map(lambda value: {"Authorization": value}) | st.just({}))  # fmt: skip


def webhook_headers(draw: st.DrawFn, source: str, kind: str | None, body: bytes) -> dict[str, HeaderValue]:
    """A valid signature over the hostile body most of the time; otherwise a missing or odd one."""
    if source in ("generic", "alertmanager") or (source == "sentry" and kind is None):
        return token_headers(draw)
    headers: dict[str, HeaderValue] = dict(signed(source, body, resource=kind or "error", event=kind or "workflow_run"))
    choice = draw(st.integers(0, 5))
    if choice == 4:
        headers[SIGNATURE_HEADERS[source]] = draw(ODD_SIGNATURES)
    elif choice == 5:
        del headers[SIGNATURE_HEADERS[source]]
    return headers


def auth_headers(draw: st.DrawFn, route: Route) -> dict[str, HeaderValue]:
    if route.auth == "admin":
        bogus = BOGUS_AUTHORIZATION.map(lambda value: {"Authorization": value}) | st.just({})
        return ADMIN if draw(st.integers(0, 5)) else draw(bogus)
    if route.auth == "token":
        return token_headers(draw)
    return draw(st.just({}) | BOGUS_AUTHORIZATION.map(lambda value: {"Authorization": value}))


# --- one hostile request -----------------------------------------------------------------------------------


@dataclass
class Hostile:
    method: str
    target: str  # path and query string as sent
    headers: list[tuple[str, HeaderValue]]
    body: bytes
    claimed_length: int | None = None  # a Content-Length the body does not have: sent over a raw socket

    def __repr__(self) -> str:
        claim = f" Content-Length: {self.claimed_length}" if self.claimed_length is not None else ""
        headers = [(name, value[:80]) for name, value in self.headers]
        return f"{self.method} {self.target[:300]} {headers!r}{claim} body={self.body[:300]!r} ({len(self.body)} bytes)"


def requests(seeds: Seeds) -> st.SearchStrategy[Hostile]:
    samples = shapes(seeds)
    body_strategies = {name: bodies(sample) for name, sample in samples.items()} | {None: bodies(None)}
    uuid_strategy = uuid_segments(seeds)
    id_strategies = {family: id_segments(seeds.ids.get(family)) for family in
                     ("applications", "rules", "silences", "inhibitions", "services", "incidents", "schedules",
                      "escalation-policies", "outbound-channels")}  # fmt: skip
    id_strategies["alert-groups"] = id_strategies["incidents"]
    weighted_routes = st.sampled_from([route for route in ROUTES for _ in range(route.weight)])
    sources = mostly(st.sampled_from(SOURCES), JUNK_SEGMENTS, one_in=10)
    methods = {route: mostly(st.sampled_from(route.methods), st.sampled_from(ODD_METHODS), one_in=12) for route in ROUTES}

    @st.composite
    def request(draw: st.DrawFn) -> Hostile:
        route = draw(weighted_routes)
        method = draw(methods[route])
        path, headers, shape, kind = route.template, {}, route.shape, None
        if "{uuid}" in path:
            path = path.replace("{uuid}", draw(uuid_strategy))
        if "{signal}" in path:
            path = path.replace("{signal}", draw(SIGNALS))
        if "{id}" in path:
            path = path.replace("{id}", draw(id_strategies[path.split("/")[2]]))
        if "{oid}" in path:
            path = path.replace("{oid}", draw(id_segments("1")))
        if "{token}" in path:
            path = path.replace("{token}", draw(mostly(st.just("feed-token-of-no-schedule-0123"), JUNK_SEGMENTS, one_in=3)))
        if "{user_id}" in path:
            path = path.replace("{user_id}", draw(mostly(st.just("U0FUZZED"), JUNK_SEGMENTS, one_in=4)))
        if "{source}" in path:
            source = draw(sources)
            path = path.replace("{source}", source)
            shape = source if source in SOURCES else None
            if shape is not None:
                kind = draw(st.sampled_from([k for k, _ in WEBHOOK_SAMPLES[source]]))
        query = draw(queries())
        body = draw(body_strategies[shape])
        if shape == "github" and draw(st.integers(0, 4)) == 0:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            body = b"payload=" + quote_plus(body).encode()
        elif (content_type := draw(CONTENT_TYPES)) is not None:
            headers["Content-Type"] = content_type
        if route.auth == "webhook" and shape is not None:
            headers.update(webhook_headers(draw, shape, kind, body))
            if shape == "sentry" and kind is None and draw(st.booleans()):
                headers.pop("Authorization", None)
                query = f"?token={quote(WEBHOOK_TOKEN)}"
        else:
            headers.update(auth_headers(draw, route))
        # Replacing, not adding: aiohttp's parser refuses a second Content-Type or User-Agent itself.
        if not draw(st.integers(0, 3)):
            headers.update(draw(st.dictionaries(READ_HEADERS, JUNK_HEADER_VALUES, min_size=1, max_size=3)))
        claimed = draw(CLAIMED_LENGTHS) if draw(st.integers(0, 24)) == 0 else None
        # Two long path segments and a long query can pass the request line's limit together.
        return Hostile(method, (path + query)[:MAX_TARGET], list(headers.items()), body, claimed)

    return request()


# --- sending and judging ---------------------------------------------------------------------------------


async def send(port: int, request: Hostile) -> tuple[int, bytes]:
    """One request on a connection of its own, written byte for byte: an HTTP client refuses to
    send much of what the fuzz sends (header bytes that are not UTF-8, a Content-Length the body
    does not have), and a raw socket is the cheapest client there is."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(wire(request))
            await writer.drain()
            return await asyncio.wait_for(answer(reader, request.method), timeout=10)
        finally:
            writer.close()
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
        raise AssertionError(f"no answer ({exc!r}) to {request!r}") from exc


def wire(request: Hostile) -> bytes:
    # The target encoded as an HTTP client encodes it: aiohttp's parser refuses raw non-ASCII itself.
    target = "".join(c if c.isascii() and c.isprintable() and c != " " else quote(c) for c in request.target)
    claimed = request.claimed_length
    lines = [f"{request.method} {target} HTTP/1.1".encode(), b"Host: 127.0.0.1", b"Connection: close",
             f"Content-Length: {len(request.body) if claimed is None else claimed}".encode()]  # fmt: skip
    lines += [name.encode() + b": " + (v if isinstance(v, bytes) else v.encode()) for name, v in request.headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + (request.body if claimed is None else b"")


async def answer(reader: asyncio.StreamReader, method: str) -> tuple[int, bytes]:
    """Status and body, the body read by its Content-Length: a server promised a body it never got
    (a Content-Length claim) may keep the connection open a while, waiting for it."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *fields = head.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    headers = {name.strip().lower(): value.strip() for name, _, value in (f.partition(":") for f in fields if f)}
    if method == "HEAD" or status in (204, 304):
        return status, b""
    if "content-length" in headers:
        return status, await reader.readexactly(int(headers["content-length"]))
    body = await reader.read()  # Connection: close — the body ends with the connection
    return status, dechunk(body) if headers.get("transfer-encoding") == "chunked" else body


def dechunk(body: bytes) -> bytes:
    """A chunked body's data (no route answers chunked today; a new one may)."""
    data = b""
    while body:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        data, body = data + body[:size], body[size + 2 :]
        if size == 0:
            break
    return data


def judge(request: Hostile, status: int, body: bytes) -> None:
    """The properties: no 5xx, and every error is a JSON object with an "error" key."""
    assert status < 500, f"{status} for {request!r}\nanswer: {body[:500]!r}"
    if status >= 400 and request.method != "HEAD":
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        assert isinstance(answer, dict) and "error" in answer, (
            f"{status} without a JSON error for {request!r}\nanswer: {body[:500]!r}"
        )


def fuzz(strategy: st.SearchStrategy[Hostile], send_batch: Callable[[list[Hostile]], list[tuple[int, bytes]]]) -> None:
    @settings(
        derandomize=True,
        database=None,
        max_examples=EXAMPLES,
        deadline=None,
        # No shrinking: the failure message names the offending request already, and shrinking
        # would re-send hundreds of batches, outlasting the test's timeout.
        phases=(Phase.generate,),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )
    @given(batch=st.lists(strategy, min_size=REQUESTS_PER_EXAMPLE, max_size=REQUESTS_PER_EXAMPLE))
    def every_answer_is_at_worst_a_json_4xx(batch: list[Hostile]) -> None:
        for request, (status, body) in zip(batch, send_batch(batch)):
            judge(request, status, body)

    every_answer_is_at_worst_a_json_4xx()


# --- the test ----------------------------------------------------------------------------------------------


async def test_the_fuzz_covers_every_route_the_sidecar_serves(sidecar):
    assert served_routes(sidecar) <= fuzzed_routes()


async def test_no_hostile_request_gets_a_5xx_or_an_error_that_is_not_json(sidecar, http):
    seeds = await plant(http)
    loop = asyncio.get_running_loop()
    statuses: Counter[int] = Counter()

    async def send_all(batch: list[Hostile]) -> list[tuple[int, bytes]]:
        answers = await asyncio.gather(*(send(sidecar.http_port, request) for request in batch))
        statuses.update(status for status, _ in answers)
        return answers

    def send_batch(batch: list[Hostile]) -> list[tuple[int, bytes]]:
        return asyncio.run_coroutine_threadsafe(send_all(batch), loop).result(timeout=60)

    await asyncio.to_thread(fuzz, requests(seeds), send_batch)

    sent = sum(statuses.values())
    print(f"fuzz: {sent} requests, answers by status: {dict(sorted(statuses.items()))}")
    assert sent >= MIN_REQUESTS
    assert (await http.get("/health")).status_code == 200

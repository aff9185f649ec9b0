"""Hostile input to a running sidecar gets a 4xx naming what to fix, never a 5xx, and stores nothing.

First JSON nested too deeply, on every family of endpoints that parses JSON (it used to be a
RecursionError and a 500); then each crash tests/test_http_fuzz.py found, one test apiece.
"""

from __future__ import annotations

import json
from typing import AsyncIterator

import httpx
import pytest

from alerts.sources.common import MAX_JSON_DEPTH, TOO_DEEP, NestingError, PayloadError, load_json
from storage import envelopes
from tests.fixtures import load_fixture
from tests.open_sidecar import ADMIN, INCOMPRESSIBLE, http, row_counts, sidecar, signed  # noqa: F401 — fixtures, used by name
from tests.webhook_senders import WEBHOOK_TOKEN

JSON = {"Content-Type": "application/json"}
TOKEN = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}


def nested_arrays(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def nested_objects(depth: int, innermost: bytes = b"1") -> bytes:
    return b'{"a":' * depth + innermost + b"}" * depth


DEEP_BODIES = {
    "arrays 10,000 deep": nested_arrays(10_000),
    "objects 10,000 deep": nested_objects(10_000),
    # Parses under Python's recursion limit, then overflowed whatever walked it next.
    "objects 900 deep": nested_objects(900),
    "one level too deep": b'{"title": "Disk full", "tags": ' + nested_objects(MAX_JSON_DEPTH) + b"}",
}
# A heartbeat keeps at most 10 kB of body: the 10,000-deep ones are refused as too large first.
HEARTBEAT_SIZED = {name: body for name, body in DEEP_BODIES.items() if len(body) <= 10 * 1024}


def sample_event(**fields) -> dict:
    return {"event_type": "ci", "status": "passed", "service": "api", **fields}


async def create(http: httpx.AsyncClient, family: str) -> int:
    """One row of an admin API family, to have an id to PUT or move."""
    bodies = {
        "applications": {"name": "nightly-backup", "expected_interval": 300},
        "rules": {"name": "api in prod", "channel": "#api-alerts"},
        "services": {"name": "api", "action_type": "github_workflow", "action": {"repo": "acme/api", "workflow": "deploy.yml"}},
    }
    response = await http.post(f"/api/{family}", json=bodies[family], headers=ADMIN)
    assert response.status_code == 201, response.text
    return response.json()["id"]


@pytest.fixture
async def app_uuid(http: httpx.AsyncClient) -> AsyncIterator[str]:
    response = await http.post("/api/applications", json={"name": "nightly-backup", "expected_interval": 300}, headers=ADMIN)
    yield response.json()["uuid"]


# --- the parser's limit ------------------------------------------------------------------------------------


def test_json_nested_to_the_limit_parses_and_one_level_more_is_refused():
    assert load_json(nested_arrays(MAX_JSON_DEPTH)) is not None
    with pytest.raises(NestingError, match="nested too deeply"):
        load_json(nested_arrays(MAX_JSON_DEPTH + 1))


@pytest.mark.parametrize(
    "body, message",
    [(b'{"a": NaN}', "NaN is not a JSON number"), (b'{"a": -Infinity}', "-Infinity is not a JSON number"),
     (b'{"a": 1e400}', "number 1e400 is out of range"), (b'{"a": ' + b"9" * 5000 + b"}", "5000 digits is too long"),
     (b'{"a": "x\\u0000"}', "NUL"), (b'{"\\ud800": 1}', "unpaired UTF-16 surrogate"),
     (b'{"a": "\xed\xa0\x80"}', "unpaired UTF-16 surrogate"), (b'{"a": "\xff"}', "must be UTF-8")],
)  # fmt: skip
def test_json_postgres_could_not_store_is_refused_saying_why(body, message):
    with pytest.raises(PayloadError, match=message):
        load_json(body)


# --- JSON nested too deeply, per endpoint family ----------------------------------------------------------

WEBHOOKS = [
    pytest.param("/webhooks/generic", "generic", id="generic"),
    pytest.param("/webhooks/alertmanager", "alertmanager", id="alertmanager"),
    pytest.param("/webhooks/sentry", "sentry", id="sentry integration"),
    pytest.param(f"/webhooks/sentry?token={WEBHOOK_TOKEN}", None, id="sentry legacy plugin"),
    pytest.param("/webhooks/github", "github", id="github"),
    pytest.param("/webhooks/heroku", "heroku", id="heroku"),
]


@pytest.mark.parametrize("path, source", WEBHOOKS)
async def test_a_webhook_nested_too_deeply_is_a_400_and_nothing_is_stored(sidecar, http, path, source):
    before = await row_counts(sidecar.pool)
    for name, body in DEEP_BODIES.items():
        headers = {**JSON, **(signed(source, body) if source else {})}
        response = await http.post(path, content=body, headers=headers)
        assert (response.status_code, response.json()) == (400, {"error": "invalid payload", "detail": TOO_DEEP}), name
    assert await row_counts(sidecar.pool) == before


async def test_an_event_nested_too_deeply_is_a_400_and_nothing_is_stored(sidecar, http):
    before = await row_counts(sidecar.pool)
    for name, body in DEEP_BODIES.items():
        response = await http.post("/events", content=body, headers={**JSON, **TOKEN})
        assert (response.status_code, response.json()) == (400, {"error": "invalid event", "detail": {"body": TOO_DEEP}}), name
    assert await row_counts(sidecar.pool) == before


ADMIN_WRITES = [
    ("PUT", "/api/event-routes", None), ("POST", "/api/applications", None), ("PUT", "/api/applications/{id}", "applications"),
    ("POST", "/api/rules", None), ("PUT", "/api/rules/{id}", "rules"), ("POST", "/api/rules/{id}/move", "rules"),
    ("POST", "/api/silences", None), ("POST", "/api/inhibitions", None), ("POST", "/api/services", None),
    ("PUT", "/api/services/{id}", "services"),
]  # fmt: skip


@pytest.mark.parametrize("method, path, family", ADMIN_WRITES, ids=[f"{m} {p}" for m, p, _ in ADMIN_WRITES])
async def test_an_admin_api_body_nested_too_deeply_is_a_400_and_changes_nothing(sidecar, http, method, path, family):
    if family is not None:
        path = path.format(id=await create(http, family))
    before = await row_counts(sidecar.pool)
    for name, body in DEEP_BODIES.items():
        response = await http.request(method, path, content=body, headers={**JSON, **ADMIN})
        assert (response.status_code, response.json()) == (400, {"error": "invalid JSON", "detail": TOO_DEEP}), name
    assert await row_counts(sidecar.pool) == before


async def test_a_bulk_heartbeat_request_nested_too_deeply_is_a_400_and_records_nothing(sidecar, http):
    before = await row_counts(sidecar.pool)
    for name, body in DEEP_BODIES.items():
        response = await http.post("/heartbeats", content=body, headers=JSON)
        assert response.status_code == 400, name
        assert response.json()["error"] == "invalid bulk request"
        assert response.json()["detail"].startswith(TOO_DEEP)
    assert await row_counts(sidecar.pool) == before


async def test_a_heartbeat_body_nested_too_deeply_is_a_400_and_records_nothing(sidecar, http, app_uuid):
    before = await row_counts(sidecar.pool)
    for name, body in HEARTBEAT_SIZED.items():
        response = await http.post(f"/heartbeat/{app_uuid}", content=body, headers=JSON)
        assert (response.status_code, response.json()) == (400, {"error": "invalid heartbeat body", "detail": TOO_DEEP}), name
    assert await row_counts(sidecar.pool) == before


async def test_a_heartbeat_body_nested_10000_deep_is_a_413_as_too_large(sidecar, http, app_uuid):
    before = await row_counts(sidecar.pool)
    response = await http.post(f"/heartbeat/{app_uuid}", content=DEEP_BODIES["arrays 10,000 deep"], headers=JSON)
    assert response.status_code == 413
    assert response.json()["error"] == "request body too large"
    assert await row_counts(sidecar.pool) == before


async def test_a_heartbeat_body_nested_to_the_limit_is_still_kept_as_metadata(sidecar, http, app_uuid):
    body = nested_objects(MAX_JSON_DEPTH)
    response = await http.post(f"/heartbeat/{app_uuid}", content=body, headers=JSON)
    assert response.status_code == 200
    assert await sidecar.pool.fetchval("SELECT metadata FROM heartbeats") == json.loads(body)


# --- what the fuzz found ------------------------------------------------------------------------------------


def alertmanager_with_extra(raw_value: bytes) -> bytes:
    """A real Alertmanager body with one more top-level field: Pulser ignores it and stores it."""
    payload = load_fixture("alertmanager", "captured-v0.25-firing-two-alerts.json")
    return json.dumps({**payload, "extra": "@@"}).encode().replace(b'"@@"', raw_value)


@pytest.mark.parametrize(
    "path, body",
    [("/webhooks/generic", b'{"title": "Disk full", "description": "x\\u0000"}'),
     ("/webhooks/generic", b'{"title": "Disk full", "description": "\\udfff"}'),
     ("/webhooks/generic", b'{"title": "Disk full", "event_id": "\xed\xa0\x80"}'),
     ("/webhooks/alertmanager", alertmanager_with_extra(b"NaN")),
     ("/webhooks/alertmanager", alertmanager_with_extra(b"1e400"))],
    ids=["NUL", "escaped lone surrogate", "raw lone surrogate", "NaN", "overflowing number"],
)  # fmt: skip
async def test_a_webhook_body_postgres_cannot_store_is_a_400_not_a_503(sidecar, http, path, body):
    response = await http.post(path, content=body, headers={**JSON, **TOKEN})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid payload"
    assert await sidecar.pool.fetchval("SELECT count(*) FROM envelopes") == 0


@pytest.mark.parametrize("header", ["Idempotency-Key", "User-Agent", "Content-Type"])
async def test_a_webhook_header_that_is_not_utf8_is_a_400_naming_it_and_nothing_is_stored(sidecar, http, header):
    headers = {**JSON, **TOKEN, header: b"caf\xe9"}
    response = await http.post("/webhooks/generic", content=b'{"title": "Disk full"}', headers=headers)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid header", "detail": f"the {header} header is not UTF-8 text; send it as ASCII"}
    assert await envelopes.count_envelopes(sidecar.pool, source="generic") == 0


async def test_an_event_header_that_is_not_utf8_is_a_400_naming_it_and_nothing_is_stored(sidecar, http):
    headers = {**TOKEN, "Idempotency-Key": b"caf\xe9"}
    response = await http.post("/events", json=sample_event(), headers=headers)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["detail"]
    assert await envelopes.count_envelopes(sidecar.pool, source="events") == 0


@pytest.mark.parametrize(
    "path, body", [("/webhooks/generic", b'{"title": "Disk full"}'), ("/events", json.dumps(sample_event()).encode())]
)
async def test_an_idempotency_key_too_long_to_index_is_a_400_and_nothing_is_stored(sidecar, http, path, body):
    key = INCOMPRESSIBLE[:3000]
    before = await row_counts(sidecar.pool)
    response = await http.post(path, content=body, headers={**JSON, **TOKEN, "Idempotency-Key": key})
    assert response.status_code == 400
    assert response.json()["error"] == "idempotency key too long"
    assert "at most 1024 bytes" in response.json()["detail"]
    assert await row_counts(sidecar.pool) == before


async def test_an_admin_token_with_bytes_that_are_not_utf8_is_a_401(sidecar, http):
    response = await http.get("/api/status", headers={"Authorization": b"Bearer t\xf6ken"})
    assert (response.status_code, response.json()["detail"]) == (401, "wrong bearer token")


async def test_a_webhook_token_with_bytes_that_are_not_utf8_is_a_401_and_nothing_is_stored(sidecar, http):
    headers = {**JSON, "Authorization": b"Bearer t\xf6ken"}
    response = await http.post("/webhooks/generic", content=b'{"title": "Disk full"}', headers=headers)
    assert response.status_code == 401
    assert "does not match PULSER_WEBHOOK_TOKEN" in response.json()["detail"]
    assert await envelopes.count_envelopes(sidecar.pool, source="generic") == 0


async def test_a_heartbeat_with_header_bytes_that_are_not_utf8_is_recorded_with_them_replaced(sidecar, http, app_uuid):
    response = await http.post(f"/heartbeat/{app_uuid}", headers={"User-Agent": b"cron\xff", "X-Client-Time": b"\xfe1"})
    assert response.status_code == 200
    row = await sidecar.pool.fetchrow("SELECT user_agent, client_time FROM heartbeats")
    assert (row["user_agent"], row["client_time"]) == ("cron\ufffd", "\ufffd1")


async def test_an_exit_code_of_thousands_of_digits_is_a_400_not_a_crash(sidecar, http, app_uuid):
    response = await http.post(f"/heartbeat/{app_uuid}/{'9' * 5000}")
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid exit code", "detail": "exit code must be a whole number from 0 to 255, got 999999999999…"
    }


@pytest.mark.parametrize(
    "path, body, field",
    [("/events", sample_event(link="http://[::1"), "link"),
     ("/events", sample_event(occurred_at="9999-12-31T23:59:59-14:00"), "occurred_at"),
     ("/webhooks/generic", {"title": "Disk full", "occurred_at": "9999-12-31T23:59:59-14:00"}, "occurred_at")],
    ids=["event link that is no URL", "event time past year 9999 in UTC", "alert time past year 9999 in UTC"],
)  # fmt: skip
async def test_a_value_python_cannot_represent_is_a_400_naming_the_field(sidecar, http, path, body, field):
    before = await row_counts(sidecar.pool)
    response = await http.post(path, json=body, headers=TOKEN)
    assert response.status_code == 400
    assert field in json.dumps(response.json()["detail"])
    assert await row_counts(sidecar.pool) == before


async def test_a_deploy_webhook_url_that_is_no_url_is_a_400_naming_the_field(sidecar, http):
    service = {"name": "api", "action_type": "webhook", "action": {"url": "http://[::1"}}
    response = await http.post("/api/services", json=service, headers=ADMIN)
    assert response.status_code == 400
    assert response.json()["detail"] == {"action.url": "required: an http:// or https:// URL"}
    assert await sidecar.pool.fetchval("SELECT count(*) FROM deploy_services") == 0

"""Heartbeat endpoints of a running sidecar: every path, bodies, limits, bulk, and a database outage."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import AsyncIterator

import httpx
import pytest

from alerts.applications import validate_application
from bot.metrics import Metrics
from bot.runtime import Runtime
from storage import applications
from storage.applications import Application
from handlers.http.heartbeats import RATE_LIMITER
from tests.conftest import make_settings


@pytest.fixture
async def sidecar(database_url: str) -> AsyncIterator[Runtime]:
    runtime = Runtime(
        make_settings(DATABASE_URL=database_url, PULSER_ADMIN_TOKEN="t0ken-for-tests"), "sidecar", metrics=Metrics("test")
    )
    await runtime.start()
    yield runtime
    await runtime.stop()


@pytest.fixture
async def http(sidecar: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sidecar.http_port}", timeout=10) as client:
        yield client


async def register(runtime: Runtime, name: str = "nightly-backup", **fields) -> Application:
    spec = validate_application({"name": name, "expected_interval": 300, **fields}, default_channel="#ops-alerts")
    return await applications.create_application(runtime.pool, spec, created_by="test")


async def reload(runtime: Runtime, app: Application) -> Application:
    fresh = await applications.get_application(runtime.pool, app.id)
    assert fresh is not None
    return fresh


async def history(runtime: Runtime, app: Application) -> list[dict]:
    rows = await runtime.pool.fetch("SELECT * FROM heartbeats WHERE app_id = $1 ORDER BY id", app.id)
    return [dict(r) for r in rows]


async def incident_alerts(runtime: Runtime, app: Application) -> list[dict]:
    """The alerts the app's incidents received, oldest first: (status, title) and the incident's state."""
    rows = await runtime.pool.fetch(
        """
        SELECT o.status, o.alert->>'title' AS title, i.status AS incident_status, i.resolved_at
          FROM alert_occurrences o JOIN incidents i ON i.id = o.incident_id
         WHERE i.source = 'heartbeat' AND i.labels->>'heartbeat.app_id' = $1
         ORDER BY o.id
        """,
        str(app.id),
    )
    return [dict(r) for r in rows]


async def heartbeat_count(runtime: Runtime) -> int:
    return await runtime.pool.fetchval("SELECT count(*) FROM heartbeats")


# --- every path --------------------------------------------------------------------------------

SIGNALS = [
    # (suffix, stored kind, stored exit code, status afterwards for a new app)
    ("", "success", None, "up"),
    ("/start", "start", None, "new"),
    ("/fail", "fail", None, "down"),
    ("/0", "success", 0, "up"),
    ("/3", "fail", 3, "down"),
]


@pytest.mark.parametrize("prefix", ["/heartbeat", "/ping"])
@pytest.mark.parametrize("suffix, kind, exit_code, status", SIGNALS)
async def test_each_path_records_its_kind_and_answers_the_new_status(sidecar, http, prefix, suffix, kind, exit_code, status):
    app = await register(sidecar)
    response = await http.post(f"{prefix}/{app.uuid}{suffix}")
    assert response.status_code == 200
    assert response.json() == {"ok": True, "status": status}
    [row] = await history(sidecar, app)
    assert (row["kind"], row["exit_code"], row["method"]) == (kind, exit_code, "POST")
    assert (await reload(sidecar, app)).state == status  # a new app's status is its stored state


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST"])
async def test_get_head_and_post_all_count_as_a_heartbeat(sidecar, http, method):
    app = await register(sidecar)
    response = await http.request(method, f"/heartbeat/{app.uuid}")
    assert response.status_code == 200
    after = await reload(sidecar, app)
    assert after.state == "up" and after.last_heartbeat is not None
    assert after.next_deadline is not None
    [row] = await history(sidecar, app)
    assert row["method"] == method


async def test_head_answers_without_a_body(sidecar, http):
    app = await register(sidecar)
    response = await http.head(f"/heartbeat/{app.uuid}")
    assert response.status_code == 200
    assert response.content == b""


async def test_a_start_then_a_success_records_the_run_duration(sidecar, http):
    app = await register(sidecar)
    assert (await http.post(f"/heartbeat/{app.uuid}/start")).status_code == 200
    assert (await http.post(f"/heartbeat/{app.uuid}")).status_code == 200
    start, success = await history(sidecar, app)
    assert start["kind"] == "start" and start["duration_ms"] is None
    assert success["kind"] == "success"
    expected = int((success["received_at"] - start["received_at"]).total_seconds() * 1000)
    assert success["duration_ms"] == expected
    assert (await reload(sidecar, app)).last_duration_ms == expected


async def test_an_exit_code_over_255_is_a_400_naming_it_and_stores_nothing(sidecar, http):
    app = await register(sidecar)
    response = await http.post(f"/heartbeat/{app.uuid}/256")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid exit code"
    assert "256" in response.json()["detail"]
    assert await history(sidecar, app) == []


async def test_a_negative_exit_code_is_a_400(sidecar, http):
    app = await register(sidecar)
    response = await http.post(f"/ping/{app.uuid}/-1")
    assert response.status_code == 400
    assert "0 to 255" in response.json()["detail"]


async def test_an_unknown_signal_is_a_json_404(sidecar, http):
    app = await register(sidecar)
    response = await http.post(f"/heartbeat/{app.uuid}/finished")
    assert response.status_code == 404
    assert response.json()["error"] == "not found"


# --- unknown, deleted, malformed --------------------------------------------------------------


async def test_an_unknown_uuid_is_a_404(sidecar, http):
    response = await http.post("/heartbeat/0b6f1f4e-5b7a-4c1e-9a51-2d4c8f0e9a11")
    assert response.status_code == 404
    assert response.json() == {"error": "unknown heartbeat UUID"}
    assert await heartbeat_count(sidecar) == 0


async def test_a_deleted_apps_uuid_is_a_404(sidecar, http):
    app = await register(sidecar)
    await applications.delete_application(sidecar.pool, app.id)
    response = await http.post(f"/heartbeat/{app.uuid}")
    assert response.status_code == 404
    assert response.json() == {"error": "unknown heartbeat UUID"}
    assert await heartbeat_count(sidecar) == 0


@pytest.mark.parametrize(
    "malformed",
    [
        "0b6f1f4e-5b7a-4c1e-9a51-2d4c8f0e9a1z",  # UUID-shaped, one letter outside hex
        "0b6f1f4e5b7a4c1e9a512d4c8f0e9a11",  # no dashes
        "0b6f1f4e-5b7a-4c1e-9a51-2d4c8f0e9a1",  # one digit short
        "urn:uuid:0b6f1f4e-5b7a-4c1e-9a51-2d4c8f0e9a11",
        "not-a-uuid",
    ],
)
async def test_a_malformed_uuid_is_a_404_that_never_reaches_the_database(sidecar, http, malformed):
    # With the database gone, anything that queried it would answer 503; a malformed UUID must not.
    await sidecar.pool.close()
    response = await http.post(f"/heartbeat/{malformed}")
    assert response.status_code == 404
    assert response.json() == {"error": "unknown heartbeat UUID"}


async def test_a_well_formed_uuid_is_a_json_503_while_the_database_is_down(sidecar, http):
    app = await register(sidecar)
    await sidecar.pool.close()
    response = await http.post(f"/heartbeat/{app.uuid}")
    assert response.status_code == 503
    assert response.json() == {"error": "database unavailable", "detail": "the database did not answer; retry later"}
    assert response.headers["Retry-After"] == "5"


# --- bodies and client time ---------------------------------------------------------------------


async def test_a_body_of_exactly_10_kb_is_stored_as_text(sidecar, http):
    app = await register(sidecar)
    body = ("backup done; " * 1000)[:10240]
    response = await http.post(f"/heartbeat/{app.uuid}", content=body.encode())
    assert response.status_code == 200
    [row] = await history(sidecar, app)
    assert row["body"] == body and row["metadata"] is None


async def test_a_json_object_body_is_stored_as_metadata_too(sidecar, http):
    app = await register(sidecar)
    payload = {"rows": 1200, "host": "db-1", "timestamp": "2024-05-01T02:00:00Z"}
    response = await http.post(f"/heartbeat/{app.uuid}", json=payload)
    assert response.status_code == 200
    [row] = await history(sidecar, app)
    assert row["metadata"] == payload
    assert json.loads(row["body"]) == payload
    assert row["client_time"] == "2024-05-01T02:00:00Z"


async def test_a_json_body_that_is_not_an_object_is_kept_only_as_text(sidecar, http):
    app = await register(sidecar)
    response = await http.post(
        f"/heartbeat/{app.uuid}", content=b"[1, 2, 3]", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200
    [row] = await history(sidecar, app)
    assert row["body"] == "[1, 2, 3]" and row["metadata"] is None


async def test_a_body_postgres_cannot_hold_is_cleaned_not_refused(sidecar, http):
    app = await register(sidecar)
    response = await http.post(
        f"/heartbeat/{app.uuid}",
        content=b'{"log": "a\\u0000b", "bad": "\\ud800"}\x00\xff',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200
    [row] = await history(sidecar, app)
    assert row["metadata"] is None
    assert "\x00" not in row["body"] and row["body"].startswith('{"log"')


async def test_a_body_over_10_kb_is_a_413_and_nothing_is_stored(sidecar, http):
    app = await register(sidecar)
    response = await http.post(f"/heartbeat/{app.uuid}", content=b"x" * 10241)
    assert response.status_code == 413
    assert response.json()["error"] == "request body too large"
    assert "10240" in response.json()["detail"]
    assert await history(sidecar, app) == []
    assert (await reload(sidecar, app)).state == "new"


async def test_a_chunked_body_over_10_kb_is_a_413_too(sidecar, http):
    app = await register(sidecar)

    async def chunks():
        for _ in range(11):
            yield b"y" * 1024

    response = await http.post(f"/heartbeat/{app.uuid}", content=chunks())
    assert response.status_code == 413
    assert await history(sidecar, app) == []


async def test_a_client_timestamp_is_stored_but_receipt_time_is_the_servers(sidecar, http):
    app = await register(sidecar)
    before = datetime.now(timezone.utc)
    response = await http.post(f"/heartbeat/{app.uuid}", params={"timestamp": "1999-12-31T23:59:59Z"})
    after = datetime.now(timezone.utc)
    assert response.status_code == 200
    [row] = await history(sidecar, app)
    assert row["client_time"] == "1999-12-31T23:59:59Z"
    assert before <= row["received_at"] <= after
    assert (await reload(sidecar, app)).last_heartbeat == row["received_at"]


async def test_the_x_client_time_header_is_stored_as_the_client_time(sidecar, http):
    app = await register(sidecar)
    await http.post(f"/heartbeat/{app.uuid}", headers={"X-Client-Time": "1714528800"})
    [row] = await history(sidecar, app)
    assert row["client_time"] == "1714528800"


async def test_remote_address_and_user_agent_are_stored(sidecar, http):
    app = await register(sidecar)
    await http.get(f"/heartbeat/{app.uuid}", headers={"User-Agent": "cron-wrapper/1.0"})
    [row] = await history(sidecar, app)
    assert row["remote_addr"] == "127.0.0.1" and row["user_agent"] == "cron-wrapper/1.0"


# --- failures and recoveries ----------------------------------------------------------------------


async def test_a_fail_on_an_up_app_marks_it_down_and_opens_its_incident(sidecar, http):
    app = await register(sidecar)
    await http.post(f"/heartbeat/{app.uuid}")
    response = await http.post(f"/heartbeat/{app.uuid}/fail")
    assert response.json() == {"ok": True, "status": "down"}
    after = await reload(sidecar, app)
    assert after.state == "down" and after.next_deadline is None
    [alert] = await incident_alerts(sidecar, app)
    assert (alert["status"], alert["title"], alert["incident_status"]) == ("firing", "nightly-backup reported failure", "firing")


async def test_a_second_fail_while_down_alerts_no_second_time(sidecar, http):
    app = await register(sidecar)
    await http.post(f"/heartbeat/{app.uuid}/fail")
    await http.post(f"/heartbeat/{app.uuid}/2")
    assert [a["title"] for a in await incident_alerts(sidecar, app)] == ["nightly-backup reported failure"]


async def test_a_success_on_a_down_app_resolves_its_incident(sidecar, http):
    app = await register(sidecar)
    await http.post(f"/heartbeat/{app.uuid}/7")
    response = await http.post(f"/heartbeat/{app.uuid}/0")
    assert response.json() == {"ok": True, "status": "up"}
    fail, recovered = await incident_alerts(sidecar, app)
    assert fail["title"] == "nightly-backup reported failure (exit code 7)"
    assert recovered["status"] == "resolved" and recovered["incident_status"] == "resolved"
    assert recovered["resolved_at"] == (await history(sidecar, app))[-1]["received_at"], "resolved at the recovery's receipt"


async def test_a_paused_app_keeps_history_but_stays_paused(sidecar, http):
    app = await register(sidecar)
    await applications.set_active(sidecar.pool, app.id, False)
    response = await http.post(f"/heartbeat/{app.uuid}/fail")
    assert response.json() == {"ok": True, "status": "paused"}
    assert len(await history(sidecar, app)) == 1
    assert await incident_alerts(sidecar, app) == []


# --- rate limit ---------------------------------------------------------------------------------


def stop_the_limiters_clock(runtime: Runtime) -> None:
    """No token comes back while a test runs, however slow the machine: limits are exact."""
    limiter = runtime.http_runner.app[RATE_LIMITER]
    frozen = limiter.clock()
    limiter.clock = lambda: frozen


async def test_beyond_the_rate_limit_a_uuid_gets_429_with_retry_after_and_nothing_is_stored(sidecar, http):
    stop_the_limiters_clock(sidecar)
    app = await register(sidecar)
    accepted = 0
    for _ in range(60):
        response = await http.post(f"/heartbeat/{app.uuid}")
        if response.status_code == 429:
            break
        assert response.status_code == 200
        accepted += 1
    else:
        pytest.fail("no 429 after 60 heartbeats in a row")
    assert accepted == 20
    assert int(response.headers["Retry-After"]) >= 1
    assert response.json()["error"] == "rate limited"
    assert len(await history(sidecar, app)) == accepted
    assert (await reload(sidecar, app)).state == "up"  # what was accepted keeps it alive


async def test_the_rate_limit_is_per_uuid(sidecar, http):
    stop_the_limiters_clock(sidecar)
    noisy, quiet = await register(sidecar, "noisy"), await register(sidecar, "quiet")
    for _ in range(60):
        if (await http.post(f"/heartbeat/{noisy.uuid}")).status_code == 429:
            break
    assert (await http.post(f"/heartbeat/{quiet.uuid}")).status_code == 200


# --- bulk ---------------------------------------------------------------------------------------


async def test_bulk_heartbeats_sort_uuids_into_accepted_unknown_and_invalid(sidecar, http):
    one, two = await register(sidecar, "one"), await register(sidecar, "two")
    unknown = "0b6f1f4e-5b7a-4c1e-9a51-2d4c8f0e9a11"
    response = await http.post(
        "/heartbeats", json={"uuids": [str(one.uuid), str(two.uuid), unknown, "nope", 42, str(one.uuid)]}
    )
    assert response.status_code == 200
    assert response.json() == {
        "accepted": [str(one.uuid), str(two.uuid)],
        "unknown": [unknown],
        "invalid": ["nope", 42],
        "rate_limited": [],
    }
    assert (await reload(sidecar, one)).state == "up" and (await reload(sidecar, two)).state == "up"
    assert [r["kind"] for r in await history(sidecar, one)] == ["success"]


async def test_bulk_accepts_a_bare_list(sidecar, http):
    app = await register(sidecar)
    response = await http.post("/heartbeats", json=[str(app.uuid)])
    assert response.status_code == 200
    assert response.json()["accepted"] == [str(app.uuid)]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"ids": []}',
        b'"0b6f1f4e-5b7a-4c1e-9a51-2d4c8f0e9a11"',
        json.dumps(["0b6f1f4e-5b7a-4c1e-9a51-2d4c8f0e9a11"] * 1001).encode(),
    ],
)
async def test_bulk_with_a_body_of_the_wrong_shape_is_a_400_saying_what_is_expected(sidecar, http, body):
    response = await http.post("/heartbeats", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "uuids" in response.json()["detail"] and "1000" in response.json()["detail"]
    assert await heartbeat_count(sidecar) == 0


async def test_bulk_lists_rate_limited_uuids_and_does_not_store_them(sidecar, http):
    stop_the_limiters_clock(sidecar)
    app = await register(sidecar)
    for _ in range(60):
        if (await http.post(f"/heartbeat/{app.uuid}")).status_code == 429:
            break
    stored = len(await history(sidecar, app))
    response = await http.post("/heartbeats", json={"uuids": [str(app.uuid)]})
    assert response.json()["rate_limited"] == [str(app.uuid)]
    assert len(await history(sidecar, app)) == stored


# --- metrics ------------------------------------------------------------------------------------


async def test_heartbeat_outcomes_and_batch_sizes_show_in_metrics(sidecar, http):
    app = await register(sidecar)
    await http.post(f"/heartbeat/{app.uuid}")
    await http.post("/heartbeat/0b6f1f4e-5b7a-4c1e-9a51-2d4c8f0e9a11")
    text = (await http.get("/metrics")).text
    assert 'pulser_heartbeats_total{kind="success",outcome="accepted"} 1.0' in text
    assert 'pulser_heartbeats_total{kind="success",outcome="unknown"} 1.0' in text
    assert "pulser_heartbeat_batch_size_count 2.0" in text

"""The admin API (`/api/applications…`) of a running sidecar: auth, validation, CRUD, history, audit."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest

from bot.metrics import Metrics
from bot.runtime import Runtime
from storage import audit
from tests.admin_api import http, sidecar  # noqa: F401 — fixtures, used by name
from tests.conftest import make_settings


async def create(http: httpx.AsyncClient, **fields) -> dict:
    response = await http.post("/api/applications", json={"name": "nightly-backup", "expected_interval": 300, **fields})
    assert response.status_code == 201, response.text
    return response.json()


async def app_count(sidecar: Runtime) -> int:
    return await sidecar.pool.fetchval("SELECT count(*) FROM applications WHERE deleted_at IS NULL")


# --- authorization ------------------------------------------------------------------------------


async def test_no_token_is_a_401_with_a_bearer_challenge(sidecar, http):
    response = await http.get("/api/applications", headers={"Authorization": ""})
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_a_wrong_token_is_a_401_and_changes_nothing(sidecar, http):
    response = await http.post(
        "/api/applications",
        json={"name": "sneaky", "expected_interval": 60},
        headers={"Authorization": "Bearer not-the-token"},
    )
    assert response.status_code == 401
    assert "invalid_token" in response.headers["WWW-Authenticate"]
    assert await app_count(sidecar) == 0


async def test_without_a_configured_token_the_api_is_closed_and_says_why(database_url):
    runtime = Runtime(make_settings(DATABASE_URL=database_url), "sidecar", metrics=Metrics("test"))
    await runtime.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{runtime.http_port}") as client:
            response = await client.get("/api/applications", headers={"Authorization": "Bearer anything"})
    finally:
        await runtime.stop()
    assert response.status_code == 401
    assert "PULSER_ADMIN_TOKEN is not set" in response.json()["detail"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


# --- create -------------------------------------------------------------------------------------


async def test_create_is_a_201_with_uuid_status_new_and_a_ping_url(sidecar, http):
    body = await create(http, grace_period=120, channel="#backups", owner="U012ABCDEF")
    assert body["name"] == "nightly-backup"
    assert (body["expected_interval"], body["grace_period"]) == (300, 120)
    assert (body["channel"], body["owner"], body["timezone"], body["is_active"]) == ("#backups", "U012ABCDEF", "UTC", True)
    assert body["status"] == "new" and body["last_heartbeat"] is None and body["next_deadline"] is None
    assert body["ping_url"] == f"http://127.0.0.1:{sidecar.http_port}/heartbeat/{body['uuid']}"
    assert isinstance(body["id"], int)
    assert datetime.fromisoformat(body["created_at"]).tzinfo is not None


async def test_create_uses_the_default_channel_when_none_is_given(http):
    assert (await create(http))["channel"] == "#ops-alerts"


async def test_a_new_apps_ping_url_works(http):
    body = await create(http)
    assert (await http.post(body["ping_url"])).json() == {"ok": True, "status": "up"}
    assert (await http.get(f"/api/applications/{body['id']}")).json()["status"] == "up"


@pytest.mark.parametrize(
    "field, value",
    [
        ("name", "x" * 101),
        ("name", ""),
        ("expected_interval", 5),
        ("grace_period", -1),
        ("channel", "ops alerts"),
        ("owner", "alice"),
        ("timezone", "Mars/Olympus_Mons"),
        ("schedule", "every night"),
        ("is_active", "yes"),
        ("colour", "red"),
    ],
)
async def test_invalid_input_is_a_400_naming_the_field_and_creates_nothing(sidecar, http, field, value):
    response = await http.post("/api/applications", json={"name": "ok-name", "expected_interval": 60, field: value})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid application"
    assert field in body["detail"]
    assert await app_count(sidecar) == 0


async def test_every_bad_field_is_named_at_once(http):
    response = await http.post("/api/applications", json={"name": "", "expected_interval": 5, "grace_period": -1})
    assert set(response.json()["detail"]) == {"name", "expected_interval", "grace_period"}


async def test_a_cron_schedule_with_a_time_zone_replaces_the_interval(http):
    response = await http.post(
        "/api/applications", json={"name": "report", "schedule": "0 2 * * *", "timezone": "Europe/Berlin"}
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["schedule"], body["timezone"], body["expected_interval"]) == ("0 2 * * *", "Europe/Berlin", None)


async def test_a_duplicate_name_is_a_409_naming_the_field_whatever_its_case(sidecar, http):
    await create(http, name="Billing-Sync")
    response = await http.post("/api/applications", json={"name": "billing-sync", "expected_interval": 60})
    assert response.status_code == 409
    assert "name" in response.json()["detail"]
    assert await app_count(sidecar) == 1


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b"", b'"name"'])
async def test_a_body_that_is_not_a_json_object_is_a_400(sidecar, http, body):
    response = await http.post("/api/applications", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid JSON"
    assert "JSON object" in response.json()["detail"]


# --- read ---------------------------------------------------------------------------------------


async def test_get_returns_the_application(http):
    created = await create(http)
    response = await http.get(f"/api/applications/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created


@pytest.mark.parametrize("app_id", ["999999", "abc", "1.5", "-1", "99999999999999999999999"])
async def test_an_unknown_or_non_integer_id_is_a_404(http, app_id):
    for method in ("GET", "PUT", "DELETE"):
        response = await http.request(method, f"/api/applications/{app_id}", json={"grace_period": 1})
        assert response.status_code == 404, method
        assert response.json()["error"] == "application not found"
    assert (await http.get(f"/api/applications/{app_id}/heartbeats")).status_code == 404


async def test_list_is_sorted_by_name_and_pages_with_limit_and_offset(http):
    for name in ("charlie", "alpha", "bravo"):
        await create(http, name=name)
    everything = (await http.get("/api/applications")).json()
    assert [a["name"] for a in everything["applications"]] == ["alpha", "bravo", "charlie"]
    page = (await http.get("/api/applications", params={"limit": 1, "offset": 1})).json()
    assert [a["name"] for a in page["applications"]] == ["bravo"]
    assert (page["limit"], page["offset"]) == (1, 1)


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "1001"}, {"limit": "ten"}, {"offset": "-1"}])
async def test_a_bad_list_parameter_is_a_400_naming_it(http, params):
    response = await http.get("/api/applications", params=params)
    assert response.status_code == 400
    assert set(response.json()["detail"]) == set(params)


# --- update -------------------------------------------------------------------------------------


async def test_a_partial_update_changes_only_the_given_fields(http):
    created = await create(http, grace_period=60, channel="#backups")
    response = await http.put(f"/api/applications/{created['id']}", json={"grace_period": 600})
    assert response.status_code == 200
    body = response.json()
    assert body["grace_period"] == 600
    assert {k: body[k] for k in ("name", "expected_interval", "channel", "uuid")} == {
        k: created[k] for k in ("name", "expected_interval", "channel", "uuid")
    }


async def test_changing_the_interval_of_an_up_app_moves_its_deadline_from_the_last_heartbeat(http):
    created = await create(http, expected_interval=300, grace_period=60)
    await http.post(f"/heartbeat/{created['uuid']}")
    before = (await http.get(f"/api/applications/{created['id']}")).json()
    last = datetime.fromisoformat(before["last_heartbeat"])
    assert datetime.fromisoformat(before["next_deadline"]) == last + timedelta(seconds=360)
    after = (await http.put(f"/api/applications/{created['id']}", json={"expected_interval": 3600})).json()
    assert datetime.fromisoformat(after["next_deadline"]) == last + timedelta(seconds=3660)
    assert after["status"] == "up"


async def test_pausing_and_resuming_through_is_active(http):
    created = await create(http)
    await http.post(f"/heartbeat/{created['uuid']}")
    paused = (await http.put(f"/api/applications/{created['id']}", json={"is_active": False})).json()
    assert (paused["is_active"], paused["status"]) == (False, "paused")
    resumed = (await http.put(f"/api/applications/{created['id']}", json={"is_active": True})).json()
    assert (resumed["is_active"], resumed["status"], resumed["next_deadline"]) == (True, "new", None)


async def test_an_invalid_update_is_a_400_and_changes_nothing(http):
    created = await create(http)
    response = await http.put(f"/api/applications/{created['id']}", json={"expected_interval": 5, "name": "renamed"})
    assert response.status_code == 400
    assert "expected_interval" in response.json()["detail"]
    assert (await http.get(f"/api/applications/{created['id']}")).json()["name"] == "nightly-backup"


async def test_renaming_to_a_taken_name_is_a_409(http):
    await create(http, name="first")
    second = await create(http, name="second")
    response = await http.put(f"/api/applications/{second['id']}", json={"name": "FIRST"})
    assert response.status_code == 409
    assert "name" in response.json()["detail"]


async def test_a_get_representation_can_be_put_back(http):
    created = await create(http)
    edited = {**created, "grace_period": 900}
    response = await http.put(f"/api/applications/{created['id']}", json=edited)
    assert response.status_code == 200
    assert response.json()["grace_period"] == 900


async def test_the_uuid_cannot_be_changed(http):
    created = await create(http)
    response = await http.put(
        f"/api/applications/{created['id']}", json={"uuid": "0b6f1f4e-5b7a-4c1e-9a51-2d4c8f0e9a11"}
    )
    assert response.status_code == 400
    assert "uuid" in response.json()["detail"]


# --- delete -------------------------------------------------------------------------------------


async def test_delete_is_a_204_after_which_the_app_and_its_uuid_are_gone(http):
    created = await create(http)
    response = await http.delete(f"/api/applications/{created['id']}")
    assert response.status_code == 204
    assert (await http.get(f"/api/applications/{created['id']}")).status_code == 404
    assert (await http.post(f"/heartbeat/{created['uuid']}")).status_code == 404
    assert (await http.delete(f"/api/applications/{created['id']}")).status_code == 404
    await create(http)  # the name is free again


# --- history ------------------------------------------------------------------------------------


async def test_history_is_newest_first_with_every_field(http):
    created = await create(http)
    await http.post(f"/heartbeat/{created['uuid']}/start", headers={"User-Agent": "job/1"})
    await http.post(f"/heartbeat/{created['uuid']}/3", json={"timestamp": "t-1", "rows": 5})
    response = await http.get(f"/api/applications/{created['id']}/heartbeats")
    assert response.status_code == 200
    newest, oldest = response.json()["heartbeats"]
    assert (newest["kind"], newest["exit_code"], newest["client_time"]) == ("fail", 3, "t-1")
    assert newest["metadata"] == {"timestamp": "t-1", "rows": 5}
    assert isinstance(newest["duration_ms"], int)
    assert (oldest["kind"], oldest["user_agent"], oldest["method"], oldest["remote_addr"]) == ("start", "job/1", "POST", "127.0.0.1")
    assert datetime.fromisoformat(newest["received_at"]) >= datetime.fromisoformat(oldest["received_at"])
    assert set(newest) == {
        "kind", "exit_code", "received_at", "client_time", "duration_ms", "method", "remote_addr", "user_agent", "body", "metadata",
    }


async def test_history_limit_keeps_the_newest(http):
    created = await create(http)
    for code in range(5):
        await http.post(f"/heartbeat/{created['uuid']}/{code}")
    response = await http.get(f"/api/applications/{created['id']}/heartbeats", params={"limit": 2})
    assert [h["exit_code"] for h in response.json()["heartbeats"]] == [4, 3]


@pytest.mark.parametrize("limit", ["0", "1001", "many"])
async def test_a_bad_history_limit_is_a_400(http, limit):
    created = await create(http)
    response = await http.get(f"/api/applications/{created['id']}/heartbeats", params={"limit": limit})
    assert response.status_code == 400
    assert "limit" in response.json()["detail"]


# --- audit and outages ----------------------------------------------------------------------------


async def test_create_update_and_delete_are_audited_as_the_api(sidecar, http):
    created = await create(http)
    await http.put(f"/api/applications/{created['id']}", json={"grace_period": 30})
    await http.delete(f"/api/applications/{created['id']}")
    actions = await audit.list_actions(sidecar.pool, target_type="application", target_id=created["id"])
    assert [a["action"] for a in actions] == ["application.delete", "application.update", "application.create"]
    assert {a["actor"] for a in actions} == {"api"}
    delete, update, create_ = actions
    assert update["details"] == {"grace_period": {"from": 60, "to": 30}}
    assert create_["details"]["name"] == "nightly-backup"
    assert delete["details"]["uuid"] == created["uuid"]


async def test_an_update_that_changes_nothing_writes_no_audit_row(sidecar, http):
    created = await create(http)
    await http.put(f"/api/applications/{created['id']}", json={"name": "nightly-backup"})
    actions = await audit.list_actions(sidecar.pool, target_type="application", target_id=created["id"])
    assert [a["action"] for a in actions] == ["application.create"]


async def test_the_api_is_a_json_503_while_the_database_is_down(sidecar, http):
    await sidecar.pool.close()
    response = await http.get("/api/applications")
    assert response.status_code == 503
    assert response.json() == {"error": "database unavailable", "detail": "the database did not answer; retry later"}
    assert response.headers["Retry-After"] == "5"

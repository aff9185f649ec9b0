"""The admin API for silences and inhibition rules (`/api/silences…`, `/api/inhibitions…`) of a
running sidecar: auth, validation, create, list, expire, delete, audit."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest

from bot.runtime import Runtime
from storage import audit
from tests.admin_api import http, sidecar  # noqa: F401 — fixtures, used by name

RULE = {
    "name": "critical mutes warnings",
    "source_matchers": {"severity": "critical"},
    "target_matchers": [{"name": "severity", "op": "=~", "value": "low|medium|high"}],
    "equal": ["service", "env"],
}


async def create(http: httpx.AsyncClient, **fields) -> dict:
    body = {"matchers": {"env": "staging"}, "duration": "2h", **fields}
    response = await http.post("/api/silences", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def silence_count(sidecar: Runtime) -> int:
    return await sidecar.pool.fetchval("SELECT count(*) FROM silences")


# --- authorization --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path", [("GET", "/api/silences"), ("POST", "/api/silences"), ("DELETE", "/api/silences/1"),
                     ("GET", "/api/inhibitions"), ("POST", "/api/inhibitions"), ("DELETE", "/api/inhibitions/1")],
)
async def test_every_route_needs_the_admin_token(sidecar, http, method, path):
    response = await http.request(method, path, json={}, headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


# --- silences -------------------------------------------------------------------------------------


async def test_create_with_a_duration_is_a_201_active_from_now(sidecar, http):
    before = datetime.now(timezone.utc)
    body = await create(http, matchers={"env": "staging", "service": "api"}, comment="db upgrade")
    starts, ends = datetime.fromisoformat(body["starts_at"]), datetime.fromisoformat(body["ends_at"])
    assert before <= starts <= datetime.now(timezone.utc)
    assert ends - starts == timedelta(hours=2)
    assert body["matchers"] == [{"name": "env", "op": "=", "value": "staging"}, {"name": "service", "op": "=", "value": "api"}]
    assert body["matchers_text"] == 'env="staging" service="api"'
    assert (body["status"], body["comment"], body["created_by"], body["expired_by"]) == ("active", "db upgrade", "api", None)


async def test_create_answers_with_where_the_silence_lives(http):
    response = await http.post("/api/silences", json={"matchers": {"env": "staging"}, "duration": "1h"})
    assert response.headers["Location"] == f"/api/silences/{response.json()['id']}"


async def test_create_with_an_explicit_window_in_the_future_is_pending(http):
    start = datetime.now(timezone.utc) + timedelta(hours=1)
    body = await create(
        http, duration=None, starts_at=start.isoformat(), ends_at=(start + timedelta(hours=3)).isoformat(),
        matchers=[{"name": "alertname", "op": "=~", "value": "Disk.*"}], created_by="deploy-bot",
    )
    assert body["status"] == "pending"
    assert datetime.fromisoformat(body["starts_at"]) == start
    assert body["created_by"] == "deploy-bot"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"duration": "2h"}, "matchers"),
        ({"matchers": [], "duration": "2h"}, "matchers"),
        ({"matchers": [{"name": "env", "op": "~=", "value": "x"}], "duration": "2h"}, "matchers"),
        ({"matchers": [{"name": "env", "op": "=~", "value": "(unclosed"}], "duration": "2h"}, "matchers"),
        ({"matchers": {"service": ""}, "duration": "2h"}, "matchers"),
        ({"matchers": {"env": "staging"}}, "duration"),
        ({"matchers": {"env": "staging"}, "duration": "forever"}, "duration"),
        ({"matchers": {"env": "staging"}, "duration": "100d"}, "duration"),
        ({"matchers": {"env": "staging"}, "ends_at": "2020-01-01T00:00:00Z"}, "ends_at"),
        ({"matchers": {"env": "staging"}, "ends_at": "tomorrow"}, "ends_at"),
        ({"matchers": {"env": "staging"}, "duration": "2h", "comment": 42}, "comment"),
        ({"matchers": {"env": "staging"}, "duration": "2h", "until": "later"}, "until"),
    ],
)
async def test_invalid_input_is_a_400_naming_the_field_and_stores_nothing(sidecar, http, body, field):
    response = await http.post("/api/silences", json=body)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid silence"
    assert field in response.json()["detail"]
    assert await silence_count(sidecar) == 0


async def test_a_bad_matcher_is_explained(http):
    response = await http.post("/api/silences", json={"matchers": [{"name": "env", "op": "~=", "value": "x"}], "duration": "2h"})
    assert response.json()["detail"]["matchers"] == "[0]: `~=` is not an operator: use one of =, !=, =~, !~"


@pytest.mark.parametrize("body", [b"{not json", b"[1]", b""])
async def test_a_body_that_is_not_a_json_object_is_a_400(http, body):
    response = await http.post("/api/silences", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["error"] == "invalid JSON"


async def test_get_returns_one_silence_and_404s_an_unknown_one(http):
    created = await create(http)
    assert (await http.get(f"/api/silences/{created['id']}")).json() == created
    for unknown in ("999999", "abc"):
        response = await http.get(f"/api/silences/{unknown}")
        assert response.status_code == 404 and response.json()["error"] == "silence not found"


async def test_the_list_shows_live_silences_and_all_1_adds_ended_ones(http):
    live = await create(http)
    ended = await create(http, matchers={"env": "qa"})
    await http.delete(f"/api/silences/{ended['id']}")
    assert [s["id"] for s in (await http.get("/api/silences")).json()["silences"]] == [live["id"]]
    everything = (await http.get("/api/silences", params={"all": "1"})).json()["silences"]
    assert {s["id"]: s["status"] for s in everything} == {live["id"]: "active", ended["id"]: "expired"}


async def test_a_bad_list_parameter_is_a_400_naming_it(http):
    response = await http.get("/api/silences", params={"all": "maybe"})
    assert response.status_code == 400 and "all" in response.json()["detail"]


async def test_delete_expires_the_silence_and_keeps_it_readable(sidecar, http):
    created = await create(http)
    response = await http.delete(f"/api/silences/{created['id']}")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["expired_by"]) == ("expired", "api")
    assert datetime.fromisoformat(body["ends_at"]) <= datetime.now(timezone.utc)
    assert (await http.get(f"/api/silences/{created['id']}")).json()["status"] == "expired"


async def test_deleting_an_ended_silence_is_a_409_and_an_unknown_one_a_404(http):
    created = await create(http)
    await http.delete(f"/api/silences/{created['id']}")
    again = await http.delete(f"/api/silences/{created['id']}")
    assert again.status_code == 409 and again.json()["error"] == "silence already ended"
    assert (await http.delete("/api/silences/999999")).status_code == 404


async def test_silence_changes_are_audited_as_the_api(sidecar, http):
    created = await create(http, comment="deploy")
    await http.delete(f"/api/silences/{created['id']}")
    entries = await audit.list_actions(sidecar.pool, target_type="silence", target_id=created["id"])
    assert [(e["actor"], e["action"]) for e in entries] == [("api", "silence.expire"), ("api", "silence.create")]
    assert entries[1]["details"]["matchers"] == [{"name": "env", "op": "=", "value": "staging"}]
    assert entries[1]["details"]["comment"] == "deploy"


# --- inhibition rules -----------------------------------------------------------------------------


async def test_an_inhibition_rule_is_created_listed_and_read(http):
    response = await http.post("/api/inhibitions", json=RULE)
    assert response.status_code == 201
    created = response.json()
    assert created["source_matchers"] == [{"name": "severity", "op": "=", "value": "critical"}]
    assert (created["name"], created["equal"], created["created_by"]) == (RULE["name"], ["service", "env"], "api")
    assert (await http.get("/api/inhibitions")).json()["inhibitions"] == [created]
    assert (await http.get(response.headers["Location"])).json() == created


@pytest.mark.parametrize(
    "change, field",
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 81}, "name"),
        ({"source_matchers": []}, "source_matchers"),
        ({"target_matchers": "severity=high"}, "target_matchers"),
        ({"equal": "service"}, "equal"),
        ({"equal": ["not a label"]}, "equal"),
        ({"mute": True}, "mute"),
    ],
)
async def test_an_invalid_rule_is_a_400_naming_the_field(sidecar, http, change, field):
    response = await http.post("/api/inhibitions", json={**RULE, **change})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid inhibition rule"
    assert field in response.json()["detail"]
    assert await sidecar.pool.fetchval("SELECT count(*) FROM inhibition_rules") == 0


async def test_deleting_a_rule_removes_it_and_is_audited(sidecar, http):
    created = (await http.post("/api/inhibitions", json=RULE)).json()
    assert (await http.delete(f"/api/inhibitions/{created['id']}")).status_code == 204
    assert (await http.get("/api/inhibitions")).json()["inhibitions"] == []
    assert (await http.delete(f"/api/inhibitions/{created['id']}")).status_code == 404
    entries = await audit.list_actions(sidecar.pool, target_type="inhibition_rule", target_id=created["id"])
    assert [e["action"] for e in entries] == ["inhibition.delete", "inhibition.create"]

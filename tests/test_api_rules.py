"""The admin API for routing rules (`/api/rules…`) of a running sidecar: auth, validation, CRUD,
order, audit."""

from __future__ import annotations

import httpx
import pytest

from bot.runtime import Runtime
from storage import audit
from tests.admin_api import http, sidecar  # noqa: F401 — fixtures, used by name


async def create(http: httpx.AsyncClient, **fields) -> dict:
    response = await http.post("/api/rules", json={"name": "api in prod", "channel": "#api-alerts", **fields})
    assert response.status_code == 201, response.text
    return response.json()


async def names_in_order(http: httpx.AsyncClient) -> list[str]:
    return [r["name"] for r in (await http.get("/api/rules")).json()["rules"]]


async def rule_count(sidecar: Runtime) -> int:
    return await sidecar.pool.fetchval("SELECT count(*) FROM routing_rules")


# --- authorization ------------------------------------------------------------------------------


async def test_no_token_is_a_401_and_creates_nothing(sidecar, http):
    response = await http.post("/api/rules", json={"name": "x", "channel": "#a"}, headers={"Authorization": ""})
    assert response.status_code == 401
    assert await rule_count(sidecar) == 0


# --- create and read ----------------------------------------------------------------------------


async def test_create_returns_the_rule_with_its_descriptions(http):
    response = await http.post(
        "/api/rules",
        json={"name": "api in prod", "envs": ["prod"], "min_severity": "high", "services": "api",
              "channel": "#api-alerts", "mention": "@here", "escalate_after_minutes": 15, "escalate_to": "U0LEAD",
              "escalation_levels": 2, "runbook_url": "https://wiki.example.com/api"},
    )
    assert response.status_code == 201
    body = response.json()
    assert response.headers["Location"] == f"/api/rules/{body['id']}"
    assert (body["position"], body["envs"], body["services"], body["created_by"]) == (1, ["production"], ["api"], "api")
    assert body["conditions"] == "env in production · severity ≥ high · service in api"
    assert body["actions"] == "→ #api-alerts, @here for high+, escalate to <@U0LEAD> after 15 min ×2, runbook"
    assert set(body) == {
        "id", "position", "name", "envs", "min_severity", "services", "sources", "tags", "continue_matching",
        "channel", "mention", "mention_min_severity", "escalate_after_minutes", "escalate_to", "escalation_levels",
        "runbook_url", "auto_close_minutes", "storm_threshold", "group_by", "escalation_policy_id", "created_by", "created_at", "updated_at", "managed_by", "conditions",
        "actions",
    }


async def test_get_returns_what_create_returned(http):
    created = await create(http)
    response = await http.get(f"/api/rules/{created['id']}")
    assert response.status_code == 200 and response.json() == created


async def test_the_list_is_in_evaluation_order_and_names_the_default_route(http):
    await create(http, name="first")
    await create(http, name="second")
    await create(http, name="urgent", position=1)
    body = (await http.get("/api/rules")).json()
    assert [(r["position"], r["name"]) for r in body["rules"]] == [(1, "urgent"), (2, "first"), (3, "second")]
    assert body["default_route"]["channel"] == "#ops-alerts"


@pytest.mark.parametrize(
    "field, value",
    [
        ("name", ""),
        ("channel", "api alerts"),
        ("sources", ["pagerduty"]),
        ("min_severity", "urgent"),
        ("mention", "bob"),
        ("escalate_after_minutes", 20000),
        ("runbook_url", "javascript:alert(1)"),
        ("tags", ["team"]),
        ("position", 0),
        ("colour", "red"),
    ],
)
async def test_invalid_input_is_a_400_naming_the_field_and_creates_nothing(sidecar, http, field, value):
    response = await http.post("/api/rules", json={"name": "ok", "channel": "#a", field: value})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid rule"
    assert set(response.json()["detail"]) == {field}
    assert await rule_count(sidecar) == 0


async def test_a_body_that_is_not_a_json_object_is_a_400(http):
    response = await http.post("/api/rules", content=b"[1]", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["error"] == "invalid JSON"


@pytest.mark.parametrize("rule_id", ["999999", "abc", "-1"])
async def test_an_unknown_id_is_a_404(http, rule_id):
    for method, path in (("GET", ""), ("PUT", ""), ("DELETE", ""), ("POST", "/move")):
        response = await http.request(method, f"/api/rules/{rule_id}{path}", json={"position": 1})
        assert response.status_code == 404, (method, path)
        assert response.json()["error"] == "rule not found"


# --- update -------------------------------------------------------------------------------------


async def test_a_partial_update_changes_only_the_given_fields(http):
    created = await create(http, services="api", mention="@here")
    response = await http.put(f"/api/rules/{created['id']}", json={"channel": "C0API"})
    assert response.status_code == 200
    body = response.json()
    assert (body["channel"], body["services"], body["mention"]) == ("C0API", ["api"], "@here")
    assert body["actions"].startswith("→ <#C0API>")


async def test_a_get_representation_can_be_put_back(http):
    created = await create(http)
    response = await http.put(f"/api/rules/{created['id']}", json={**created, "min_severity": "critical"})
    assert response.status_code == 200 and response.json()["min_severity"] == "critical"


async def test_an_invalid_update_is_a_400_and_changes_nothing(http):
    created = await create(http)
    response = await http.put(f"/api/rules/{created['id']}", json={"name": "renamed", "escalate_to": "U0LEAD"})
    assert response.status_code == 400
    assert set(response.json()["detail"]) == {"escalate_after_minutes"}
    assert (await http.get(f"/api/rules/{created['id']}")).json()["name"] == "api in prod"


async def test_the_position_is_changed_by_move_not_by_put(http):
    created = await create(http)
    await create(http, name="second")
    response = await http.put(f"/api/rules/{created['id']}", json={"position": 2})
    assert response.status_code == 400
    assert "/move" in response.json()["detail"]["position"]


# --- move and delete ----------------------------------------------------------------------------


async def test_move_puts_the_rule_at_the_position_and_shifts_the_others(http):
    for name in ("a", "b", "c"):
        await create(http, name=name)
    c = (await http.get("/api/rules")).json()["rules"][2]
    response = await http.post(f"/api/rules/{c['id']}/move", json={"position": 1})
    assert response.status_code == 200 and response.json()["position"] == 1
    assert await names_in_order(http) == ["c", "a", "b"]


async def test_a_move_past_the_end_makes_the_rule_last(http):
    first = await create(http, name="a")
    await create(http, name="b")
    assert (await http.post(f"/api/rules/{first['id']}/move", json={"position": 40})).json()["position"] == 2
    assert await names_in_order(http) == ["b", "a"]


@pytest.mark.parametrize("body", [{}, {"position": "1"}, {"position": 0}, {"position": True}, {"position": 1, "x": 1}])
async def test_a_bad_move_is_a_400(http, body):
    created = await create(http)
    response = await http.post(f"/api/rules/{created['id']}/move", json=body)
    assert response.status_code == 400 and response.json()["error"] == "invalid move"


async def test_delete_is_a_204_and_the_rest_close_up(http):
    a = await create(http, name="a")
    await create(http, name="b")
    response = await http.delete(f"/api/rules/{a['id']}")
    assert response.status_code == 204
    assert (await http.get(f"/api/rules/{a['id']}")).status_code == 404
    assert [(r["position"], r["name"]) for r in (await http.get("/api/rules")).json()["rules"]] == [(1, "b")]


# --- audit --------------------------------------------------------------------------------------


async def test_every_change_is_audited_as_the_api(sidecar, http):
    created = await create(http)
    await create(http, name="other")
    await http.put(f"/api/rules/{created['id']}", json={"min_severity": "high"})
    await http.post(f"/api/rules/{created['id']}/move", json={"position": 2})
    await http.delete(f"/api/rules/{created['id']}")
    actions = await audit.list_actions(sidecar.pool, target_type="rule", target_id=created["id"])
    assert [a["action"] for a in actions] == ["rule.delete", "rule.move", "rule.update", "rule.create"]
    assert {a["actor"] for a in actions} == {"api"}
    delete, move, update, create_ = actions
    assert update["details"] == {"min_severity": {"from": None, "to": "high"}}
    assert move["details"] == {"name": "api in prod", "from": 1, "to": 2}
    assert create_["details"]["channel"] == "#api-alerts" and delete["details"]["name"] == "api in prod"


async def test_an_update_or_move_that_changes_nothing_writes_no_audit_row(sidecar, http):
    created = await create(http)
    await http.put(f"/api/rules/{created['id']}", json={"name": "api in prod"})
    await http.post(f"/api/rules/{created['id']}/move", json={"position": 1})
    actions = await audit.list_actions(sidecar.pool, target_type="rule", target_id=created["id"])
    assert [a["action"] for a in actions] == ["rule.create"]


async def test_the_api_is_a_json_503_while_the_database_is_down(sidecar, http):
    await sidecar.pool.close()
    response = await http.get("/api/rules")
    assert response.status_code == 503

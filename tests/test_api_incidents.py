"""The incidents API against a running Pulser and the sandbox: filters and cursor paging over
HTTP, the detail with its timeline, each action audited as `api` and shown in the incident's
Slack message in place, the seed's alias routes, `/api/alerts`, `/api/dashboard/overview`, and
bad input for every endpoint (400 saying what to fix, 404, 409)."""

from __future__ import annotations

import json

import httpx
import pytest

from alerts.oncall.validation import validate_schedule
from storage import audit, incidents, schedules
from tests.conftest import eventually, make_settings
from tests.incident_seeds import ALERTS, alert, inbox_fixture, open_incident, pipeline

TOKEN = "t0ken-for-tests"


@pytest.fixture
def settings(database_url, sandbox):
    sandbox.add_channel(ALERTS, "ops-alerts")
    sandbox.set_user("U0BOB", name="bob")
    return make_settings(
        DATABASE_URL=database_url, SLACK_BOT_TOKEN="xoxb-test-bot", SLACK_APP_TOKEN="xapp-test-app",
        SLACK_API_URL=sandbox.api_url, SLACK_CHANNEL=ALERTS, ALERT_UPDATE_DEBOUNCE_SECONDS="0",
        PULSER_ADMIN_TOKEN=TOKEN,
    )  # fmt: skip


@pytest.fixture
async def http(pulser):
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{pulser.http_port}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    ) as client:
        yield client


async def posted_message(pulser, sandbox, incident_id: int) -> dict:
    async def stored():
        for m in await incidents.messages_for(pulser.pool, incident_id, escalation_posts=False):
            if m["slack_ts"]:
                return sandbox.state.find_message(m["slack_channel"], m["slack_ts"])
        return None

    return await eventually(stored, timeout=30)


def shown(message: dict) -> str:
    return message.get("text", "") + json.dumps(message.get("attachments", []), ensure_ascii=False)


async def in_slack(pulser, sandbox, incident_id: int, text: str) -> None:
    message = await posted_message(pulser, sandbox, incident_id)
    await eventually(lambda: text in shown(sandbox.state.find_message(message["channel"], message["ts"])), timeout=30)


# --- listing ------------------------------------------------------------------------------------------------


async def test_the_list_takes_the_inbox_filters_as_query_parameters(pulser, http):
    ids = await inbox_fixture(pulser.pool)
    response = await http.get("/api/incidents?status=open&env=prod&severity>=high")
    assert response.status_code == 200, response.text
    body = response.json()
    assert {i["id"] for i in body["incidents"]} == {ids["checkout"], ids["db"]}
    assert body["filters"] == {"status": ["open"], "env": ["prod"], "min_severity": "high"}
    db = next(i for i in body["incidents"] if i["id"] == ids["db"])
    assert (db["state"], db["assignee"], db["url"]) == ("acknowledged", "U0ALICE", f"/api/incidents/{ids['db']}")
    tagged = await http.get("/api/incidents", params={"tag": "team=payments", "min_severity": "high"})
    assert [i["id"] for i in tagged.json()["incidents"]] == [ids["checkout"]]


async def test_cursor_pagination_walks_every_incident_once(pulser, http):
    opened = [await open_incident(pulser.pool, alert(f"svc-{n}")) for n in range(7)]
    seen, cursor = [], None
    while True:
        response = await http.get("/api/incidents", params={"limit": 3, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200
        seen += [i["id"] for i in response.json()["incidents"]]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(opened, reverse=True)
    oldest = await http.get("/api/incidents", params={"sort": "oldest", "limit": 2})
    assert [i["id"] for i in oldest.json()["incidents"]] == sorted(opened)[:2]


BAD_LIST_QUERIES = [
    ("colour=red", "colour"), ("status=burning", "status"), ("limit=0", "limit"), ("limit=500", "limit"),
    ("cursor=not-ours", "cursor"), ("assignee=@me", "assignee"), ("since=forever", "since"), ("sort=random", "sort"),
    ("env=%00", "env"), ("limit=%C2%B2", "limit"),
]  # fmt: skip


async def test_a_bad_list_query_is_a_400_naming_the_parameter(pulser, http):
    for query, field in BAD_LIST_QUERIES:
        response = await http.get(f"/api/incidents?{query}")
        assert response.status_code == 400, (query, response.text)
        assert response.json()["error"] == "invalid filter" and field in response.json()["detail"], query


async def test_the_alert_groups_alias_lists_the_same(pulser, http):
    await open_incident(pulser.pool, alert("checkout"))
    assert (await http.get("/api/alert-groups")).json()["incidents"] == (await http.get("/api/incidents")).json()["incidents"]


async def test_without_the_token_the_api_is_closed(pulser, http):
    response = await http.get("/api/incidents", headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401


# --- detail -------------------------------------------------------------------------------------------------


async def test_the_detail_has_the_timeline_and_the_occurrences(pulser, sandbox, http):
    incident_id = await open_incident(pulser.pool, alert("checkout"))
    await pipeline(pulser.pool).ingest(alert("checkout"))
    await posted_message(pulser, sandbox, incident_id)
    body = (await http.get(f"/api/incidents/{incident_id}")).json()
    assert {e["kind"] for e in body["timeline"]} >= {"opened", "posted", "repeats"}
    assert body["occurrence_total"] == 2 and body["occurrences"][0]["title"] == "checkout is failing"
    assert (await http.get(f"/api/alert-groups/{incident_id}")).json()["id"] == incident_id


async def test_an_unknown_incident_is_a_404(pulser, http):
    for method, path in (("GET", "/api/incidents/999999"), ("GET", "/api/incidents/abc"), ("POST", "/api/incidents/999999/ack"),
                         ("POST", "/api/alert-groups/999999/resolve")):  # fmt: skip
        response = await http.request(method, path)
        assert response.status_code == 404 and response.json()["error"] == "incident not found", path
    notes = await http.post("/api/incidents/999999/notes", json={"text": "hello"})
    assert notes.status_code == 404


# --- actions update Slack in place ----------------------------------------------------------------------


async def test_ack_is_audited_as_api_and_updates_the_slack_message(pulser, sandbox, http):
    incident_id = await open_incident(pulser.pool, alert("checkout"))
    await posted_message(pulser, sandbox, incident_id)
    response = await http.post(f"/api/incidents/{incident_id}/ack")
    assert response.status_code == 200 and response.json()["incident"]["state"] == "acknowledged"
    await in_slack(pulser, sandbox, incident_id, "Acked by the API")
    [entry] = await audit.list_actions(pulser.pool, target_type="incident", target_id=incident_id)
    assert (entry["actor"], entry["action"]) == ("api", "incident.ack")
    again = await http.post(f"/api/incidents/{incident_id}/ack")
    assert again.status_code == 409 and again.json() == {"error": "cannot acknowledge", "detail": "Already acknowledged by the API."}


async def test_snooze_updates_the_slack_message(pulser, sandbox, http):
    incident_id = await open_incident(pulser.pool, alert("checkout"))
    await posted_message(pulser, sandbox, incident_id)
    response = await http.post(f"/api/alert-groups/{incident_id}/snooze", json={"minutes": 60})
    assert response.status_code == 200 and response.json()["incident"]["state"] == "snoozed"
    await in_slack(pulser, sandbox, incident_id, "Snoozed by the API until")


async def test_a_wrong_snooze_duration_is_answered_with_the_ones_offered(pulser, http):
    incident_id = await open_incident(pulser.pool, alert("checkout"))
    response = await http.post(f"/api/incidents/{incident_id}/snooze", json={"minutes": 45})
    assert response.json()["detail"] == {"minutes": "must be one of 30, 60, 240, 1440"}


async def test_a_bad_snooze_is_a_400_and_changes_nothing(pulser, http):
    incident_id = await open_incident(pulser.pool, alert("checkout"))
    for body in ({}, {"minutes": 45}, {"minutes": "60"}, {"minutes": True}, {"minutes": 60, "why": "x"}, [60]):
        response = await http.post(f"/api/incidents/{incident_id}/snooze", json=body)
        assert response.status_code == 400 and response.json()["error"] in ("invalid request", "invalid JSON"), body
    assert (await incidents.get_incident(pulser.pool, incident_id))["snoozed_until"] is None


async def test_resolve_updates_the_slack_message_and_a_second_resolve_is_a_409(pulser, sandbox, http):
    incident_id = await open_incident(pulser.pool, alert("checkout"))
    await posted_message(pulser, sandbox, incident_id)
    assert (await http.post(f"/api/alert-groups/{incident_id}/resolve", json={})).status_code == 200
    await in_slack(pulser, sandbox, incident_id, "Resolved by the API")
    again = await http.post(f"/api/incidents/{incident_id}/resolve")
    assert again.status_code == 409 and again.json()["error"] == "cannot resolve"
    snooze = await http.post(f"/api/incidents/{incident_id}/snooze", json={"minutes": 30})
    assert snooze.status_code == 409


async def test_ack_and_resolve_take_no_body(pulser, http):
    incident_id = await open_incident(pulser.pool, alert("checkout"))
    response = await http.post(f"/api/incidents/{incident_id}/ack", json={"user": "U0BOB"})
    assert response.status_code == 400 and "user" in response.json()["detail"]
    assert (await http.post(f"/api/incidents/{incident_id}/resolve", content=b"{nope")).status_code == 400
    assert (await incidents.get_incident(pulser.pool, incident_id))["status"] == "firing"


async def test_assign_updates_the_slack_message_and_says_so_in_the_thread(pulser, sandbox, http):
    incident_id = await open_incident(pulser.pool, alert("checkout"))
    message = await posted_message(pulser, sandbox, incident_id)
    response = await http.post(f"/api/incidents/{incident_id}/assign", json={"assignee": "U0BOB"})
    assert response.status_code == 200 and response.json()["incident"]["assignee"] == "U0BOB"
    await in_slack(pulser, sandbox, incident_id, "Investigating: <@U0BOB>")
    reply = await eventually(lambda: [m for m in sandbox.messages[ALERTS] if m.get("thread_ts") == message["ts"]], timeout=30)
    assert "Assigned to <@U0BOB> by the API" in reply[0]["text"]
    same = await http.post(f"/api/incidents/{incident_id}/assign", json={"assignee": "U0BOB"})
    assert same.status_code == 200 and same.json()["changed"] is False


async def test_a_bad_assignee_is_a_400_and_changes_nothing(pulser, http):
    incident_id = await open_incident(pulser.pool, alert("checkout"))
    for body in ({}, {"assignee": "bob"}, {"assignee": 7}, {"assignee": "U0BOB", "note": "x"}):
        response = await http.post(f"/api/incidents/{incident_id}/assign", json=body)
        assert response.status_code == 400 and response.json()["error"] == "invalid request", body
    assert (await incidents.get_incident(pulser.pool, incident_id))["investigator"] is None


async def test_a_note_is_created_posted_in_the_thread_and_in_the_timeline(pulser, sandbox, http):
    incident_id = await open_incident(pulser.pool, alert("checkout"))
    message = await posted_message(pulser, sandbox, incident_id)
    response = await http.post(f"/api/incidents/{incident_id}/notes", json={"text": "Failing over to the replica."})
    assert response.status_code == 201 and response.json()["note"]["author"] == "api"
    reply = await eventually(lambda: [m for m in sandbox.messages[ALERTS] if m.get("thread_ts") == message["ts"]], timeout=30)
    assert "Note from the API" in reply[0]["text"] and "Failing over" in reply[0]["text"]
    timeline = (await http.get(f"/api/incidents/{incident_id}")).json()["timeline"]
    assert any(e["kind"] == "note" and e["actor"] == "api" for e in timeline)


async def test_a_bad_note_is_a_400_naming_the_field_and_stores_nothing(pulser, http):
    incident_id = await open_incident(pulser.pool, alert("checkout"))
    cases = [({}, "text"), ({"text": ""}, "text"), ({"text": " \n "}, "text"), ({"text": "x" * 3001}, "text"),
             ({"text": 5}, "text"), ({"text": "ok", "by": "me"}, "by")]  # fmt: skip
    for body, field in cases:
        response = await http.post(f"/api/incidents/{incident_id}/notes", json=body)
        assert response.status_code == 400 and field in response.json()["detail"], body
    assert await pulser.pool.fetchval("SELECT count(*) FROM incident_notes") == 0


# --- alerts and the dashboard ----------------------------------------------------------------------------------


async def test_alerts_lists_occurrences_with_filters_and_a_cursor(pulser, http):
    await inbox_fixture(pulser.pool)
    await pipeline(pulser.pool).ingest(alert("checkout", tags={"team": "payments"}))
    everything = (await http.get("/api/alerts")).json()["alerts"]
    assert len(everything) == 7 and everything[0]["title"] == "checkout is failing"
    prod_high = (await http.get("/api/alerts?env=prod&severity>=high")).json()["alerts"]
    assert sorted(a["fingerprint"] for a in prod_high) == ["checkout", "checkout", "db"]
    first = (await http.get("/api/alerts?limit=4")).json()
    rest = (await http.get(f"/api/alerts?limit=4&cursor={first['next_cursor']}")).json()
    assert [a["id"] for a in first["alerts"] + rest["alerts"]] == [a["id"] for a in everything]
    assert rest["next_cursor"] is None


async def test_a_bad_alerts_query_is_a_400_naming_the_parameter(pulser, http):
    cases = [("status=open", "status"), ("incident_id=x", "incident_id"), ("cursor=zz", "cursor"), ("sort=oldest", "sort"),
             ("assignee=U0BOB", "assignee"), ("team=x", "team"), ("limit=-1", "limit")]  # fmt: skip
    for query, field in cases:
        response = await http.get(f"/api/alerts?{query}")
        assert response.status_code == 400 and field in response.json()["detail"], (query, response.text)


async def test_the_dashboard_overview_has_the_app_home_figures(pulser, http):
    await inbox_fixture(pulser.pool)
    body = (await http.get("/api/dashboard/overview")).json()
    assert body["alerts"]["alerts"] == 5 and body["alerts"]["incidents_opened"] == 5, "search fired two days ago"
    assert body["incidents"]["total"] == 5 and body["incidents"]["unacked"] == 4
    assert body["quiet"]["snoozed_incidents"] == 1 and set(body["delivery"]["webhooks"]) >= {"sentry", "github"}


async def test_the_dashboard_overview_says_who_is_on_call(pulser, http):
    spec = validate_schedule({"name": "Primary", "time_zone": "UTC", "layers": [
        {"members": ["U0ADA"], "shift": "1 week", "handoff": "09:00", "start": "2026-01-05"}]})
    await schedules.create_schedule(pulser.pool, name=spec.name, time_zone=spec.time_zone, feed_token="o" * 32,
                                    layers=[layer.as_row() for layer in spec.layers], created_by="test")
    [standing] = (await http.get("/api/dashboard/overview")).json()["on_call"]
    assert (standing["name"], standing["now"], standing["until"]) == ("Primary", ["U0ADA"], None)

"""`/api/escalation-policies` and `/api/outbound-channels` over HTTP: what they answer, and that bad
input gets a 4xx naming what to fix and changes nothing. A lone sidecar on a real Postgres."""

from __future__ import annotations

import pytest

from tests.open_sidecar import ADMIN, http, sidecar  # noqa: F401 — fixtures, used by name

WEBHOOK = {"name": "receiver", "kind": "webhook",
           "settings": {"url": "http://127.0.0.1:9/hook", "signing_secret": "whsec-do-not-show"}}
POLICY = {"name": "paging", "steps": [{"kind": "outbound", "channel": "receiver"}, {"kind": "wait", "wait_minutes": 5},
                                      {"kind": "user_group", "target": "S0OPS", "min_severity": "critical"}]}


@pytest.fixture
async def channel_id(http) -> int:
    answer = await http.post("/api/outbound-channels", json=WEBHOOK, headers=ADMIN)
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


async def counts(sidecar) -> tuple[int, ...]:
    return tuple([await sidecar.pool.fetchval(f"SELECT count(*) FROM {t}")
                  for t in ("outbound_channels", "escalation_policies", "escalation_steps")])


async def test_a_channel_is_shown_with_its_secrets_as_set_never_their_value(http, channel_id):
    shown = (await http.get(f"/api/outbound-channels/{channel_id}", headers=ADMIN)).json()
    assert shown["settings"]["signing_secret"] == "(set)" and "whsec-do-not-show" not in str(shown)
    listed = (await http.get("/api/outbound-channels", headers=ADMIN)).json()
    assert "whsec-do-not-show" not in str(listed) and listed["kinds"]["webhook"]["secret_fields"]


async def test_a_channel_with_bad_settings_is_a_400_naming_the_field_and_stores_nothing(http, sidecar):
    answer = await http.post("/api/outbound-channels", headers=ADMIN, json={
        "name": "mail", "kind": "email", "settings": {"host": "smtp.example.com", "from": "not-an-address", "port": 0}})
    assert answer.status_code == 400 and {"from", "port"} <= set(answer.json()["detail"])
    assert await counts(sidecar) == (0, 0, 0)


async def test_an_unknown_kind_is_a_400_that_lists_the_kinds(http):
    answer = await http.post("/api/outbound-channels", headers=ADMIN, json={"name": "x", "kind": "fax", "settings": {}})
    assert answer.status_code == 400 and "pagerduty" in answer.json()["detail"]["kind"]


async def test_a_policy_is_created_with_its_steps_described(http, channel_id):
    answer = await http.post("/api/escalation-policies", json=POLICY, headers=ADMIN)
    assert answer.status_code == 201, answer.text
    steps = answer.json()["steps"]
    assert [s["description"] for s in steps] == [
        "send to receiver", "wait 5 min", "mention <!subteam^S0OPS> in the incident's channels (only critical and above)",
    ]
    assert answer.headers["Location"] == f"/api/escalation-policies/{answer.json()['id']}"


async def test_a_bad_step_is_a_400_naming_it_and_stores_nothing(http, sidecar, channel_id):
    bad = {"name": "paging", "steps": [{"kind": "outbound", "channel": "nope"}, {"kind": "wait", "wait_minutes": 0}]}
    answer = await http.post("/api/escalation-policies", json=bad, headers=ADMIN)
    assert answer.status_code == 400
    assert answer.json()["detail"] == {
        "steps[0].channel": "an outbound channel's name or id (known: receiver)",
        "steps[1].wait_minutes": "required: minutes from 1 to 1440",
    }
    assert await counts(sidecar) == (1, 0, 0)


async def test_a_taken_policy_name_is_a_409(http, channel_id):
    assert (await http.post("/api/escalation-policies", json=POLICY, headers=ADMIN)).status_code == 201
    again = await http.post("/api/escalation-policies", json=POLICY, headers=ADMIN)
    assert again.status_code == 409 and "pick another name" in again.json()["detail"]


async def test_a_channel_a_policy_sends_to_cannot_be_deleted(http, sidecar, channel_id):
    await http.post("/api/escalation-policies", json=POLICY, headers=ADMIN)
    answer = await http.delete(f"/api/outbound-channels/{channel_id}", headers=ADMIN)
    assert answer.status_code == 409 and "paging" in answer.json()["detail"]
    assert await counts(sidecar) == (1, 1, 3)


async def test_a_rule_naming_an_unknown_policy_is_a_400(http):
    answer = await http.post("/api/rules", headers=ADMIN, json={"name": "r", "channel": "#ops", "escalation_policy_id": 42})
    assert answer.status_code == 400 and "no escalation policy has id 42" in answer.json()["detail"]["escalation_policy_id"]


async def test_send_test_queues_a_delivery_the_log_shows(http, channel_id):
    queued = await http.post(f"/api/outbound-channels/{channel_id}/test", headers=ADMIN)
    assert queued.status_code == 202
    [delivery] = (await http.get(f"/api/outbound-channels/{channel_id}/deliveries", headers=ADMIN)).json()["deliveries"]
    assert (delivery["id"], delivery["action"], delivery["status"]) == (queued.json()["delivery_id"], "test", "pending")


async def test_an_unknown_id_is_a_404(http):
    for path in ("/api/escalation-policies/999", "/api/outbound-channels/999", "/api/outbound-channels/abc"):
        answer = await http.get(path, headers=ADMIN)
        assert answer.status_code == 404 and answer.json()["error"] == "not found", path

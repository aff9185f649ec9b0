"""People's notification rules: the checks (`alerts.escalation.people.parse_rules`), the API of a
running sidecar (`/api/users/{user_id}/notification-rules`, `…/test-page`) and the test page it
queues — one delivery per method, to the right recipient, through the outbound outbox."""

from __future__ import annotations

import httpx
import pytest

from alerts.escalation.people import RulesValidationError, parse_rules
from bot.runtime import Runtime
from storage import audit, outbound
from tests.admin_api import http, sidecar  # noqa: F401 — fixtures, used by name

ADA = "U0ADA"
RULES = "/api/users/U0ADA/notification-rules"


def rules(*pairs: tuple[str, int]) -> list[dict]:
    return [{"method": method, "delay_minutes": delay} for method, delay in pairs]


async def deliveries(sidecar: Runtime) -> list[dict]:
    rows = await sidecar.pool.fetch("SELECT method, channel_id, recipient, action, status, last_error FROM outbound_deliveries ORDER BY id")
    return [dict(r) for r in rows]


# --- checks ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, field",
    [
        ({"contacts": {"phone": "0176 1234567"}}, "contacts.phone"),
        ({"contacts": {"email": "ada at example"}}, "contacts.email"),
        ({"rules": rules(("pager", 0))}, "rules[0].method"),
        ({"rules": rules(("slack_dm", 1441))}, "rules[0].delay_minutes"),
        ({"rules": rules(("slack_dm", 10), ("slack_dm", 5))}, "rules[1].delay_minutes"),
        ({"rules": rules(*[("slack_dm", i) for i in range(11)])}, "rules"),
        ({"rules": rules(("slack_dm", 0), ("email", 10))}, "contacts.email"),
        ({"rules": [{"method": "slack_dm", "delay_minutes": True}]}, "rules[0].delay_minutes"),
        ({"rule": []}, "rule"),
    ],
)
def test_bad_input_is_refused_naming_the_field(body, field):
    with pytest.raises(RulesValidationError) as caught:
        parse_rules(body)
    assert field in caught.value.errors


def test_a_phone_typed_with_spaces_is_stored_in_e164():
    parsed = parse_rules({"contacts": {"phone": "+49 176 123-4567"}, "rules": rules(("sms", 0))})
    assert parsed.phone == "+491761234567"


# --- the API ---------------------------------------------------------------------------------------


async def test_a_person_without_rules_is_reached_by_the_default(http):
    response = await http.get(RULES)
    assert response.status_code == 200
    body = response.json()
    assert (body["rules"], body["uses_default"], body["contacts"]) == ([], True, {"email": None, "phone": None})


async def test_put_stores_contacts_and_rules_and_audits_the_change(sidecar, http):
    body = {"contacts": {"email": "ada@example.com", "phone": "+14155550123"},
            "rules": rules(("slack_dm", 0), ("sms", 5), ("email", 10))}
    response = await http.put(RULES, json=body)
    assert response.status_code == 200, response.text
    assert (await http.get(RULES)).json() | {"updated_at": None} == {
        "user_id": ADA, **body, "uses_default": False, "updated_at": None,
    }
    (entry,) = await audit.list_actions(sidecar.pool, target_type="user", target_id=ADA)
    assert (entry["actor"], entry["action"]) == ("api", "notification_rules.update")
    assert entry["details"]["rules"] == ["Slack DM at once", "SMS after 5 min", "E-mail after 10 min"]


async def test_an_sms_rule_without_a_phone_is_a_400_that_changes_nothing(http):
    response = await http.put(RULES, json={"rules": rules(("sms", 0))})
    assert response.status_code == 400
    assert "rule 1 sends an SMS" in response.json()["detail"]["contacts.phone"]
    assert (await http.get(RULES)).json()["uses_default"] is True


async def test_a_put_that_leaves_out_contacts_keeps_them(http):
    await http.put(RULES, json={"contacts": {"phone": "+14155550123"}, "rules": rules(("sms", 0))})
    response = await http.put(RULES, json={"rules": rules(("slack_dm", 0), ("sms", 3))})
    assert response.status_code == 200 and response.json()["contacts"]["phone"] == "+14155550123"


async def test_a_user_id_that_is_not_slacks_is_a_400(http):
    response = await http.get("/api/users/ada/notification-rules")
    assert response.status_code == 400 and "user_id" in response.json()["detail"]


# --- test pages ------------------------------------------------------------------------------------


async def test_a_test_page_queues_one_delivery_per_method_to_the_right_recipient(sidecar, http):
    sms = await outbound.create_channel(sidecar.pool, name="sms", kind="twilio", created_by="test", settings={
        "account_sid": "AC" + "0" * 32, "auth_token": "secret", "from_number": "+14155550100"})
    mail = await outbound.create_channel(sidecar.pool, name="mail", kind="email", created_by="test", settings={
        "host": "smtp.example.com", "from": "pulser@example.com"})
    await http.put(RULES, json={"contacts": {"email": "ada@example.com", "phone": "+14155550123"},
                                "rules": rules(("slack_dm", 0), ("sms", 5), ("slack_dm", 7), ("email", 10))})
    response = await http.post("/api/users/U0ADA/test-page")
    assert response.status_code == 202
    assert len(response.json()["delivery_ids"]) == 3, "one per distinct method"
    assert [(d["method"], d["channel_id"], d["recipient"], d["action"], d["status"]) for d in await deliveries(sidecar)] == [
        ("slack_dm", None, ADA, "test", "pending"),
        ("sms", sms["id"], "+14155550123", "test", "pending"),
        ("email", mail["id"], "ada@example.com", "test", "pending"),
    ]


async def test_each_request_sends_again(http):
    first = (await http.post("/api/users/U0ADA/test-page")).json()["delivery_ids"]
    second = (await http.post("/api/users/U0ADA/test-page")).json()["delivery_ids"]
    assert len(first) == len(second) == 1 and first != second


async def test_a_method_without_a_transport_is_failed_at_once_saying_why(sidecar, http):
    await http.put(RULES, json={"contacts": {"phone": "+14155550123"}, "rules": rules(("sms", 0))})
    (page,) = (await http.post("/api/users/U0ADA/test-page")).json()["deliveries"]
    assert (page["method"], page["status"]) == ("sms", "failed")
    assert "no Twilio channel is set up" in page["problem"]


async def test_a_test_page_takes_no_body(http: httpx.AsyncClient):
    response = await http.post("/api/users/U0ADA/test-page", json={"now": True})
    assert response.status_code == 400

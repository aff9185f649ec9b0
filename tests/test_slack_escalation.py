"""Paging from Slack, end to end through the sandbox with the real Bolt app over Socket Mode and a
real Postgres: `/pulser me` (a person's rules and Send test page), the policy form's steps syntax,
who may save a policy, and `/pulser channels`' Send test and e-mail check."""

from __future__ import annotations

import json

import pytest

from alerts.escalation import admin
from alerts.escalation.step_syntax import StepSyntaxError, parse_steps, steps_text
from blocks.escalation import (
    CHANNEL_ADD,
    CHANNEL_CALLBACK,
    CHANNEL_TEST,
    PERSON_CALLBACK,
    PERSON_TEST,
    POLICY_ADD,
    POLICY_CALLBACK,
    setting_block_id,
)
from storage import escalation, outbound
from tests.conftest import eventually

ADMIN = "U0ADA"  # a workspace admin, as users.info says
MEMBER = "U0BOB"  # an ordinary member


@pytest.fixture(autouse=True)
def people(sandbox):
    sandbox.set_user(ADMIN, name="ada", is_admin=True)
    sandbox.set_user(MEMBER, name="bob")


def text(value: str | None) -> dict:
    return {"type": "plain_text_input", "value": value}


def select(value: str | None) -> dict:
    return {"type": "static_select", "selected_option": {"value": value} if value else None}


def person_form(email: str = "", phone: str = "", rows: tuple[tuple[str, str], ...] = ()) -> dict:
    """`view.state.values` of the /pulser me form: five rule rows, the first ones filled."""
    values = {"email": {"email": text(email or None)}, "phone": {"phone": text(phone or None)}}
    for row in range(1, 6):
        method, delay = rows[row - 1] if row <= len(rows) else (None, None)
        values[f"rule_{row}_method"] = {f"rule_{row}_method": select(method)}
        values[f"rule_{row}_delay"] = {f"rule_{row}_delay": text(delay)}
    return values


def policy_form(name: str, steps: str, repeat: str = "0") -> dict:
    return {"name": {"name": text(name)}, "repeat": {"repeat": select(repeat)}, "steps": {"steps": text(steps)}}


async def open_modal(sandbox, send) -> dict:
    """Do what opens a modal (a command, a click); the view Pulser opened."""
    before = len(sandbox.calls_to("views.open"))
    await send()
    await sandbox.wait_for_call("views.open", count=before + 1)
    return sandbox.views[max(sandbox.views)]


async def submit(sandbox, view: dict, values: dict, user: str) -> dict:
    return await sandbox.send_view_submission(view["callback_id"], values, user_id=user, view_id=view["id"])


async def click(sandbox, action_id: str, value: str, user: str = ADMIN) -> dict:
    """Click a button of an ephemeral; the body of the response_url post it caused."""
    before = len(sandbox.response_url_posts)
    await sandbox.send_block_action(action_id, value=value, user_id=user, channel_id="C0OPS")
    await eventually(lambda: len(sandbox.response_url_posts) > before, timeout=30)
    return sandbox.response_url_posts[before][1]


def buttons(message: dict) -> dict[str, list[str]]:
    """action_id → the values of its buttons in an ephemeral list."""
    blocks = message.get("blocks") or []
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    found: dict[str, list[str]] = {}
    for block in blocks:
        for element in block.get("elements", []) if block["type"] == "actions" else []:
            found.setdefault(element["action_id"], []).append(element.get("value"))
    return found


# --- /pulser me ------------------------------------------------------------------------------------


async def test_pulser_me_saves_the_persons_rules_and_offers_a_test_page(pulser, sandbox):
    view = await open_modal(sandbox, lambda: sandbox.send_slash_command(text="me", user_id=MEMBER))
    assert view["callback_id"] == PERSON_CALLBACK
    form = person_form(email="bob@example.com", phone="+1 415 555 0123",
                       rows=(("slack_dm", ""), ("sms", "5"), ("email", "10")))
    ack = await submit(sandbox, view, form, MEMBER)
    assert not ack.get("payload"), "a bare ack closes the modal"
    assert await escalation.notification_rules(pulser.pool, MEMBER) == [
        {"position": 1, "method": "slack_dm", "delay_minutes": 0},
        {"position": 2, "method": "sms", "delay_minutes": 5},
        {"position": 3, "method": "email", "delay_minutes": 10},
    ]
    assert (await escalation.contacts(pulser.pool, MEMBER))["phone"] == "+14155550123"
    (call,) = await sandbox.wait_for_call("chat.postEphemeral", timeout=30)
    assert call.params["user"] == MEMBER and "SMS after 5 min to +14155550123" in json.dumps(call.params)
    assert buttons(call.params)[PERSON_TEST] == [MEMBER]


async def test_a_bad_phone_is_an_error_on_the_phone_field_and_saves_nothing(pulser, sandbox):
    view = await open_modal(sandbox, lambda: sandbox.send_slash_command(text="me", user_id=MEMBER))
    ack = await submit(sandbox, view, person_form(phone="0176 1234567", rows=(("sms", "0"),)), MEMBER)
    assert ack["payload"]["response_action"] == "errors"
    assert set(ack["payload"]["errors"]) == {"phone"} and "E.164" in ack["payload"]["errors"]["phone"]
    assert await escalation.notification_rules(pulser.pool, MEMBER) == []


async def test_send_test_page_queues_a_dm_to_the_person(pulser, sandbox):
    body = await click(sandbox, PERSON_TEST, MEMBER, user=MEMBER)
    assert "a Slack DM to you" in json.dumps(body)
    row = await pulser.pool.fetchrow("SELECT method, recipient, action FROM outbound_deliveries")
    assert dict(row) == {"method": "slack_dm", "recipient": MEMBER, "action": "test"}


# --- the steps syntax ------------------------------------------------------------------------------


def test_the_steps_syntax_becomes_the_steps_parse_policy_takes():
    text = "slack #ops-alerts @here\n\n// then a person\nwait 15\nuser <@U0ADA|ada>\noncall Primary if high+\nsend ops-mail if critical"
    steps, lines = parse_steps(text)
    assert steps == [
        {"kind": "slack_channel", "target": "#ops-alerts", "mention": "@here"},
        {"kind": "wait", "wait_minutes": 15},
        {"kind": "user", "target": "U0ADA"},
        {"kind": "oncall", "target": "Primary", "min_severity": "high"},
        {"kind": "outbound", "channel": "ops-mail", "min_severity": "critical"},
    ]
    assert lines == [1, 4, 5, 6, 7]
    assert parse_steps(steps_text(steps))[0] == steps, "what the form is filled with reads back the same"


def test_a_line_the_syntax_cannot_read_is_named_by_its_number():
    with pytest.raises(StepSyntaxError) as caught:
        parse_steps("wait 15\nslack #ops\npage everyone\noncall Primary if high")
    assert set(caught.value.errors) == {3, 4}
    assert "high+" in caught.value.errors[4]


async def test_a_bad_step_is_an_error_on_the_steps_field_with_its_line(pulser, sandbox):
    view = await open_modal(sandbox, lambda: sandbox.send_block_action(POLICY_ADD, value="add", user_id=ADMIN))
    assert view["callback_id"] == POLICY_CALLBACK
    ack = await submit(sandbox, view, policy_form("Prod", "slack #ops-alerts\nwait 15\nsend nowhere"), ADMIN)
    errors = ack["payload"]["errors"]
    assert set(errors) == {"steps"} and errors["steps"].startswith("Line 3: an outbound channel")
    assert await escalation.list_policies(pulser.pool) == []


async def test_a_policy_saved_from_the_form_has_the_steps_written(pulser, sandbox):
    view = await open_modal(sandbox, lambda: sandbox.send_block_action(POLICY_ADD, value="add", user_id=ADMIN))
    ack = await submit(sandbox, view, policy_form("Prod", "slack C0OPS S0ONCALL\nwait 5\nuser @U0BOB if high+", "2"), ADMIN)
    assert not ack.get("payload")
    (policy,) = await escalation.list_policies(pulser.pool)
    assert (policy["name"], policy["repeat"], policy["created_by"]) == ("Prod", 2, ADMIN)
    assert [(s["kind"], s["target"], s["mention"], s["wait_minutes"], s["min_severity"]) for s in policy["steps"]] == [
        ("slack_channel", "C0OPS", "S0ONCALL", None, None), ("wait", None, None, 5, None), ("user", "U0BOB", None, None, "high"),
    ]


async def test_a_member_cannot_save_a_policy(pulser, sandbox):
    pulser.services.admins = (MEMBER,)
    view = await open_modal(sandbox, lambda: sandbox.send_block_action(POLICY_ADD, value="add", user_id=MEMBER))
    pulser.services.admins = ()
    ack = await submit(sandbox, view, policy_form("Prod", "slack #ops-alerts"), MEMBER)
    assert "Only Pulser admins" in ack["payload"]["errors"]["name"]
    assert await escalation.list_policies(pulser.pool) == []


# --- /pulser channels ------------------------------------------------------------------------------


async def test_send_test_queues_a_delivery_to_the_channel_and_says_so(pulser, sandbox):
    channel = await admin.save_channel(pulser.pool, {"name": "ops-hook", "kind": "webhook",
                                                     "settings": {"url": "http://127.0.0.1:9/hook"}}, actor=ADMIN)
    listing = (await sandbox.send_slash_command(text="channels", user_id=MEMBER))["payload"]
    assert buttons(listing)[CHANNEL_TEST] == [str(channel["id"])]
    assert "http://127.0.0.1" not in json.dumps(listing), "a webhook URL is a secret"
    body = await click(sandbox, CHANNEL_TEST, str(channel["id"]))
    assert "Test queued for *ops-hook*" in body["text"]
    (delivery,) = await outbound.recent_deliveries(pulser.pool, channel_id=channel["id"])
    assert (delivery["action"], delivery["incident_id"]) == ("test", None)


async def test_an_email_channel_whose_server_does_not_answer_is_an_error_on_host(pulser, sandbox):
    view = await open_modal(sandbox, lambda: sandbox.send_block_action(
        CHANNEL_ADD, value="email", user_id=ADMIN, action_type="static_select"))
    assert view["callback_id"] == CHANNEL_CALLBACK
    values = {"name": {"name": text("ops-mail")},
              setting_block_id("host"): {setting_block_id("host"): text("127.0.0.1")},
              setting_block_id("port"): {setting_block_id("port"): text("9")},
              setting_block_id("security"): {setting_block_id("security"): select("none")},
              setting_block_id("from"): {setting_block_id("from"): text("pulser@example.com")}}
    ack = await submit(sandbox, view, values, ADMIN)
    error = ack["payload"]["errors"][setting_block_id("host")]
    assert "could not be reached" in error and "Send test" in error
    assert await outbound.list_channels(pulser.pool) == []

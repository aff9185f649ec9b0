"""Routing rules from Slack, end to end: `/pulser rules`, its buttons and the add/edit modal, through
the sandbox with the real Bolt app over Socket Mode and a real Postgres."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from alerts.routing import validate_rule
from blocks.rules import ADD, ADD_CALLBACK, DELETE, EDIT, EDIT_CALLBACK, MOVE_DOWN, MOVE_UP
from handlers.slack.admin import forget_answers
from alerts.escalation import admin
from storage import routing_rules as store
from storage.audit import list_actions
from tests.conftest import eventually, handled

ADMIN = "U0ADA"  # a workspace admin, as users.info says
MEMBER = "U0BOB"  # an ordinary member


@pytest.fixture(autouse=True)
def people(sandbox):
    forget_answers()
    sandbox.set_user(ADMIN, name="ada", is_admin=True)
    sandbox.set_user(MEMBER, name="bob")


def form(
    name: str | None = "api in prod",
    envs: str | None = "prod",
    min_severity: str = "high",
    services: str | None = "api",
    sources: str | None = None,
    tags: str | None = None,
    keep_matching: bool = False,
    channel: str | None = "#api-alerts",
    mention: str | None = "@here",
    mention_min_severity: str = "high",
    escalate_after: str | None = None,
    escalate_to: str | None = None,
    levels: str | None = "1",
    runbook: str | None = None,
    auto_close: str | None = None,
    policy: str | None = None,
) -> dict:
    """`view.state.values` as Slack sends them for our modal."""

    def text(block: str, value: str | None) -> dict:
        return {block: {block: {"type": "plain_text_input", "value": value}}}

    def select(block: str, value: str) -> dict:
        return {block: {block: {"type": "static_select", "selected_option": {"value": value}}}}

    checked = [{"value": "continue"}] if keep_matching else []
    return {
        **text("name", name), **text("envs", envs), **select("min_severity", min_severity),
        **text("services", services), **text("sources", sources), **text("tags", tags),
        "continue_matching": {"continue_matching": {"type": "checkboxes", "selected_options": checked}},
        **text("channel", channel), **text("mention", mention), **select("mention_min_severity", mention_min_severity),
        **text("escalate_after_minutes", escalate_after), **text("escalate_to", escalate_to),
        **text("escalation_levels", levels), **text("runbook_url", runbook), **text("auto_close_minutes", auto_close),
        **text("escalation_policy", policy),
    }


def message_text(message: dict) -> str:
    parts = [message.get("text", "")]
    blocks = message.get("blocks") or []
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    for block in blocks:
        if block["type"] == "section":
            parts.append(block["text"]["text"])
        elif block["type"] == "context":
            parts += [e["text"] for e in block["elements"]]
    return "\n".join(parts)


def rule_sections(message: dict) -> list[str]:
    blocks = message.get("blocks") or []
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    return [b["text"]["text"] for b in blocks if b.get("block_id", "").startswith("rule_") and b["type"] == "section"]


async def add_rule(pulser, name: str, **data) -> dict:
    spec = validate_rule({"name": name, "channel": "#api-alerts", **data})
    return await store.create_rule(pulser.pool, spec.as_row(), created_by=ADMIN)


async def names_in_order(pulser) -> list[str]:
    return [r["name"] for r in await store.list_rules(pulser.pool)]


async def click(sandbox, action_id: str, value: str, user: str = ADMIN) -> dict:
    """Click a button of the (ephemeral) list; returns the body of the response_url post it caused."""
    before = len(sandbox.response_url_posts)
    await sandbox.send_block_action(action_id, value=value, user_id=user, channel_id="C0OPS")
    await eventually(lambda: len(sandbox.response_url_posts) > before)
    return sandbox.response_url_posts[before][1]


async def open_form(sandbox, action_id: str = ADD, value: str = "add") -> dict:
    before = len(sandbox.calls_to("views.open"))
    await sandbox.send_block_action(action_id, value=value, user_id=ADMIN, channel_id="C0OPS")
    await sandbox.wait_for_call("views.open", count=before + 1)
    return sandbox.views[max(sandbox.views)]


async def submit(sandbox, view: dict, values: dict, user: str = ADMIN) -> dict:
    return await sandbox.send_view_submission(view["callback_id"], values, user_id=user, view_id=view["id"])


async def rule_actions(pulser, rule_id: int) -> list[dict]:
    return await list_actions(pulser.pool, target_type="rule", target_id=rule_id)


# --- the list ------------------------------------------------------------------------------------


async def test_anyone_can_list_the_rules_in_order_with_the_default_route_last(pulser, sandbox):
    await add_rule(pulser, "api in prod", envs="prod", min_severity="high", services="api", mention="@here")
    await add_rule(pulser, "billing", services="billing", channel="C0BILL")
    ack = await sandbox.send_slash_command(text="rules", user_id=MEMBER)
    payload = ack["payload"]
    assert payload["response_type"] == "ephemeral"
    first, second, default = rule_sections(payload)
    assert "*1. api in prod*" in first and "env in production · severity ≥ high · service in api" in first
    assert "→ #api-alerts, @here for high+" in first
    assert "*2. billing*" in second and "→ <#C0BILL>" in second
    assert "when no rule matches → #ops-alerts" in default
    buttons = [e["action_id"] for b in payload["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert buttons == [EDIT, MOVE_DOWN, DELETE, EDIT, MOVE_UP, DELETE, ADD]


async def test_delete_asks_for_confirmation_first(pulser, sandbox):
    await add_rule(pulser, "api in prod")
    ack = await sandbox.send_slash_command(text="rules", user_id=ADMIN)
    delete = next(e for b in ack["payload"]["blocks"] if b["type"] == "actions" for e in b["elements"]
                  if e["action_id"] == DELETE)
    assert delete["confirm"]["confirm"]["text"] == "Delete" and "api in prod" in delete["confirm"]["text"]["text"]


async def test_with_no_rules_the_list_says_everything_goes_to_the_default_channel(pulser, sandbox):
    ack = await sandbox.send_slash_command(text="rules", user_id=MEMBER)
    assert "every alert goes to the default channel" in message_text(ack["payload"])


# --- adding through the modal --------------------------------------------------------------------


async def test_add_opens_an_empty_form_remembering_the_channel(pulser, sandbox):
    view = await open_form(sandbox)
    assert view["callback_id"] == ADD_CALLBACK and view["title"]["text"] == "Add routing rule"
    inputs = [b["block_id"] for b in view["blocks"] if b["type"] == "input"]
    assert inputs[:3] == ["name", "envs", "min_severity"] and "channel" in inputs and "escalate_to" in inputs
    assert json.loads(view["private_metadata"]) == {"channel_id": "C0OPS", "user_id": ADMIN}


async def test_an_invalid_form_shows_errors_inline_and_stores_nothing(pulser, sandbox):
    view = await open_form(sandbox)
    ack = await submit(sandbox, view, form(name="", channel="api alerts", sources="pagerduty", escalate_after="15"))
    payload = ack["payload"]
    assert payload["response_action"] == "errors"
    assert set(payload["errors"]) == {"name", "channel", "sources", "escalate_to"}
    assert "#api-alerts" in payload["errors"]["channel"]
    assert await store.list_rules(pulser.pool) == []


async def test_a_valid_form_stores_the_rule_audits_it_and_posts_the_fresh_list(pulser, sandbox):
    view = await open_form(sandbox)
    await submit(sandbox, view, form(name="", channel="nope"))
    ack = await submit(sandbox, view, form(escalate_after="15", escalate_to="U0LEAD", levels="2", tags="team=api"))
    assert not ack.get("payload"), "a bare ack closes the modal"
    (rule,) = await store.list_rules(pulser.pool)
    assert (rule["name"], rule["envs"], rule["min_severity"], rule["services"], rule["tags"]) == (
        "api in prod", ["production"], "high", ["api"], {"team": "api"},
    )
    assert (rule["escalate_after_minutes"], rule["escalate_to"], rule["escalation_levels"], rule["created_by"]) == (
        15, "U0LEAD", 2, ADMIN,
    )
    (entry,) = await rule_actions(pulser, rule["id"])
    assert (entry["actor"], entry["action"], entry["details"]["channel"]) == (ADMIN, "rule.create", "#api-alerts")
    (call,) = await sandbox.wait_for_call("chat.postEphemeral")
    assert (call.params["channel"], call.params["user"]) == ("C0OPS", ADMIN)
    text = message_text(call.params)
    assert "Added *api in prod* at position 1" in text
    assert "escalate to <@U0LEAD> after 15 min ×2" in text


async def test_the_form_names_an_escalation_policy_by_its_name(pulser, sandbox):
    policy = await admin.save_policy(pulser.pool, {"name": "Paging", "steps": [{"kind": "user", "target": "U0LEAD"}]},
                                     actor=ADMIN)
    view = await open_form(sandbox)
    refused = await submit(sandbox, view, form(policy="Pagin"))
    assert "no escalation policy is called 'Pagin' (known: Paging)" in refused["payload"]["errors"]["escalation_policy"]
    await submit(sandbox, view, form(policy="Paging"))
    (rule,) = await store.list_rules(pulser.pool)
    assert rule["escalation_policy_id"] == policy["id"]


async def test_a_member_cannot_open_the_form_but_is_told_why(pulser, sandbox):
    envelope = sandbox.block_action_envelope(ADD, value="add", user_id=MEMBER, channel_id="C0OPS")
    await sandbox.send_envelope(envelope)
    posts = await eventually(lambda: sandbox.response_url_posts)
    body = posts[0][1]
    assert body["replace_original"] is False, "the list stays; the refusal comes as its own message"
    assert "Only Pulser admins can change routing rules" in body["text"]
    await handled(pulser.pool, envelope)
    assert sandbox.calls_to("views.open") == []


async def test_rights_are_checked_again_when_the_form_is_submitted(pulser, sandbox):
    pulser.services.admins = ("U0CAROL",)
    before = len(sandbox.calls_to("views.open"))
    await sandbox.send_block_action(ADD, value="add", user_id="U0CAROL", channel_id="C0OPS")
    await sandbox.wait_for_call("views.open", count=before + 1)
    view = sandbox.views[max(sandbox.views)]
    pulser.services.admins = ()
    ack = await submit(sandbox, view, form(), user="U0CAROL")
    assert "Only Pulser admins" in ack["payload"]["errors"]["name"]
    assert await store.list_rules(pulser.pool) == []


# --- editing -------------------------------------------------------------------------------------


def initial(view: dict, block_id: str):
    element = next(b for b in view["blocks"] if b.get("block_id") == block_id)["element"]
    if "initial_option" in element:
        return element["initial_option"]["value"]
    if element["type"] == "checkboxes":
        return bool(element.get("initial_options"))
    return element.get("initial_value", "")


async def test_edit_opens_the_form_filled_with_the_rule(pulser, sandbox):
    rule = await add_rule(pulser, "api in prod", envs="prod, staging", services="api", tags="team=api",
                          continue_matching=True, mention="S0OPS", mention_min_severity="critical")
    view = await open_form(sandbox, EDIT, str(rule["id"]))
    assert view["callback_id"] == EDIT_CALLBACK
    assert [initial(view, b) for b in ("name", "envs", "min_severity", "services", "tags", "continue_matching",
                                        "channel", "mention", "mention_min_severity", "escalation_levels")] == [
        "api in prod", "production, staging", "any", "api", "team=api", True, "#api-alerts", "S0OPS", "critical", "1",
    ]
    assert json.loads(view["private_metadata"])["rule_id"] == rule["id"]


async def test_an_edit_is_stored_audited_and_the_fresh_list_posted(pulser, sandbox):
    rule = await add_rule(pulser, "api in prod", envs="prod", min_severity="high", services="api", mention="@here")
    view = await open_form(sandbox, EDIT, str(rule["id"]))
    bad = await submit(sandbox, view, form(runbook="not a link"))
    assert set(bad["payload"]["errors"]) == {"runbook_url"}
    ack = await submit(sandbox, view, form(channel="C0API", runbook="https://wiki.example.com/api"))
    assert not ack.get("payload")
    edited = await store.get_rule(pulser.pool, rule["id"])
    assert (edited["channel"], edited["runbook_url"], edited["position"]) == ("C0API", "https://wiki.example.com/api", 1)
    entry = (await rule_actions(pulser, rule["id"]))[0]
    assert entry["action"] == "rule.update" and entry["details"]["changes"] == {
        "channel": {"from": "#api-alerts", "to": "C0API"},
        "runbook_url": {"from": None, "to": "https://wiki.example.com/api"},
    }
    (call,) = await sandbox.wait_for_call("chat.postEphemeral")
    assert "Updated *api in prod*" in message_text(call.params) and "→ <#C0API>" in message_text(call.params)


async def test_saving_an_unchanged_rule_writes_nothing(pulser, sandbox):
    rule = await add_rule(pulser, "api in prod", envs="prod", min_severity="high", services="api", mention="@here")
    view = await open_form(sandbox, EDIT, str(rule["id"]))
    await submit(sandbox, view, form())
    assert [a["action"] for a in await rule_actions(pulser, rule["id"])] == []


async def test_submitting_the_edit_of_a_rule_deleted_meanwhile_says_so(pulser, sandbox):
    rule = await add_rule(pulser, "api in prod")
    view = await open_form(sandbox, EDIT, str(rule["id"]))
    await store.delete_rule(pulser.pool, rule["id"])
    ack = await submit(sandbox, view, form())
    assert "deleted meanwhile" in ack["payload"]["errors"]["name"]


# --- moving and deleting -------------------------------------------------------------------------


async def test_move_down_and_up_reorder_the_rules_and_replace_the_list(pulser, sandbox):
    first = await add_rule(pulser, "first")
    await add_rule(pulser, "second")
    third = await add_rule(pulser, "third")
    body = await click(sandbox, MOVE_DOWN, str(first["id"]))
    assert await names_in_order(pulser) == ["second", "first", "third"]
    assert body["replace_original"] is True and "Moved *first* to position 2" in message_text(body)
    assert "*1. second*" in rule_sections(body)[0]
    await click(sandbox, MOVE_UP, str(third["id"]))
    assert await names_in_order(pulser) == ["second", "third", "first"]
    entry = (await rule_actions(pulser, first["id"]))[0]
    assert (entry["actor"], entry["action"], entry["details"]) == (ADMIN, "rule.move", {"name": "first", "from": 1, "to": 2})


async def test_delete_removes_the_rule_and_the_rest_move_up(pulser, sandbox):
    doomed = await add_rule(pulser, "doomed")
    await add_rule(pulser, "kept")
    body = await click(sandbox, DELETE, str(doomed["id"]))
    assert await names_in_order(pulser) == ["kept"]
    assert body["replace_original"] is True and "Deleted *doomed*" in message_text(body)
    assert "*1. kept*" in rule_sections(body)[0]
    assert (await rule_actions(pulser, doomed["id"]))[0]["action"] == "rule.delete"


async def test_a_member_cannot_delete_or_move(pulser, sandbox):
    rule = await add_rule(pulser, "api in prod")
    await add_rule(pulser, "second")
    for action in (DELETE, MOVE_DOWN):
        body = await click(sandbox, action, str(rule["id"]), user=MEMBER)
        assert "Only Pulser admins can change routing rules" in body["text"]
    assert await names_in_order(pulser) == ["api in prod", "second"]
    assert {a["action"] for a in await rule_actions(pulser, rule["id"])} == {"rule.delete_refused", "rule.move_refused"}


async def test_a_click_on_a_rule_deleted_meanwhile_shows_the_current_list(pulser, sandbox):
    rule = await add_rule(pulser, "gone")
    await store.delete_rule(pulser.pool, rule["id"])
    body = await click(sandbox, MOVE_UP, str(rule["id"]))
    assert body["replace_original"] is True and "no longer exists" in message_text(body)


async def test_an_edit_in_slack_routes_the_very_next_alert_without_a_restart(pulser, sandbox):
    from alerts.normalized import NormalizedAlert
    from storage import incidents

    def api_alert(fingerprint: str) -> NormalizedAlert:
        return NormalizedAlert(
            source="generic", source_event_id=fingerprint, service="api", env="production", severity="high",
            fingerprint=fingerprint, title="API errors", description="", occurred_at=datetime.now(timezone.utc),
        )

    rule = await add_rule(pulser, "api in prod", envs="prod", min_severity="high", services="api")
    before = await pulser.pipeline.ingest(api_alert("before"))
    view = await open_form(sandbox, EDIT, str(rule["id"]))
    await submit(sandbox, view, form(channel="#api-oncall"))
    after = await pulser.pipeline.ingest(api_alert("after"))
    [first] = await incidents.messages_for(pulser.pool, before.incident_id)
    [second] = await incidents.messages_for(pulser.pool, after.incident_id)
    assert (first["channel"], second["channel"]) == ("#api-alerts", "#api-oncall")

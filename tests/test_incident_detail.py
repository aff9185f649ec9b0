"""Incident detail: the timeline after a realistic incident (fire, repeats, escalation, ack, note,
resolve), the Open button's modal (one views call per click), Add note (a pushed modal whose note
lands in the timeline and as a reply in the incident's thread), and the first occurrence kept by
retention. A running Pulser against the sandbox, alerts through the real pipeline."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from alerts.incident_detail import detail_json, load_detail
from alerts.routing import validate_rule
from blocks.incident_detail import ADD_NOTE, NOTE_CALLBACK, NOTE_INPUT
from blocks.incidents import ACTIONS_BLOCK_PREFIX, OPEN
from storage import incident_queries, incidents, routing_rules
from tests.conftest import eventually, make_settings
from tests.incident_seeds import ALERTS, alert, open_incident, pipeline

ON_CALL = "U0CAROL"


@pytest.fixture
def settings(database_url, sandbox):
    sandbox.add_channel(ALERTS, "ops-alerts")
    for user, name in (("U0ALICE", "alice"), ("U0BOB", "bob"), (ON_CALL, "carol")):
        sandbox.set_user(user, name=name)
    return make_settings(
        DATABASE_URL=database_url, SLACK_BOT_TOKEN="xoxb-test-bot", SLACK_APP_TOKEN="xapp-test-app",
        SLACK_API_URL=sandbox.api_url, SLACK_CHANNEL=ALERTS, ALERT_UPDATE_DEBOUNCE_SECONDS="0",
    )  # fmt: skip


def top_level(sandbox) -> list[dict]:
    return [m for m in sandbox.messages.get(ALERTS, []) if not m.get("thread_ts")]


def replies(sandbox) -> list[dict]:
    return [m for m in sandbox.messages.get(ALERTS, []) if m.get("thread_ts") and m["thread_ts"] != m["ts"]]


async def posted(pulser, incident_id: int) -> dict:
    async def routed():
        found = [m for m in await incidents.messages_for(pulser.pool, incident_id, escalation_posts=False) if m["slack_ts"]]
        return found[0] if found else None

    return await eventually(routed, timeout=30)


async def fire_and_post(pulser, fingerprint: str = "payments-5xx") -> tuple[int, dict]:
    incident_id = await open_incident(pulser.pool, alert(fingerprint, service="payments"))
    return incident_id, await posted(pulser, incident_id)


@pytest.fixture
async def story(pulser, sandbox):
    """Payments fires, repeats three times, nobody acks so it escalates to Carol; Bob acks and
    notes what he found; Alice resolves it. Returns the incident id once every reply went out."""
    await routing_rules.create_rule(pulser.pool, validate_rule({
        "name": "payments", "services": "payments", "channel": ALERTS, "escalate_after_minutes": 5,
        "escalate_to": ON_CALL, "escalation_levels": 1,
    }).as_row(), created_by="U0ALICE")  # fmt: skip
    incident_id, _ = await fire_and_post(pulser)
    for _ in range(3):
        await pipeline(pulser.pool).ingest(alert("payments-5xx", service="payments"))
    await eventually(lambda: _escalation_armed(pulser, incident_id), timeout=30)
    await pulser.pool.execute(
        "UPDATE incident_messages SET next_escalation_at = now() - interval '1 second' WHERE incident_id = $1"
        " AND next_escalation_at IS NOT NULL", incident_id,
    )  # fmt: skip
    assert (await pulser.sweep.run_once())["escalated"] == 1
    await eventually(lambda: len(top_level(sandbox)) == 2, timeout=30)  # the escalation post
    assert (await pulser.incident_actions.ack(incident_id, "U0BOB")).changed
    await pulser.incident_actions.add_note(incident_id, "U0BOB", "Card processor timeouts; failing over.")
    assert (await pulser.incident_actions.resolve(incident_id, "U0ALICE")).changed
    await eventually(lambda: len(replies(sandbox)) == 2, timeout=30)  # escalation reply + the note
    return incident_id


async def _escalation_armed(pulser, incident_id) -> bool:
    messages = await incidents.messages_for(pulser.pool, incident_id, escalation_posts=False)
    return bool(messages) and all(m["next_escalation_at"] for m in messages)


# --- the timeline ------------------------------------------------------------------------------------------


async def test_the_timeline_tells_the_whole_story_in_order(pulser, story):
    detail = await load_detail(pulser.pool, story)
    kinds = [e.kind for e in detail.timeline]
    story_kinds = [k for k in kinds if k != "thread_reply"]
    assert story_kinds == ["opened", "posted", "repeats", "escalate", "escalation_post", "ack", "note", "resolve"]
    by_kind = {e.kind: e for e in detail.timeline}
    assert by_kind["repeats"].details["count"] == 3
    assert by_kind["escalate"].details["to"] == ON_CALL and by_kind["escalate"].actor == "system"
    assert by_kind["ack"].actor == "U0BOB" and by_kind["resolve"].actor == "U0ALICE"
    assert by_kind["note"].text == "Note: Card processor timeouts; failing over."
    sent = [e for e in detail.timeline if e.kind == "thread_reply"]
    assert len(sent) == 2 and all(e.details["status"] == "sent" for e in sent)
    assert any("U0CAROL" in e.text for e in sent) and any("Card processor timeouts" in e.text for e in sent)


async def test_the_detail_lists_every_occurrence_newest_first_and_the_runbook_routes(pulser, story):
    body = detail_json(await load_detail(pulser.pool, story), datetime.now(timezone.utc))
    assert body["occurrence_total"] == 4 and body["count"] == 4
    received = [o["received_at"] for o in body["occurrences"]]
    assert received == sorted(received, reverse=True)
    assert body["state"] == "resolved" and body["notes"][0]["author"] == "U0BOB"
    assert [m["escalation_of"] is None for m in body["messages"]] == [True, False]


# --- the Open button -----------------------------------------------------------------------------------------


async def test_open_on_the_incident_message_opens_the_detail_modal_with_one_views_call(pulser, sandbox, story):
    message = top_level(sandbox)[0]
    assert OPEN in json.dumps(message["attachments"]), "every incident message offers Open"
    views_calls = lambda: sum(len(sandbox.calls_to(m)) for m in ("views.open", "views.push", "views.update"))  # noqa: E731
    before = views_calls()
    await sandbox.send_block_action(OPEN, str(story), user_id="U0BOB", channel_id=ALERTS, message_ts=message["ts"],
                                    block_id=f"{ACTIONS_BLOCK_PREFIX}{story}")
    await sandbox.wait_for_call("views.open", count=1, timeout=30)
    modal = sandbox.views[max(sandbox.views)]
    text = json.dumps(modal["blocks"], ensure_ascii=False)
    assert "First occurrence" in text and "3 more occurrences grouped" in text
    assert "Escalated (level 1) to <@U0CAROL>" in text and "Card processor timeouts" in text
    assert "*Assignee* <@U0BOB>" in text and ADD_NOTE in text
    assert views_calls() == before + 1


async def test_open_for_an_incident_that_is_gone_says_so(pulser, sandbox):
    await sandbox.send_block_action(OPEN, "987654", user_id="U0BOB", channel_id=ALERTS)
    await sandbox.wait_for_call("views.open", count=1, timeout=30)
    assert "no longer known" in json.dumps(sandbox.views[max(sandbox.views)]["blocks"])


# --- Add note --------------------------------------------------------------------------------------------------


async def open_detail(sandbox, incident_id: int) -> dict:
    await sandbox.send_block_action(OPEN, str(incident_id), user_id="U0BOB", channel_id=ALERTS)
    await sandbox.wait_for_call("views.open", count=1, timeout=30)
    return sandbox.views[max(sandbox.views)]


async def push_note_form(sandbox, detail: dict, incident_id: int) -> dict:
    await sandbox.send_block_action(ADD_NOTE, str(incident_id), user_id="U0BOB", view_id=detail["id"])
    await sandbox.wait_for_call("views.push", count=1, timeout=30)
    return sandbox.views[max(sandbox.views)]


def note_values(text: str) -> dict:
    return {NOTE_INPUT: {NOTE_INPUT: {"type": "plain_text_input", "value": text}}}


async def test_a_note_lands_in_the_timeline_the_thread_and_the_open_detail(pulser, sandbox):
    incident_id, message = await fire_and_post(pulser)
    detail = await open_detail(sandbox, incident_id)
    form = await push_note_form(sandbox, detail, incident_id)
    assert form["callback_id"] == NOTE_CALLBACK
    ack = await sandbox.send_view_submission(NOTE_CALLBACK, note_values("Rolled back <!channel> v41"), user_id="U0BOB",
                                             view_id=form["id"])
    assert "response_action" not in (ack.get("payload") or {}), "the form closes"
    [note] = await incident_queries.list_notes(pulser.pool, incident_id)
    assert (note["author"], note["text"]) == ("U0BOB", "Rolled back <!channel> v41")
    [reply] = await eventually(lambda: replies(sandbox), timeout=30)
    assert reply["thread_ts"] == message["slack_ts"]
    assert "Note from <@U0BOB>" in reply["text"] and "&lt;!channel&gt;" in reply["text"], "shown, never obeyed"
    await sandbox.wait_for_call("views.update", count=1, timeout=30)
    assert "Rolled back" in json.dumps(sandbox.views[detail["id"]]["blocks"])


async def test_an_empty_note_is_refused_on_the_form_and_stores_nothing(pulser, sandbox):
    incident_id, _ = await fire_and_post(pulser)
    form = await push_note_form(sandbox, await open_detail(sandbox, incident_id), incident_id)
    ack = await sandbox.send_view_submission(NOTE_CALLBACK, note_values("   "), user_id="U0BOB", view_id=form["id"])
    assert ack["payload"]["response_action"] == "errors" and "empty" in ack["payload"]["errors"][NOTE_INPUT]
    assert await incident_queries.list_notes(pulser.pool, incident_id) == []


# --- retention -------------------------------------------------------------------------------------------------


async def test_retention_keeps_the_first_occurrence_the_timeline_opens_with(pool):
    start = datetime.now(timezone.utc) - timedelta(minutes=30)
    incident_id = await open_incident(pool, alert("noisy", title="the very first"), at=start)
    for n in range(5):
        await pipeline(pool).ingest(alert("noisy", title=f"repeat {n}"), now=start + timedelta(minutes=n + 1))
    await incidents.delete_occurrences_beyond(pool, keep=2)
    kept = await incident_queries.occurrences_of(pool, incident_id)
    assert [o["alert"]["title"] for o in kept] == ["the very first", "repeat 3", "repeat 4"]

"""Storms end to end: many distinct incidents for one channel within a minute fold into one digest
message (counts, criticals first, every incident named in the digest or its thread), with Show
all, Ack all and Resolve all, against the sandbox with Slack's rate limits on."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from blocks.storms import ACK_ALL, ACK_ONE, PAGE, RESOLVE_ALL, SHOW_ALL
from alerts.routing import RuleValidationError, validate_rule
from storage import audit, incidents, routing_rules, storms
from tests import webhook_senders as send
from tests.conftest import eventually, make_settings

ALERTS = "C0ALERTS"
THRESHOLD = 4  # PULSER_STORM_THRESHOLD's default: four new incidents a minute are posted one by one


@pytest.fixture
def settings(database_url, sandbox):
    sandbox.add_channel(ALERTS, "ops-alerts")
    sandbox.set_user("U0ALICE", name="alice", is_admin=True)
    return make_settings(
        DATABASE_URL=database_url,
        SLACK_BOT_TOKEN="xoxb-test-bot",
        SLACK_APP_TOKEN="xapp-test-app",
        SLACK_API_URL=sandbox.api_url,
        SLACK_CHANNEL=ALERTS,
        **send.SECRETS_ENV,
    )


@pytest.fixture
async def http(pulser):
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{pulser.http_port}", timeout=10) as client:
        yield client


async def fire(http, n: int, *, severity="high", prefix="Queue", status="firing") -> list[str]:
    titles = [f"{prefix} {i} stalled" for i in range(n)]
    for title in titles:
        headers, content = send.generic(
            {"title": title, "service": f"svc-{len(title) % 3}", "env": "production", "severity": severity, "status": status}
        )
        response = await http.post("/webhooks/generic", headers=headers, content=content)
        assert response.status_code == 202, response.text
    return titles


def rendered(message: dict) -> str:
    return message.get("text", "") + json.dumps([message.get("attachments", []), message.get("blocks", [])])


def top_level(sandbox) -> list[dict]:
    return [m for m in sandbox.messages.get(ALERTS, []) if not m.get("thread_ts")]


def everything_said(sandbox) -> str:
    return "\n".join(rendered(m) for m in sandbox.messages.get(ALERTS, []))


def digests(sandbox) -> list[dict]:
    return [m for m in top_level(sandbox) if "Alert storm" in m.get("text", "")]


async def all_named(sandbox, titles) -> bool:
    said = everything_said(sandbox)
    return all(title in said for title in titles)


async def open_digest(pool) -> dict | None:
    row = await pool.fetchrow("SELECT id FROM storm_digests ORDER BY id LIMIT 1")
    return await storms.get_digest(pool, row["id"]) if row else None


async def settled(pool) -> bool:
    """Nothing left to post, update or name."""
    due = await pool.fetchval(
        "SELECT (SELECT count(*) FROM incident_messages WHERE render_due_at IS NOT NULL)"
        " + (SELECT count(*) FROM storm_digests WHERE render_due_at IS NOT NULL OR slack_ts IS NULL)"
        " + (SELECT count(*) FROM incident_messages WHERE folded AND named_at IS NULL)"
    )
    return due == 0


async def test_a_burst_of_distinct_incidents_becomes_a_few_posts_and_one_digest_naming_every_one(pulser, sandbox, http):
    titles = await fire(http, 30)
    await eventually(lambda: all_named(sandbox, titles), timeout=60)
    await eventually(lambda: settled(pulser.pool), timeout=60)
    assert len(digests(sandbox)) == 1
    assert len(top_level(sandbox)) == THRESHOLD + 1
    [digest] = digests(sandbox)
    assert f"{30 - THRESHOLD} incidents" in sandbox.state.find_message(digest["channel"], digest["ts"])["text"]
    replies = [m for m in sandbox.messages[ALERTS] if m.get("thread_ts") == digest["ts"]]
    assert replies, "folded incidents are named in the digest's thread"
    assert sandbox.rate_limiter.refused["chat.postMessage"] == 0
    assert sandbox.rate_limiter.refused["chat.update"] == 0


async def test_the_digest_counts_every_incident_folded_into_it(pulser, sandbox, http):
    await fire(http, 20)
    await eventually(lambda: settled(pulser.pool), timeout=60)
    digest = await open_digest(pulser.pool)
    message = sandbox.state.find_message(digest["slack_channel"], digest["slack_ts"])
    assert f"{20 - THRESHOLD} incidents" in message["text"]  # minus those posted before the storm began
    assert f"*Firing* {20 - THRESHOLD}" in rendered(message)


async def test_criticals_in_a_storm_get_their_own_message_first_then_lead_the_digest(pulser, sandbox, http):
    await fire(http, 10, prefix="Cache")  # the storm is open from the sixth
    await eventually(lambda: settled(pulser.pool), timeout=60)
    critical = await fire(http, 5, severity="critical", prefix="Database")
    await eventually(lambda: all_named(sandbox, critical), timeout=60)
    await eventually(lambda: settled(pulser.pool), timeout=60)
    own = [m for m in top_level(sandbox) if "Database" in m.get("text", "") and "Alert storm" not in m["text"]]
    assert len(own) == 3  # PULSER_STORM_OWN_CRITICALS
    digest = await open_digest(pulser.pool)
    blocks = sandbox.state.find_message(digest["slack_channel"], digest["slack_ts"])["blocks"]
    listed = next(b["text"]["text"] for b in blocks if b["type"] == "section" and "#" in b["text"]["text"] and "stalled" in b["text"]["text"])
    assert listed.splitlines()[0].startswith(":red_circle:")


async def test_a_repeat_of_a_folded_incident_updates_the_digest_not_the_channel(pulser, sandbox, http):
    titles = await fire(http, 8)
    await eventually(lambda: settled(pulser.pool), timeout=60)
    before = len(top_level(sandbox))
    await fire(http, 8)  # the same eight again: repeats of open incidents
    await eventually(lambda: settled(pulser.pool), timeout=60)
    assert len(top_level(sandbox)) == before
    folded = await pulser.pool.fetchval("SELECT count(*) FROM incident_messages WHERE folded")
    assert folded == len(titles) - THRESHOLD


async def test_ack_all_acknowledges_every_firing_incident_of_the_storm_and_audits_each(pulser, sandbox, http):
    await fire(http, 12)
    await eventually(lambda: settled(pulser.pool), timeout=60)
    digest = await open_digest(pulser.pool)
    await sandbox.send_block_action(
        ACK_ALL, str(digest["id"]), user_id="U0ALICE", channel_id=digest["slack_channel"], message_ts=digest["slack_ts"]
    )
    members, total = await storms.members(pulser.pool, digest["id"], limit=100)
    await eventually(lambda: _all_acked(pulser.pool, [m["id"] for m in members]), timeout=30)
    for member in members:
        [entry] = await audit.list_actions(pulser.pool, target_type="incident", target_id=member["id"])
        assert entry["actor"] == "U0ALICE" and entry["action"] == "incident.ack"
    await eventually(lambda: f"({total} acknowledged)" in rendered(
        sandbox.state.find_message(digest["slack_channel"], digest["slack_ts"])), timeout=30)


async def test_resolve_all_resolves_the_storm_and_the_digest_shows_it(pulser, sandbox, http):
    await fire(http, 12)
    await eventually(lambda: settled(pulser.pool), timeout=60)
    digest = await open_digest(pulser.pool)
    await sandbox.send_block_action(
        RESOLVE_ALL, str(digest["id"]), user_id="U0ALICE", channel_id=digest["slack_channel"], message_ts=digest["slack_ts"]
    )
    await eventually(lambda: f"*Resolved* {12 - THRESHOLD}" in rendered(
        sandbox.state.find_message(digest["slack_channel"], digest["slack_ts"])), timeout=30)
    statuses = await pulser.pool.fetch(
        "SELECT i.status FROM incidents i JOIN incident_messages m ON m.incident_id = i.id WHERE m.digest_id = $1", digest["id"]
    )
    assert {r["status"] for r in statuses} == {"resolved"}
    message = sandbox.state.find_message(digest["slack_channel"], digest["slack_ts"])
    assert "Resolve all" not in rendered(message)  # nothing left firing: no bulk buttons


async def test_show_all_opens_a_paged_modal_whose_buttons_act_on_one_incident(pulser, sandbox, http):
    await fire(http, 30)
    await eventually(lambda: settled(pulser.pool), timeout=60)
    digest = await open_digest(pulser.pool)
    await sandbox.send_block_action(
        SHOW_ALL, str(digest["id"]), user_id="U0ALICE", channel_id=digest["slack_channel"], message_ts=digest["slack_ts"]
    )
    [opened] = await sandbox.wait_for_call("views.open", timeout=30)
    view_id = next(iter(sandbox.views))
    view = sandbox.views[view_id]
    assert "Page 1 of 2" in json.dumps(view)
    await sandbox.send_block_action(PAGE + "_next", f"{digest['id']}:1", user_id="U0ALICE", channel_id=None, view_id=view_id)
    await eventually(lambda: "Page 2 of 2" in json.dumps(sandbox.views[view_id]), timeout=30)

    first, _ = await storms.members(pulser.pool, digest["id"], limit=1)
    incident_id = first[0]["id"]
    await sandbox.send_block_action(
        ACK_ONE, f"{digest['id']}:0:{incident_id}", user_id="U0ALICE", channel_id=None, view_id=view_id
    )
    await eventually(lambda: _all_acked(pulser.pool, [incident_id]), timeout=30)
    await eventually(lambda: "Page 1 of 2" in json.dumps(sandbox.views[view_id]), timeout=30)


async def test_a_storm_nothing_folds_into_for_a_while_is_declared_over(pulser, sandbox, http):
    await fire(http, 8)
    await eventually(lambda: settled(pulser.pool), timeout=60)
    # What the notifier's round does once PULSER_STORM_QUIET_SECONDS have passed without a new incident.
    assert await storms.close_quiet(pulser.pool, now=datetime.now(timezone.utc), quiet=timedelta(0)) == 1
    pulser.incident_notifier.wake()
    digest = await open_digest(pulser.pool)
    await eventually(lambda: "Alert storm over" in sandbox.state.find_message(
        digest["slack_channel"], digest["slack_ts"])["text"], timeout=30)
    # The next incident is a message of its own again, not part of the finished storm.
    await fire(http, 1, prefix="Disk")
    await eventually(lambda: any("Disk 0" in m.get("text", "") for m in top_level(sandbox)), timeout=30)


async def test_a_rule_with_storm_threshold_0_never_folds_its_channel(pulser, sandbox, http):
    rule = validate_rule({"name": "one by one", "services": "svc-0, svc-1, svc-2", "channel": ALERTS, "storm_threshold": "0"})
    await routing_rules.create_rule(pulser.pool, rule.as_row(), created_by="U0ALICE")
    titles = await fire(http, 8)
    await eventually(lambda: all_named(sandbox, titles), timeout=60)
    assert not digests(sandbox)
    assert len(top_level(sandbox)) == 8


def test_a_storm_threshold_out_of_range_says_what_is_allowed():
    with pytest.raises(RuleValidationError) as caught:
        validate_rule({"name": "x", "channel": ALERTS, "storm_threshold": "1001"})
    assert caught.value.errors == {"storm_threshold": "must be a whole number from 0 to 1000"}


async def _all_acked(pool, ids) -> bool:
    found = await incidents.get_incidents(pool, ids)
    return len(found) == len(ids) and all(i["acked_by"] for i in found.values())


async def test_posts_to_a_channel_by_name_and_by_id_spend_from_one_budget(pool, sandbox):
    from alerts.outbound.budget import SlackBudget
    from alerts.outbound.paced_session import paced_session
    from slack_sdk.web.async_client import AsyncWebClient

    sandbox.add_channel(ALERTS, "ops-alerts")
    budget = SlackBudget(pool)
    async with paced_session(budget) as session:
        client = AsyncWebClient(token="xoxb-test-bot", base_url=sandbox.api_url, session=session)
        for i in range(8):  # a heartbeat alert by name, an incident by ID, in turn
            await client.chat_postMessage(channel="#ops-alerts" if i % 2 == 0 else ALERTS, text=f"post {i}")
    assert len(sandbox.messages[ALERTS]) == 8
    assert sandbox.rate_limiter.refused["chat.postMessage"] == 0

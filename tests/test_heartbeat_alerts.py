"""Missed heartbeats end to end: the writer and the watcher open incidents through the alert
pipeline, and the incident notifier posts them — routed, silenced, folded into storms and resolved
in place like every incident; Pause monitoring is the button a heartbeat incident adds.

Every heartbeat goes through the running sidecar: over HTTP when it is received now, or through
the sidecar's own `HeartbeatWriter` (the call its HTTP handler makes) when a test needs a receipt
time in the past, so a deadline is a second or two away. The runtime's watcher and notifier then
do the rest, exactly as in production: nothing here wakes them by hand unless the test says why.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from alerts.applications import validate_application
from alerts.heartbeat_writer import HeartbeatEvent
from alerts.normalized import NormalizedAlert
from alerts.routing import validate_rule
from blocks.incidents import ACK, INVESTIGATE, OPEN, PAUSE_MONITORING, RESOLVE, SNOOZE
from handlers.slack.heartbeat_alerts import OLD_ACK
from jobs.heartbeat_watcher import HeartbeatWatcher
from storage import applications, audit, database, heartbeats, routing_rules, silences
from storage.heartbeats import HeartbeatRow
from tests.conftest import eventually, handled, make_settings

ALERTS = "C0ALERTS"  # the apps' channel (#ops-alerts)
DEFAULT = "C0DEFAULT"  # SLACK_CHANNEL: where nothing of an app goes unless its own channel refuses Pulser
THRESHOLD = 4  # PULSER_STORM_THRESHOLD's default


@pytest.fixture
def settings(database_url, sandbox):
    sandbox.add_channel(ALERTS, "ops-alerts")
    sandbox.add_channel(DEFAULT, "pulser-default")
    sandbox.set_user("U0ALICE", name="alice", is_admin=True)
    sandbox.set_user("U0BOB", name="bob", is_admin=False)
    return make_settings(
        DATABASE_URL=database_url, SLACK_BOT_TOKEN="xoxb-test-bot", SLACK_APP_TOKEN="xapp-test-app",
        SLACK_API_URL=sandbox.api_url, SLACK_CHANNEL=DEFAULT,
    )


async def register(pool, name="nightly-backup", interval=60, grace=30, **extra):
    """An app of #ops-alerts, saved by its ID as registration from Slack or the API saves it."""
    spec = validate_application(
        {"name": name, "expected_interval": interval, "grace_period": grace, "channel": ALERTS, **extra},
        default_channel=ALERTS,
    )
    return await applications.create_application(pool, spec, created_by="U0ALICE")


def ago(**delta) -> datetime:
    return datetime.now(timezone.utc) - timedelta(**delta)


async def heartbeat(pulser, app, *, kind="success", at: datetime, exit_code: int | None = None):
    """One heartbeat received at `at`, submitted to the sidecar's writer as its HTTP handler does."""
    result = await pulser.heartbeat_writer.submit(HeartbeatEvent(uuid=app.uuid, kind=kind, exit_code=exit_code, received_at=at))
    assert result.found
    return result


async def ping(pulser, app, suffix: str = "") -> None:
    """A heartbeat received now, over HTTP as a cron job sends it (`/fail` for a failure)."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{pulser.http_port}", timeout=10) as http:
        response = await http.post(f"/heartbeat/{app.uuid}{suffix}")
    assert response.status_code == 200, response.text


async def delete_message(sandbox, channel: str, ts: str) -> None:
    """Someone deletes a message in Slack (the Web API call a user's client makes)."""
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.post(
            f"{sandbox.api_url}chat.delete", headers={"Authorization": "Bearer xoxb-test-bot"}, data={"channel": channel, "ts": ts}
        )
    assert answer.json()["ok"], answer.text


def top_level(sandbox, channel: str = ALERTS) -> list[dict]:
    return [m for m in sandbox.messages.get(channel, []) if not m.get("thread_ts")]


def rendered(message: dict) -> str:
    return message.get("text", "") + json.dumps([message.get("attachments", []), message.get("blocks", [])])


def action_ids(message: dict) -> list[str]:
    blocks = [b for a in message.get("attachments") or [] for b in a.get("blocks") or []]
    return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


async def incident_of(pool, app) -> dict | None:
    row = await pool.fetchrow(
        "SELECT * FROM incidents WHERE labels->>'heartbeat.app_id' = $1 ORDER BY id DESC LIMIT 1", str(app.id)
    )
    return dict(row) if row else None


async def posted(pool, app) -> dict | None:
    """The app's incident message once Slack has it (its channel and ts)."""
    return await pool.fetchrow(
        """
        SELECT m.slack_channel, m.slack_ts, m.incident_id FROM incident_messages m JOIN incidents i ON i.id = m.incident_id
         WHERE i.labels->>'heartbeat.app_id' = $1 AND m.slack_ts IS NOT NULL AND m.render_due_at IS NULL
         ORDER BY m.id DESC LIMIT 1
        """,
        str(app.id),
    )


async def message_now(pulser, sandbox, app) -> dict:
    row = await eventually(lambda: posted(pulser.pool, app), timeout=30)
    return sandbox.state.find_message(row["slack_channel"], row["slack_ts"])


async def watcher_ran_again(pulser) -> None:
    """Make the runtime's watcher take one more look and wait until it has (it then sleeps anew)."""
    before = pulser.watcher.last_run
    pulser.watcher.wake()
    await eventually(lambda: pulser.watcher.last_run is not None and pulser.watcher.last_run != before, timeout=30)


async def click(sandbox, message: dict, action_id: str, user: str, value: str):
    return await sandbox.send_block_action(
        action_id=action_id, value=value, user_id=user, channel_id=message["channel"], message_ts=message["ts"]
    )


# --- detection ---------------------------------------------------------------------------------


async def test_an_app_is_not_alerted_before_its_deadline_and_is_right_after(pulser, sandbox):
    app = await register(pulser.pool, interval=60, grace=30)
    # Last heartbeat 88 s ago: due 28 s ago, deadline (due + 30 s grace) 2 s from now.
    await heartbeat(pulser, app, at=ago(seconds=88))
    deadline = (await applications.get_application(pulser.pool, app.id)).next_deadline
    [post] = await sandbox.wait_for_call("chat.postMessage", count=1, timeout=30)
    assert "nightly-backup missed its heartbeat" in post.params["text"]
    incident = await incident_of(pulser.pool, app)
    # The claim's time is the database's clock, the one deadlines are compared with.
    assert incident["first_seen"] >= deadline, "no incident before interval + grace"
    # The watcher's periodic look comes only every 30 s: a claim this close came from the deadline.
    assert incident["first_seen"] - deadline < timedelta(seconds=15)
    stored = await applications.get_application(pulser.pool, app.id)
    assert (stored.state, stored.down_since) == ("down", deadline)


async def test_the_incident_says_when_the_app_was_expected_and_last_seen(pulser, sandbox):
    app = await register(pulser.pool, interval=300, grace=0)
    await heartbeat(pulser, app, at=ago(minutes=12))
    message = await message_now(pulser, sandbox, app)
    assert message["text"] == ":large_orange_circle: [HIGH] nightly-backup missed its heartbeat — nightly-backup"
    assert "Last seen 12 min ago" in rendered(message) and "expected every 5 min, grace 0 s" in rendered(message)
    assert action_ids(message) == [ACK, SNOOZE, RESOLVE, INVESTIGATE, PAUSE_MONITORING, OPEN]


async def test_without_a_routing_rule_the_incident_goes_to_the_apps_channel_not_slack_channel(pulser, sandbox):
    app = await register(pulser.pool, interval=60, grace=0)
    await heartbeat(pulser, app, at=ago(minutes=5))
    await message_now(pulser, sandbox, app)
    assert [m["channel"] for m in top_level(sandbox)] == [ALERTS]
    assert top_level(sandbox, DEFAULT) == []


async def test_a_routing_rule_for_the_heartbeat_source_routes_a_missed_heartbeat_to_its_channel(pulser, sandbox):
    sandbox.add_channel("C0CRON", "cron-pages")
    rule = validate_rule({"name": "heartbeats", "sources": "heartbeat", "channel": "C0CRON", "mention": "@here"})
    await routing_rules.create_rule(pulser.pool, rule.as_row(), created_by="U0ALICE")
    app = await register(pulser.pool, interval=60, grace=0)
    await heartbeat(pulser, app, at=ago(minutes=5))
    message = await message_now(pulser, sandbox, app)
    assert message["channel"] == "C0CRON" and "<!here>" in rendered(message)
    assert top_level(sandbox) == [], "the rule's channel instead of the app's own"


async def test_a_new_deadline_wakes_a_sleeping_watcher(pulser, sandbox):
    pulser.watcher.max_sleep = 3600  # left alone, it would look again only in an hour
    await watcher_ran_again(pulser)  # now asleep with nothing to watch
    app = await register(pulser.pool, interval=10, grace=0)
    await heartbeat(pulser, app, at=ago(seconds=9))
    await sandbox.wait_for_call("chat.postMessage", count=1, timeout=30)


async def test_new_and_paused_apps_are_not_watched(pulser, sandbox):
    await pulser.watcher.stop()  # the test runs the watcher's rounds itself
    await register(pulser.pool, name="never-pinged", interval=10, grace=0)
    paused = await register(pulser.pool, name="paused-one", interval=10, grace=0)
    await heartbeat(pulser, paused, at=ago(minutes=5))
    await applications.set_active(pulser.pool, paused.id, False)
    watched = await register(pulser.pool, name="watched-one", interval=10, grace=0)
    await heartbeat(pulser, watched, at=ago(minutes=5))
    assert await HeartbeatWatcher(pulser.pool, pulser.pipeline, max_sleep=1).run_once() == 1
    assert [r["service"] for r in await pulser.pool.fetch("SELECT service FROM incidents")] == ["watched-one"]


async def test_two_watchers_never_alert_the_same_miss_twice(pulser, sandbox, database_url):
    apps = [await register(pulser.pool, name=f"job-{i}", interval=60, grace=0) for i in range(40)]
    await pulser.watcher.stop()  # take the runtime's own watcher out of the race
    long_ago = ago(hours=1)
    await asyncio.gather(*(heartbeat(pulser, app, at=long_ago) for app in apps))
    pools = [await database.create_pool(database_url, max_size=4) for _ in range(2)]
    try:
        watchers = [HeartbeatWatcher(p, pulser.pipeline, max_sleep=1) for p in pools]
        for w in watchers:
            w.batch_size = 7  # several claims each, interleaved
        counts = await asyncio.gather(*(w.run_once() for w in watchers for _ in range(3)))
        assert sum(counts) == 40
        assert await pulser.pool.fetchval("SELECT count(*) FROM incidents WHERE source = 'heartbeat'") == 40
        assert await pulser.pool.fetchval("SELECT count(*) FROM alert_occurrences") == 40
    finally:
        for p in pools:
            await p.close()


async def test_a_fail_signal_alerts_at_once(pulser, sandbox):
    app = await register(pulser.pool)
    await ping(pulser, app)
    await ping(pulser, app, "/fail")
    [post] = await sandbox.wait_for_call("chat.postMessage", count=1, timeout=30)
    assert post.params["text"] == ":large_orange_circle: [HIGH] nightly-backup reported failure — nightly-backup"


async def test_a_miss_claimed_in_another_process_reaches_slack_without_waiting_for_a_poll(pulser, sandbox, database_url):
    first = await register(pulser.pool, name="first-job", interval=60, grace=0)
    app = await register(pulser.pool, interval=60, grace=0)
    pulser.incident_notifier.poll_interval = 30  # only a NOTIFY can make it deliver within the test
    await ping(pulser, first, "/fail")  # one delivery round; from then on it sleeps up to 30 s
    await message_now(pulser, sandbox, first)
    await pulser.watcher.stop()
    await heartbeat(pulser, app, at=ago(minutes=5))
    other_process = await database.create_pool(database_url, max_size=2)
    try:
        from alerts.pipeline import AlertPipeline, PipelineSettings

        elsewhere = AlertPipeline(other_process, PipelineSettings(default_channel=DEFAULT))
        assert await HeartbeatWatcher(other_process, elsewhere, max_sleep=1).run_once() == 1
    finally:
        await other_process.close()
    await eventually(lambda: any("nightly-backup missed" in m["text"] for m in top_level(sandbox)), timeout=15)


# --- recovery ----------------------------------------------------------------------------------


async def test_recovery_resolves_the_incident_in_place_and_replies_in_its_thread(pulser, sandbox):
    app = await register(pulser.pool, interval=300, grace=0)
    await heartbeat(pulser, app, at=ago(minutes=19))
    before = await message_now(pulser, sandbox, app)
    await ping(pulser, app)  # the app is back
    after = await eventually(
        lambda: (m := sandbox.state.find_message(before["channel"], before["ts"])) and "Resolved" in m["text"] and m, timeout=30
    )
    assert after["text"].startswith(":white_check_mark: Resolved: [HIGH] nightly-backup missed its heartbeat")
    assert "is sending heartbeats again: recovered after 14 min" in rendered(after)
    assert ACK not in action_ids(after) and PAUSE_MONITORING not in action_ids(after), "a resolved incident has no buttons to act"
    replies = await eventually(lambda: [m for m in sandbox.messages[ALERTS] if m.get("thread_ts") == before["ts"]], timeout=30)
    assert "recovered after 14 min" in replies[0]["text"]
    assert len(top_level(sandbox)) == 1
    assert (await applications.get_application(pulser.pool, app.id)).state == "up"


async def test_a_miss_after_a_recovery_reopens_the_incident_without_its_recovery_note(pulser, sandbox):
    app = await register(pulser.pool, interval=300, grace=0)
    await heartbeat(pulser, app, at=ago(minutes=19))
    first = await eventually(lambda: incident_of(pulser.pool, app), timeout=30)
    await heartbeat(pulser, app, at=ago(minutes=6))  # recovered six minutes ago, due one minute ago
    again = await eventually(lambda: _reopened(pulser.pool, app), timeout=30)
    assert again["id"] == first["id"] and again["action_note"] is None


async def _reopened(pool, app):
    incident = await incident_of(pool, app)
    return incident if incident and incident["reopened_count"] == 1 and incident["status"] == "firing" else None


async def test_a_recovery_whose_message_was_deleted_is_posted_as_a_new_message(pulser, sandbox):
    app = await register(pulser.pool, interval=300, grace=0)
    await heartbeat(pulser, app, at=ago(minutes=19))
    before = await message_now(pulser, sandbox, app)
    await delete_message(sandbox, before["channel"], before["ts"])

    await ping(pulser, app)  # the app is back; its message is gone

    recovered = await eventually(lambda: [m for m in top_level(sandbox) if "Resolved" in m["text"]], timeout=30)
    assert "recovered after 14 min" in rendered(recovered[0])


# --- buttons -----------------------------------------------------------------------------------


async def down_with_message(pulser, sandbox, app) -> dict:
    await heartbeat(pulser, app, at=ago(minutes=5))
    return await message_now(pulser, sandbox, app)


async def test_ack_on_a_heartbeat_incident_updates_it_in_place_and_is_audited(pulser, sandbox):
    app = await register(pulser.pool, interval=60, grace=0)
    message = await down_with_message(pulser, sandbox, app)
    incident = await incident_of(pulser.pool, app)
    await click(sandbox, message, ACK, "U0BOB", str(incident["id"]))
    await eventually(lambda: "Acked by <@U0BOB>" in rendered(sandbox.state.find_message(message["channel"], message["ts"])), timeout=30)
    [entry] = await audit.list_actions(pulser.pool, target_type="incident", target_id=incident["id"])
    assert (entry["actor"], entry["action"]) == ("U0BOB", "incident.ack")


async def test_pause_by_an_admin_stops_monitoring_and_resolves_the_incident(pulser, sandbox):
    app = await register(pulser.pool, interval=60, grace=0)
    message = await down_with_message(pulser, sandbox, app)
    await click(sandbox, message, PAUSE_MONITORING, "U0ALICE", str(app.id))
    after = await eventually(
        lambda: (m := sandbox.state.find_message(message["channel"], message["ts"])) and "Resolved" in m["text"] and m, timeout=30
    )
    assert "Monitoring paused by <@U0ALICE>" in rendered(after) and "Resolved by <@U0ALICE>" in rendered(after)
    assert not (await applications.get_application(pulser.pool, app.id)).is_active
    incident = await incident_of(pulser.pool, app)
    assert (incident["status"], incident["resolved_by"]) == ("resolved", "U0ALICE")
    [entry] = await audit.list_actions(pulser.pool, target_type="application", target_id=app.id)
    assert (entry["actor"], entry["action"]) == ("U0ALICE", "heartbeat_alert.pause")


async def test_an_app_paused_from_the_apps_list_or_the_api_has_its_incident_resolved_by_the_sweep(pulser, sandbox):
    app = await register(pulser.pool, interval=60, grace=0)
    message = await down_with_message(pulser, sandbox, app)
    await applications.set_active(pulser.pool, app.id, False)  # what /pulser apps and PUT is_active do
    assert (await pulser.sweep.run_once())["unwatched"] == 1
    assert (await incident_of(pulser.pool, app))["status"] == "resolved"
    await eventually(
        lambda: "Monitoring of nightly-backup is paused" in rendered(sandbox.state.find_message(message["channel"], message["ts"])),
        timeout=30,
    )


async def test_a_deleted_app_has_its_incident_resolved_by_the_sweep(pulser, sandbox):
    app = await register(pulser.pool, interval=60, grace=0)
    await down_with_message(pulser, sandbox, app)
    await applications.delete_application(pulser.pool, app.id)
    await pulser.sweep.run_once()
    incident = await incident_of(pulser.pool, app)
    assert incident["status"] == "resolved" and "was deleted from Pulser" in incident["action_note"]


async def test_pause_by_a_non_admin_is_refused_and_changes_nothing(pulser, sandbox):
    app = await register(pulser.pool, interval=60, grace=0)
    message = await down_with_message(pulser, sandbox, app)
    envelope = sandbox.block_action_envelope(
        PAUSE_MONITORING, value=str(app.id), user_id="U0BOB", channel_id=message["channel"], message_ts=message["ts"]
    )
    await sandbox.send_envelope(envelope)
    posts = await eventually(lambda: sandbox.response_url_posts, timeout=30)
    assert "Only Pulser admins can pause monitoring" in str(posts[-1][1])
    await handled(pulser.pool, envelope)  # the click's listener has returned
    assert (await applications.get_application(pulser.pool, app.id)).is_active
    assert (await incident_of(pulser.pool, app))["status"] == "firing"


async def test_a_paused_app_resumed_is_watched_again_from_its_next_heartbeat(pulser, sandbox):
    app = await register(pulser.pool, interval=60, grace=0)
    message = await down_with_message(pulser, sandbox, app)
    await click(sandbox, message, PAUSE_MONITORING, "U0ALICE", str(app.id))
    await eventually(lambda: _status(pulser.pool, app, "resolved"), timeout=30)
    resumed = await applications.set_active(pulser.pool, app.id, True)  # /pulser apps → Resume, or the API
    assert resumed.state == "new"
    await heartbeat(pulser, app, at=ago(minutes=5))
    await eventually(lambda: _status(pulser.pool, app, "firing"), timeout=30)


async def _status(pool, app, status: str) -> bool:
    incident = await incident_of(pool, app)
    return incident is not None and incident["status"] == status


async def test_the_pause_button_of_a_message_posted_before_the_upgrade_still_pauses(pulser, sandbox):
    app = await register(pulser.pool, interval=60, grace=0)
    old = await pulser.app.client.chat_postMessage(channel=ALERTS, text="🚨 Missed heartbeat: nightly-backup")
    await sandbox.send_block_action(PAUSE_MONITORING, str(app.id), user_id="U0ALICE", channel_id=ALERTS, message_ts=old["ts"])
    await eventually(lambda: _paused(pulser.pool, app), timeout=30)


async def _paused(pool, app) -> bool:
    return not (await applications.get_application(pool, app.id)).is_active


async def test_the_ack_of_a_message_posted_before_the_upgrade_says_where_the_buttons_are(pulser, sandbox):
    app = await register(pulser.pool, interval=60, grace=0)
    old = await pulser.app.client.chat_postMessage(channel=ALERTS, text="🚨 Missed heartbeat: nightly-backup")
    await sandbox.send_block_action(OLD_ACK, str(app.id), user_id="U0BOB", channel_id=ALERTS, message_ts=old["ts"])
    posts = await eventually(lambda: sandbox.response_url_posts, timeout=30)
    assert "before heartbeat alerts became incidents" in str(posts[-1][1])


# --- retention ---------------------------------------------------------------------------------


async def test_retention_keeps_the_newest_heartbeats_of_each_app(pool):
    from jobs import retention

    a = await register(pool, name="a")
    b = await register(pool, name="b")
    now = datetime.now(timezone.utc)
    rows = [
        HeartbeatRow(app.id, "success", None, now + timedelta(seconds=i), None, None, "POST", None, None, None, None)
        for app in (a, b)
        for i in range(15)
    ]
    async with pool.acquire() as conn:
        await heartbeats.insert_heartbeats(conn, rows)
    removed = await retention.prune(pool, keep_heartbeats=10)
    assert removed["heartbeats"] == 10
    for app in (a, b):
        kept = await heartbeats.list_heartbeats(pool, app.id, limit=100)
        assert len(kept) == 10
        assert kept[0]["received_at"] == now + timedelta(seconds=14)


# --- storms ------------------------------------------------------------------------------------


async def many_down_at_once(pulser, count: int) -> list:
    """`count` apps that all missed their deadline an hour ago, claimed in one watcher round."""
    apps = [await register(pulser.pool, name=f"worker-{i:02}", interval=60, grace=0) for i in range(count)]
    await pulser.watcher.stop()  # the test runs the round itself
    long_ago = ago(hours=1)
    await asyncio.gather(*(heartbeat(pulser, app, at=long_ago) for app in apps))
    assert await HeartbeatWatcher(pulser.pool, pulser.pipeline, max_sleep=1).run_once() == count
    return apps


async def settled(pool) -> bool:
    """Nothing left to post, update or name."""
    due = await pool.fetchval(
        "SELECT (SELECT count(*) FROM incident_messages WHERE render_due_at IS NOT NULL)"
        " + (SELECT count(*) FROM storm_digests WHERE render_due_at IS NOT NULL OR slack_ts IS NULL)"
        " + (SELECT count(*) FROM incident_messages WHERE folded AND named_at IS NULL)"
    )
    return due == 0


async def test_many_apps_down_at_once_are_a_few_posts_and_one_digest_naming_every_app(pulser, sandbox):
    apps = await many_down_at_once(pulser, 25)
    await eventually(lambda: settled(pulser.pool), timeout=60)
    posts = top_level(sandbox)
    assert len(posts) == THRESHOLD + 1 and sum("Alert storm" in p["text"] for p in posts) == 1
    said = "\n".join(rendered(m) for m in sandbox.messages[ALERTS])
    assert all(app.name in said for app in apps), "every app is named: its own message, the digest or its thread"
    assert sandbox.rate_limiter.refused["chat.postMessage"] == 0


async def test_apps_going_down_one_after_another_fold_into_one_digest_after_the_first_few(pulser, sandbox):
    await pulser.watcher.stop()
    watcher = HeartbeatWatcher(pulser.pool, pulser.pipeline, max_sleep=1)
    apps = [await register(pulser.pool, name=f"worker-{i:02}", interval=60, grace=0) for i in range(10)]
    for app in apps:  # a rolling storm: one app per watcher round
        await heartbeat(pulser, app, at=ago(hours=1))
        assert await watcher.run_once() == 1
    await eventually(lambda: settled(pulser.pool), timeout=60)
    posts = top_level(sandbox)
    assert [p["text"].split("] ")[-1] for p in posts[:THRESHOLD]] == [
        f"{app.name} missed its heartbeat — {app.name}" for app in apps[:THRESHOLD]
    ]
    assert len(posts) == THRESHOLD + 1 and "Alert storm" in posts[-1]["text"]


async def test_a_recovery_of_an_app_in_a_storm_updates_the_digest_not_the_channel(pulser, sandbox):
    apps = await many_down_at_once(pulser, 12)
    await eventually(lambda: settled(pulser.pool), timeout=60)
    posts_before = len(top_level(sandbox))
    await ping(pulser, apps[-1])  # folded into the digest
    digest = await pulser.pool.fetchrow("SELECT slack_channel, slack_ts FROM storm_digests")
    await eventually(lambda: "*Resolved* 1" in rendered(sandbox.state.find_message(digest["slack_channel"], digest["slack_ts"])), timeout=30)
    assert len(top_level(sandbox)) == posts_before


# --- silences and inhibition -----------------------------------------------------------------------


async def test_a_silence_on_the_app_holds_back_its_missed_heartbeat(pulser, sandbox):
    app = await register(pulser.pool, name="billing-cron", interval=60, grace=0)
    await silences.create_silence(
        pulser.pool, matchers=[{"name": "app", "op": "=", "value": "billing-cron"}], starts_at=None,
        ends_at=datetime.now(timezone.utc) + timedelta(hours=1), comment="migration", created_by="U0ALICE",
    )
    await heartbeat(pulser, app, at=ago(minutes=5))
    incident = await eventually(lambda: incident_of(pulser.pool, app), timeout=30)
    assert incident["suppressed_by"].startswith("silence:")
    await eventually(lambda: settled(pulser.pool), timeout=30)
    assert sandbox.calls_to("chat.postMessage") == []


async def test_a_firing_incident_can_inhibit_the_same_apps_heartbeat_alert(pulser, sandbox):
    await silences.create_inhibition_rule(
        pulser.pool, name="crash hides heartbeat", created_by="api", equal=["app"],
        source_matchers=[{"name": "kind", "op": "=", "value": "crash"}],
        target_matchers=[{"name": "source", "op": "=", "value": "heartbeat"}],
    )
    await pulser.pipeline.ingest(NormalizedAlert(
        source="generic", source_event_id="c1", service="billing-cron", env="production", severity="critical",
        fingerprint="crash", title="Dyno crashed", description="", occurred_at=datetime.now(timezone.utc),
        tags={"kind": "crash", "app": "billing-cron"},
    ))
    app = await register(pulser.pool, name="billing-cron", interval=60, grace=0)
    other = await register(pulser.pool, name="other-cron", interval=60, grace=0)
    await ping(pulser, app, "/fail")
    await ping(pulser, other, "/fail")
    held = await incident_of(pulser.pool, app)
    assert held["suppressed_by"].startswith("inhibition:")
    await message_now(pulser, sandbox, other)


# --- a channel that will not take Pulser's messages yet ----------------------------------------------


async def test_an_incident_for_a_channel_pulser_is_not_in_is_held_shown_by_default_and_posted_once_invited(pulser, sandbox):
    sandbox.add_channel("C0PAY", "payments")
    app = await register(pulser.pool, name="payments-sync", interval=60, grace=0, channel="C0PAY")
    sandbox.fail_next("chat.postMessage", status=200, error="not_in_channel", times=1)
    await heartbeat(pulser, app, at=ago(minutes=5))

    shown = await eventually(lambda: [m for m in top_level(sandbox, DEFAULT) if "payments-sync missed" in m["text"]], timeout=30)
    assert len(shown) == 1, "meanwhile the incident itself is in SLACK_CHANNEL"
    held = await pulser.pool.fetchrow("SELECT slack_ts, last_error FROM incident_messages WHERE channel = 'C0PAY'")
    assert (held["slack_ts"], held["last_error"]) == (None, "slack: not_in_channel"), "held, not given up"

    await sandbox.send_event({"type": "member_joined_channel", "user": sandbox.bot_user_id, "channel": "C0PAY"})
    delivered = await eventually(lambda: [m for m in top_level(sandbox, "C0PAY") if "payments-sync" in m["text"]], timeout=30)
    assert len(delivered) == 1


def test_the_missed_alert_says_when_the_app_was_last_seen_and_expected():
    from uuid import uuid4

    from alerts.heartbeat_incidents import ClaimedApp, missed_alert

    now = datetime(2026, 3, 1, 14, 12, 10, tzinfo=timezone.utc)
    app = ClaimedApp(
        id=7, uuid=uuid4(), name="nightly-backup", channel="C0OPS", expected_interval=300, grace_period=60,
        schedule=None, timezone="UTC", next_deadline=now - timedelta(minutes=6),
        last_heartbeat=now - timedelta(minutes=12), claimed_at=now,
    )
    alert = missed_alert(app, deadline=app.next_deadline, last_heartbeat=app.last_heartbeat, now=now)
    assert alert.title == "nightly-backup missed its heartbeat"
    assert alert.description == (
        "Last seen 12 min ago (2026-03-01 14:00:10 UTC); expected every 5 min, grace 1 min.\n"
        "Deadline passed at 2026-03-01 14:06:10 UTC."
    )

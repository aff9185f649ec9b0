"""Missed heartbeats end to end: the watcher, the outbox, Slack messages and their buttons.

Heartbeats are applied through the real clock rules and storage (the same calls the HTTP writer
makes), with `received_at` in the past where a test needs a deadline a second or two away.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from alerts.applications import validate_application
from alerts.heartbeat_rules import apply_heartbeat
from blocks.heartbeat_alerts import ACK, PAUSE, SNOOZE
from jobs.heartbeat_watcher import HeartbeatWatcher
from storage import applications, audit, database, heartbeats, notifications
from storage.heartbeats import HeartbeatRow
from tests.conftest import eventually

ALERTS = "C0ALERTS"


@pytest.fixture(autouse=True)
def alert_channel(sandbox):
    sandbox.add_channel(ALERTS, "ops-alerts")
    sandbox.set_user("U0ALICE", name="alice", is_admin=True)
    sandbox.set_user("U0BOB", name="bob", is_admin=False)


async def register(pool, name="nightly-backup", interval=60, grace=30, **extra):
    spec = validate_application(
        {"name": name, "expected_interval": interval, "grace_period": grace, "channel": "#ops-alerts", **extra},
        default_channel="#ops-alerts",
    )
    return await applications.create_application(pool, spec, created_by="U0ALICE")


async def heartbeat(pool, app, *, kind="success", at=None):
    """Apply one heartbeat received at `at` (default now) the way the writer does."""
    at = at or datetime.now(timezone.utc)
    async with pool.acquire() as conn, conn.transaction():
        clocks = await applications.lock_clocks(conn, [app.uuid])
        effect = apply_heartbeat(clocks[app.uuid], kind, at)
        await applications.save_clocks(conn, [(effect.clock, effect.duration_ms)])
        if effect.notification:
            await conn.execute(
                "INSERT INTO notifications (kind, app_id, payload) VALUES ($1, $2, $3)",
                effect.notification,
                app.id,
                {"received_at": at.isoformat()},
            )
        if effect.clock.next_deadline:
            await applications.notify_deadline(conn, effect.clock.next_deadline)
    return effect


def alert_posts(sandbox):
    return [c for c in sandbox.calls_to("chat.postMessage") if "thread_ts" not in c.params]


def message_text(call) -> str:
    return call.params.get("text", "")


async def current_alert(pool, app):
    rows = [r for r in await notifications.list_for_app(pool, app.id) if r["kind"] in notifications.ALERT_KINDS]
    return rows[-1] if rows else None


# --- detection ---------------------------------------------------------------------------------


async def test_an_app_is_not_alerted_before_its_deadline_and_is_right_after(pulser, sandbox):
    app = await register(pulser.pool, interval=60, grace=30)
    # Last heartbeat 88.5 s ago: due 28.5 s ago, deadline (due + 30 s grace) 1.5 s from now.
    await heartbeat(pulser.pool, app, at=datetime.now(timezone.utc) - timedelta(seconds=88.5))
    await asyncio.sleep(1.2)
    assert alert_posts(sandbox) == [], "no alert before interval + grace"
    assert (await applications.get_application(pulser.pool, app.id)).state == "up"
    [post] = await sandbox.wait_for_call("chat.postMessage", count=1, timeout=1.5)
    assert "Missed heartbeat: nightly-backup" in message_text(post)
    assert (await applications.get_application(pulser.pool, app.id)).state == "down"


async def test_the_alert_says_when_it_was_last_seen_and_what_was_expected(pulser, sandbox):
    app = await register(pulser.pool, interval=300, grace=0)
    await heartbeat(pulser.pool, app, at=datetime.now(timezone.utc) - timedelta(minutes=12))
    [post] = await sandbox.wait_for_call("chat.postMessage", count=1)
    assert message_text(post) == "🚨 Missed heartbeat: nightly-backup — last seen 12 min ago, expected every 5 min"
    assert post.params["channel"] == "#ops-alerts"
    actions = post.params["attachments"][0]["blocks"][-1]["elements"]
    assert [a["action_id"] for a in actions] == [ACK, SNOOZE, PAUSE]


async def test_a_new_deadline_wakes_a_sleeping_watcher(pulser, sandbox):
    pulser.watcher.max_sleep = 30  # it would otherwise look again only in 30 s
    await asyncio.sleep(0.2)
    app = await register(pulser.pool, interval=10, grace=0)
    await heartbeat(pulser.pool, app, at=datetime.now(timezone.utc) - timedelta(seconds=9))
    await sandbox.wait_for_call("chat.postMessage", count=1, timeout=3)


async def test_new_and_paused_apps_are_not_watched(pulser, sandbox):
    await register(pulser.pool, name="never-pinged", interval=10, grace=0)
    paused = await register(pulser.pool, name="paused-one", interval=10, grace=0)
    await heartbeat(pulser.pool, paused, at=datetime.now(timezone.utc) - timedelta(minutes=5))
    await applications.set_active(pulser.pool, paused.id, False)
    await pulser.watcher.run_once()
    await asyncio.sleep(0.3)
    assert alert_posts(sandbox) == []


async def test_two_watchers_never_alert_the_same_miss_twice(pulser, sandbox, database_url):
    long_ago = datetime.now(timezone.utc) - timedelta(hours=1)
    apps = [await register(pulser.pool, name=f"job-{i}", interval=60, grace=0) for i in range(40)]
    pulser.watcher.max_sleep = 30
    await pulser.watcher.stop()  # take the runtime's own watcher out of the race
    for app in apps:
        await heartbeat(pulser.pool, app, at=long_ago)
    pools = [await database.create_pool(database_url, max_size=4) for _ in range(2)]
    try:
        watchers = [HeartbeatWatcher(p, max_sleep=1) for p in pools]
        counts = await asyncio.gather(*(w.run_once() for w in watchers for _ in range(3)))
        assert sum(counts) == 40
        total = await pulser.pool.fetchval("SELECT count(*) FROM notifications WHERE kind = 'heartbeat_down'")
        assert total == 40
    finally:
        for p in pools:
            await p.close()


async def test_a_fail_signal_alerts_at_once(pulser, sandbox):
    app = await register(pulser.pool)
    await heartbeat(pulser.pool, app)
    await heartbeat(pulser.pool, app, kind="fail")
    pulser.notifier.wake()
    [post] = await sandbox.wait_for_call("chat.postMessage", count=1, timeout=3)
    assert message_text(post) == "🚨 nightly-backup reported a failure"


# --- recovery ----------------------------------------------------------------------------------


async def test_recovery_updates_the_alert_in_place_and_replies_in_its_thread(pulser, sandbox):
    app = await register(pulser.pool, interval=300, grace=0)
    await heartbeat(pulser.pool, app, at=datetime.now(timezone.utc) - timedelta(minutes=19))
    await sandbox.wait_for_call("chat.postMessage", count=1)
    alert = await eventually(lambda: _sent_alert(pulser.pool, app))
    await heartbeat(pulser.pool, app)  # the app is back
    pulser.notifier.wake()
    [update] = await sandbox.wait_for_call("chat.update", count=1)
    assert update.params["ts"] == alert["slack_ts"]
    assert update.params["text"].startswith("✅ nightly-backup recovered after 14 min")
    assert "actions" not in str(update.params["attachments"]), "a recovered alert has no buttons"
    replies = await eventually(lambda: [c for c in sandbox.calls_to("chat.postMessage") if c.params.get("thread_ts")])
    assert replies[0].params["thread_ts"] == alert["slack_ts"]
    assert "recovered after 14 min" in replies[0].params["text"]
    assert (await applications.get_application(pulser.pool, app.id)).state == "up"


async def test_a_snoozed_app_is_marked_down_without_an_alert(pulser, sandbox):
    app = await register(pulser.pool, interval=60, grace=0)
    await applications.snooze(pulser.pool, app.id, datetime.now(timezone.utc) + timedelta(hours=1))
    await heartbeat(pulser.pool, app, at=datetime.now(timezone.utc) - timedelta(minutes=5))
    await eventually(lambda: _state(pulser.pool, app, "down"))
    rows = await eventually(lambda: _settled(pulser.pool, app))
    assert [r["status"] for r in rows] == ["suppressed"]
    assert alert_posts(sandbox) == []


async def _state(pool, app, state):
    return (await applications.get_application(pool, app.id)).state == state


async def _settled(pool, app):
    rows = await notifications.list_for_app(pool, app.id)
    return rows if rows and all(r["status"] != "pending" for r in rows) else None


async def test_a_failed_slack_post_is_retried(pulser, sandbox):
    sandbox.fail_next("chat.postMessage", status=200, error="internal_error", times=1)
    app = await register(pulser.pool, interval=60, grace=0)
    await heartbeat(pulser.pool, app, at=datetime.now(timezone.utc) - timedelta(minutes=5))
    row = await eventually(lambda: _with_attempts(pulser.pool, app))
    assert row["status"] == "pending" and "internal_error" in row["last_error"]
    await pulser.pool.execute("UPDATE notifications SET next_attempt_at = now() WHERE id = $1", row["id"])
    pulser.notifier.wake()
    await eventually(lambda: _status(pulser.pool, row["id"], "sent"))


async def _with_attempts(pool, app):
    rows = await notifications.list_for_app(pool, app.id)
    return rows[0] if rows and rows[0]["last_error"] else None


async def _status(pool, notification_id, status):
    return (await notifications.get_notification(pool, notification_id))["status"] == status


# --- buttons -----------------------------------------------------------------------------------


async def posted_alert(pulser, sandbox, app):
    await heartbeat(pulser.pool, app, at=datetime.now(timezone.utc) - timedelta(minutes=5))
    await sandbox.wait_for_call("chat.postMessage", count=1)
    return await eventually(lambda: _sent_alert(pulser.pool, app))


async def _sent_alert(pool, app):
    alert = await current_alert(pool, app)
    return alert if alert and alert["status"] == "sent" else None


async def click(sandbox, alert, action_id, user, value, **extra):
    return await sandbox.send_block_action(
        action_id=action_id, value=value, user_id=user, channel_id=alert["slack_channel"],
        message_ts=alert["slack_ts"], **extra,
    )


async def test_ack_updates_the_alert_in_place_and_is_audited(pulser, sandbox):
    app = await register(pulser.pool, interval=60, grace=0)
    alert = await posted_alert(pulser, sandbox, app)
    await click(sandbox, alert, ACK, "U0BOB", str(app.id))
    [update] = await sandbox.wait_for_call("chat.update", count=1)
    assert update.params["ts"] == alert["slack_ts"]
    assert "Acknowledged by <@U0BOB>" in str(update.params["attachments"])
    assert ACK not in str(update.params["attachments"]), "the Ack button goes once acked"
    [entry] = await audit.list_actions(pulser.pool, target_type="application", target_id=app.id)
    assert (entry["actor"], entry["action"]) == ("U0BOB", "heartbeat_alert.ack")


async def choose_snooze(sandbox, alert, user, value):
    """A pick in the Snooze select menu: the sandbox builds a button click; make it a selection."""
    envelope = sandbox.block_action_envelope(
        action_id=SNOOZE, user_id=user, channel_id=alert["slack_channel"], message_ts=alert["slack_ts"]
    )
    action = envelope["payload"]["actions"][0]
    action.pop("value", None)
    action["type"] = "static_select"
    action["selected_option"] = {"text": {"type": "plain_text", "text": "1 hour"}, "value": value}
    return await sandbox.send_envelope(envelope)


async def test_snooze_sets_the_app_quiet_until_then(pulser, sandbox):
    app = await register(pulser.pool, interval=60, grace=0)
    alert = await posted_alert(pulser, sandbox, app)
    await choose_snooze(sandbox, alert, "U0BOB", f"{app.id}:3600")
    [update] = await sandbox.wait_for_call("chat.update", count=1)
    assert "Snoozed by <@U0BOB>" in str(update.params["attachments"])
    stored = await applications.get_application(pulser.pool, app.id)
    assert timedelta(minutes=59) < stored.snoozed_until - datetime.now(timezone.utc) <= timedelta(hours=1)


async def test_a_forged_snooze_value_is_refused(pulser, sandbox):
    app = await register(pulser.pool, interval=60, grace=0)
    alert = await posted_alert(pulser, sandbox, app)
    await choose_snooze(sandbox, alert, "U0BOB", f"{app.id}:99999999")
    posts = await eventually(lambda: sandbox.response_url_posts)
    assert "not valid" in str(posts[-1][1])
    assert (await applications.get_application(pulser.pool, app.id)).snoozed_until is None


async def test_pause_by_an_admin_stops_monitoring(pulser, sandbox):
    app = await register(pulser.pool, interval=60, grace=0)
    alert = await posted_alert(pulser, sandbox, app)
    await click(sandbox, alert, PAUSE, "U0ALICE", str(app.id))
    [update] = await sandbox.wait_for_call("chat.update", count=1)
    assert "Monitoring paused by <@U0ALICE>" in str(update.params["attachments"])
    assert not (await applications.get_application(pulser.pool, app.id)).is_active


async def test_pause_by_a_non_admin_is_refused_and_changes_nothing(pulser, sandbox):
    app = await register(pulser.pool, interval=60, grace=0)
    alert = await posted_alert(pulser, sandbox, app)
    await click(sandbox, alert, PAUSE, "U0BOB", str(app.id))
    posts = await eventually(lambda: sandbox.response_url_posts)
    assert "Only Pulser admins" in str(posts[-1][1])
    assert (await applications.get_application(pulser.pool, app.id)).is_active
    assert sandbox.calls_to("chat.update") == []


async def test_an_ack_after_recovery_keeps_the_alert_recovered(pulser, sandbox):
    app = await register(pulser.pool, interval=300, grace=0)
    alert = await posted_alert(pulser, sandbox, app)
    await heartbeat(pulser.pool, app)
    pulser.notifier.wake()
    await sandbox.wait_for_call("chat.update", count=1)
    await click(sandbox, alert, ACK, "U0BOB", str(app.id))
    updates = await sandbox.wait_for_call("chat.update", count=2)
    assert updates[-1].params["text"].startswith("✅ nightly-backup recovered")
    assert "Acknowledged by <@U0BOB>" in str(updates[-1].params["attachments"])


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
    long_ago = datetime.now(timezone.utc) - timedelta(hours=1)
    apps = [await register(pulser.pool, name=f"worker-{i:02}", interval=60, grace=0) for i in range(count)]
    # Take the runtime's own watcher and notifier loop out: the test runs explicit rounds.
    await pulser.watcher.stop()
    await pulser.notifier.stop()
    for app in apps:
        await heartbeat(pulser.pool, app, at=long_ago)
    await HeartbeatWatcher(pulser.pool, max_sleep=1).run_once()
    return apps


async def test_many_apps_down_at_once_become_one_summary_message(pulser, sandbox):
    await many_down_at_once(pulser, 25)
    await pulser.notifier.deliver_due()
    [post] = alert_posts(sandbox)
    assert message_text(post) == "🚨 25 apps missed their heartbeats"
    assert "worker-00" in str(post.params["attachments"]) and "and 5 more" in str(post.params["attachments"])
    statuses = await pulser.pool.fetch("SELECT DISTINCT status, slack_ts FROM notifications")
    assert len(statuses) == 1 and statuses[0]["status"] == "sent"


async def test_a_recovery_after_a_storm_replies_in_the_summary_thread(pulser, sandbox):
    apps = await many_down_at_once(pulser, 12)
    await pulser.notifier.deliver_due()
    alert_posts(sandbox)
    await heartbeat(pulser.pool, apps[3])
    await pulser.notifier.deliver_due()
    replies = [c for c in sandbox.calls_to("chat.postMessage") if c.params.get("thread_ts")]
    assert len(replies) == 1 and "worker-03" in replies[0].params["text"]
    assert sandbox.calls_to("chat.update") == [], "the summary is not rewritten for one app"


async def test_later_rounds_of_a_storm_update_the_same_summary(pulser, sandbox):
    await many_down_at_once(pulser, 30)
    await pulser.notifier.deliver_due(limit=15)  # two rounds of 15
    await pulser.notifier.deliver_due(limit=15)
    [post] = alert_posts(sandbox)
    [update] = sandbox.calls_to("chat.update")
    assert message_text(update) == "🚨 30 apps missed their heartbeats"
    assert await pulser.pool.fetchval("SELECT count(DISTINCT slack_ts) FROM notifications") == 1


async def test_an_alert_enqueued_by_another_process_is_delivered_without_waiting_for_a_poll(pulser, sandbox, database_url):
    app = await register(pulser.pool, interval=60, grace=0)
    await heartbeat(pulser.pool, app)
    pulser.notifier.poll_interval = 30  # only a NOTIFY can make it deliver within the test
    pulser.notifier.wake()
    await asyncio.sleep(0.3)
    other_process = await database.create_pool(database_url, max_size=1)
    try:
        async with other_process.acquire() as conn, conn.transaction():
            await notifications.enqueue_notifications(
                conn, [notifications.NewNotification("heartbeat_fail", app.id, {"received_at": datetime.now(timezone.utc).isoformat()})]
            )
    finally:
        await other_process.close()
    [post] = await sandbox.wait_for_call("chat.postMessage", count=1, timeout=3)
    assert message_text(post) == "🚨 nightly-backup reported a failure"


async def test_an_error_no_retry_can_fix_fails_the_alert_at_once_and_shows_in_health(pulser, sandbox):
    sandbox.fail_next("chat.postMessage", status=200, error="channel_not_found", times=1)
    app = await register(pulser.pool, interval=60, grace=0)
    await heartbeat(pulser.pool, app, at=datetime.now(timezone.utc) - timedelta(minutes=5))
    row = await eventually(lambda: _settled(pulser.pool, app))
    assert [(r["status"], r["attempts"], r["last_error"]) for r in row] == [("failed", 1, "slack: channel_not_found")]
    health = await pulser.health_report()
    assert health["components"]["slack_delivery"]["failed"] == 1


# --- silences and inhibition -------------------------------------------------------------------------


async def test_a_silence_on_the_app_holds_back_its_missed_heartbeat_alert(pulser, sandbox):
    from storage import silences

    app = await register(pulser.pool, name="billing-cron", interval=60, grace=0)
    await silences.create_silence(
        pulser.pool, matchers=[{"name": "app", "op": "=", "value": "billing-cron"}], starts_at=None,
        ends_at=datetime.now(timezone.utc) + timedelta(hours=1), comment="migration", created_by="U0ALICE",
    )
    await heartbeat(pulser.pool, app, kind="fail")
    pulser.notifier.wake()
    row = await eventually(lambda: _delivered_or_held(pulser.pool, app), timeout=5)
    assert row["status"] == "suppressed" and row["last_error"].startswith("silence:")
    assert alert_posts(sandbox) == []


async def _delivered_or_held(pool, app):
    row = await current_alert(pool, app)
    return row if row and row["status"] != "pending" else None


async def test_a_firing_incident_can_inhibit_the_same_apps_heartbeat_alert(pulser, sandbox):
    from alerts.normalized import NormalizedAlert
    from storage import silences

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
    await heartbeat(pulser.pool, app, kind="fail")
    await heartbeat(pulser.pool, other, kind="fail")
    pulser.notifier.wake()
    held = await eventually(lambda: _delivered_or_held(pulser.pool, app), timeout=5)
    assert held["status"] == "suppressed" and held["last_error"].startswith("inhibition:")
    sent = await eventually(lambda: _delivered_or_held(pulser.pool, other), timeout=5)
    assert sent["status"] == "sent"

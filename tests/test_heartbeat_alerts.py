"""Missed heartbeats end to end: the writer, the watcher, the outbox, Slack messages and buttons.

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
from blocks.heartbeat_alerts import ACK, PAUSE, SNOOZE
from jobs.heartbeat_watcher import HeartbeatWatcher
from storage import applications, audit, database, heartbeats, notifications
from storage.heartbeats import HeartbeatRow
from tests.conftest import eventually, handled

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


def alert_posts(sandbox):
    return [c for c in sandbox.calls_to("chat.postMessage") if "thread_ts" not in c.params]


def message_text(call) -> str:
    return call.params.get("text", "")


async def current_alert(pool, app):
    rows = [r for r in await notifications.list_for_app(pool, app.id) if r["kind"] in notifications.ALERT_KINDS]
    return rows[-1] if rows else None


async def watcher_ran_again(pulser) -> None:
    """Make the runtime's watcher take one more look and wait until it has (it then sleeps anew)."""
    before = pulser.watcher.last_run
    pulser.watcher.wake()
    await eventually(lambda: pulser.watcher.last_run is not None and pulser.watcher.last_run != before, timeout=30)


# --- detection ---------------------------------------------------------------------------------


async def test_an_app_is_not_alerted_before_its_deadline_and_is_right_after(pulser, sandbox):
    app = await register(pulser.pool, interval=60, grace=30)
    # Last heartbeat 88 s ago: due 28 s ago, deadline (due + 30 s grace) 2 s from now.
    await heartbeat(pulser, app, at=ago(seconds=88))
    deadline = (await applications.get_application(pulser.pool, app.id)).next_deadline
    [post] = await sandbox.wait_for_call("chat.postMessage", count=1, timeout=30)
    assert "Missed heartbeat: nightly-backup" in message_text(post)
    alert = await current_alert(pulser.pool, app)
    # The claim's time is the database's clock, the one deadlines are compared with.
    assert alert["created_at"] >= deadline, "no alert before interval + grace"
    # The watcher's periodic look comes only every 30 s: a claim this close came from the deadline.
    assert alert["created_at"] - deadline < timedelta(seconds=15)
    stored = await applications.get_application(pulser.pool, app.id)
    assert (stored.state, stored.down_since) == ("down", deadline)


async def test_the_alert_says_when_it_was_last_seen_and_what_was_expected(pulser, sandbox):
    app = await register(pulser.pool, interval=300, grace=0)
    await heartbeat(pulser, app, at=ago(minutes=12))
    [post] = await sandbox.wait_for_call("chat.postMessage", count=1, timeout=30)
    assert message_text(post) == "🚨 Missed heartbeat: nightly-backup — last seen 12 min ago, expected every 5 min"
    assert post.params["channel"] == "#ops-alerts"
    actions = post.params["attachments"][0]["blocks"][-1]["elements"]
    assert [a["action_id"] for a in actions] == [ACK, SNOOZE, PAUSE]


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
    assert await pulser.watcher.run_once() == 1
    [post] = await sandbox.wait_for_call("chat.postMessage", count=1, timeout=30)
    await eventually(lambda: _delivered_or_held(pulser.pool, watched), timeout=30)
    assert "watched-one" in message_text(post)
    assert [message_text(p) for p in alert_posts(sandbox)] == [message_text(post)]
    total = await pulser.pool.fetchval("SELECT count(*) FROM notifications WHERE kind = 'heartbeat_down'")
    assert total == 1


async def test_two_watchers_never_alert_the_same_miss_twice(pulser, sandbox, database_url):
    apps = [await register(pulser.pool, name=f"job-{i}", interval=60, grace=0) for i in range(40)]
    await pulser.watcher.stop()  # take the runtime's own watcher out of the race
    long_ago = ago(hours=1)
    await asyncio.gather(*(heartbeat(pulser, app, at=long_ago) for app in apps))
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
    await ping(pulser, app)
    await ping(pulser, app, "/fail")
    [post] = await sandbox.wait_for_call("chat.postMessage", count=1, timeout=30)
    assert message_text(post) == "🚨 nightly-backup reported a failure"


# --- recovery ----------------------------------------------------------------------------------


async def test_recovery_updates_the_alert_in_place_and_replies_in_its_thread(pulser, sandbox):
    app = await register(pulser.pool, interval=300, grace=0)
    await heartbeat(pulser, app, at=ago(minutes=19))
    alert = await eventually(lambda: _sent_alert(pulser.pool, app), timeout=30)
    await ping(pulser, app)  # the app is back
    [update] = await sandbox.wait_for_call("chat.update", count=1, timeout=30)
    assert update.params["ts"] == alert["slack_ts"]
    assert update.params["text"].startswith("✅ nightly-backup recovered after 14 min")
    assert "actions" not in str(update.params["attachments"]), "a recovered alert has no buttons"
    replies = await eventually(lambda: [c for c in sandbox.calls_to("chat.postMessage") if c.params.get("thread_ts")], timeout=30)
    assert replies[0].params["thread_ts"] == alert["slack_ts"]
    assert "recovered after 14 min" in replies[0].params["text"]
    assert (await applications.get_application(pulser.pool, app.id)).state == "up"


async def test_a_recovery_whose_alert_message_was_deleted_is_posted_as_a_new_message(pulser, sandbox):
    app = await register(pulser.pool, interval=300, grace=0)
    await heartbeat(pulser, app, at=ago(minutes=19))
    alert = await eventually(lambda: _sent_alert(pulser.pool, app), timeout=30)
    await delete_message(sandbox, alert["slack_channel"], alert["slack_ts"])

    await ping(pulser, app)  # the app is back; its alert message is gone

    recovered = await eventually(lambda: [c for c in alert_posts(sandbox) if "recovered" in message_text(c)], timeout=30)
    assert recovered[0].params["text"].startswith("✅ nightly-backup recovered after 14 min")
    assert "actions" not in str(recovered[0].params["attachments"]), "a recovered alert has no buttons"
    rows = await eventually(lambda: _settled(pulser.pool, app), timeout=30)
    assert [r["status"] for r in rows] == ["sent", "sent"], "the recovery is delivered, not retried or failed"
    assert len(sandbox.calls_to("chat.update")) == 1, "one try at the old message, then a new post"


async def test_a_snoozed_app_is_marked_down_without_an_alert(pulser, sandbox):
    app = await register(pulser.pool, interval=60, grace=0)
    await applications.snooze(pulser.pool, app.id, datetime.now(timezone.utc) + timedelta(hours=1))
    await heartbeat(pulser, app, at=ago(minutes=5))
    await eventually(lambda: _state(pulser.pool, app, "down"), timeout=30)
    rows = await eventually(lambda: _settled(pulser.pool, app), timeout=30)
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
    await heartbeat(pulser, app, at=ago(minutes=5))
    row = await eventually(lambda: _with_attempts(pulser.pool, app), timeout=30)
    assert row["status"] == "pending" and "internal_error" in row["last_error"]
    # Due now instead of after the backoff; the wake stands in for the next poll.
    await pulser.pool.execute("UPDATE notifications SET next_attempt_at = now() WHERE id = $1", row["id"])
    pulser.notifier.wake()
    await eventually(lambda: _status(pulser.pool, row["id"], "sent"), timeout=30)


async def _with_attempts(pool, app):
    rows = await notifications.list_for_app(pool, app.id)
    return rows[0] if rows and rows[0]["last_error"] else None


async def _status(pool, notification_id, status):
    return (await notifications.get_notification(pool, notification_id))["status"] == status


# --- buttons -----------------------------------------------------------------------------------


async def posted_alert(pulser, sandbox, app):
    await heartbeat(pulser, app, at=ago(minutes=5))
    await sandbox.wait_for_call("chat.postMessage", count=1, timeout=30)
    return await eventually(lambda: _sent_alert(pulser.pool, app), timeout=30)


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
    [update] = await sandbox.wait_for_call("chat.update", count=1, timeout=30)
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
    [update] = await sandbox.wait_for_call("chat.update", count=1, timeout=30)
    assert "Snoozed by <@U0BOB>" in str(update.params["attachments"])
    stored = await applications.get_application(pulser.pool, app.id)
    assert timedelta(minutes=59) < stored.snoozed_until - datetime.now(timezone.utc) <= timedelta(hours=1)


async def test_a_forged_snooze_value_is_refused(pulser, sandbox):
    app = await register(pulser.pool, interval=60, grace=0)
    alert = await posted_alert(pulser, sandbox, app)
    await choose_snooze(sandbox, alert, "U0BOB", f"{app.id}:99999999")
    posts = await eventually(lambda: sandbox.response_url_posts, timeout=30)
    assert "not valid" in str(posts[-1][1])
    assert (await applications.get_application(pulser.pool, app.id)).snoozed_until is None


async def test_pause_by_an_admin_stops_monitoring(pulser, sandbox):
    app = await register(pulser.pool, interval=60, grace=0)
    alert = await posted_alert(pulser, sandbox, app)
    await click(sandbox, alert, PAUSE, "U0ALICE", str(app.id))
    [update] = await sandbox.wait_for_call("chat.update", count=1, timeout=30)
    assert "Monitoring paused by <@U0ALICE>" in str(update.params["attachments"])
    assert not (await applications.get_application(pulser.pool, app.id)).is_active


async def test_pause_by_a_non_admin_is_refused_and_changes_nothing(pulser, sandbox):
    app = await register(pulser.pool, interval=60, grace=0)
    alert = await posted_alert(pulser, sandbox, app)
    envelope = sandbox.block_action_envelope(
        PAUSE, value=str(app.id), user_id="U0BOB", channel_id=alert["slack_channel"], message_ts=alert["slack_ts"]
    )
    await sandbox.send_envelope(envelope)
    posts = await eventually(lambda: sandbox.response_url_posts, timeout=30)
    assert "Only Pulser admins" in str(posts[-1][1])
    await handled(pulser.pool, envelope)  # the click's listener has returned
    assert (await applications.get_application(pulser.pool, app.id)).is_active
    assert sandbox.calls_to("chat.update") == []


async def test_an_ack_after_recovery_keeps_the_alert_recovered(pulser, sandbox):
    app = await register(pulser.pool, interval=300, grace=0)
    alert = await posted_alert(pulser, sandbox, app)
    await ping(pulser, app)
    await sandbox.wait_for_call("chat.update", count=1, timeout=30)
    await click(sandbox, alert, ACK, "U0BOB", str(app.id))
    updates = await sandbox.wait_for_call("chat.update", count=2, timeout=30)
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
    apps = [await register(pulser.pool, name=f"worker-{i:02}", interval=60, grace=0) for i in range(count)]
    # Take the runtime's own watcher and notifier loop out: the test runs explicit rounds.
    await pulser.watcher.stop()
    await pulser.notifier.stop()
    long_ago = ago(hours=1)
    await asyncio.gather(*(heartbeat(pulser, app, at=long_ago) for app in apps))
    assert await HeartbeatWatcher(pulser.pool, max_sleep=1).run_once() == count
    return apps


async def test_many_apps_down_at_once_become_one_summary_message(pulser, sandbox):
    await many_down_at_once(pulser, 25)
    await pulser.notifier.deliver_due()
    [post] = alert_posts(sandbox)
    assert message_text(post) == "🚨 25 apps missed their heartbeats"
    for i in range(25):  # every app is named, not just the first few
        assert f"worker-{i:02}" in str(post.params["attachments"])
    statuses = await pulser.pool.fetch("SELECT DISTINCT status, slack_ts FROM notifications")
    assert len(statuses) == 1 and statuses[0]["status"] == "sent"


async def test_apps_going_down_one_after_another_fold_into_one_summary_after_the_first_few(pulser, sandbox):
    await pulser.watcher.stop()
    await pulser.notifier.stop()
    pulser.notifier.storm_update_interval = 0  # every round may rewrite the summary (no waiting here)
    apps = [await register(pulser.pool, name=f"worker-{i:02}", interval=60, grace=0) for i in range(12)]
    for app in apps:  # a rolling storm: one app per watcher round
        await heartbeat(pulser, app, at=ago(hours=1))
        assert await HeartbeatWatcher(pulser.pool, max_sleep=1).run_once() == 1
        await pulser.notifier.deliver_due()
    threshold = pulser.notifier.storm_threshold
    assert len(alert_posts(sandbox)) == threshold + 1
    summary = [m for m in sandbox.messages[ALERTS] if not m.get("thread_ts")][-1]  # as it reads now
    assert summary["text"] == f"🚨 {12 - threshold} apps missed their heartbeats"
    for app in apps[threshold:]:
        assert app.name in json.dumps(summary["attachments"])
    assert sandbox.rate_limiter.refused["chat.postMessage"] == 0


async def test_a_storm_summary_slack_keeps_rate_limiting_is_held_not_given_up(pulser, sandbox):
    await many_down_at_once(pulser, 12)
    sandbox.fail_next("chat.postMessage", status=429, retry_after=1, times=200)
    for _ in range(3):  # each round the client waits out a few 429s, then hands the alerts back
        await pulser.notifier.deliver_due()
        await pulser.pool.execute("UPDATE notifications SET next_attempt_at = now()")
    rows = await pulser.pool.fetch("SELECT status, attempts FROM notifications")
    assert {r["status"] for r in rows} == {"pending"}, "a rate limit never gives an alert up"
    assert max(r["attempts"] for r in rows) == 0, "waiting for Slack uses up none of an alert's tries"
    sandbox.state.failures.clear()
    await pulser.notifier.deliver_due()
    [summary] = [m for m in sandbox.messages.get(ALERTS, []) if not m.get("thread_ts")]
    assert summary["text"] == "🚨 12 apps missed their heartbeats"


async def test_a_recovery_after_a_storm_is_shown_in_the_summary_in_place(pulser, sandbox):
    apps = await many_down_at_once(pulser, 12)
    await pulser.notifier.deliver_due()
    await ping(pulser, apps[3])
    await pulser.notifier.deliver_due()
    [update] = sandbox.calls_to("chat.update")
    shown = json.dumps(update.params["attachments"])
    assert "Recovered (1)" in shown and "worker-03" in shown.split("Recovered (1)")[1]
    assert "Still down (11)" in shown
    assert [c for c in sandbox.calls_to("chat.postMessage") if c.params.get("thread_ts")] == []


async def test_later_rounds_of_a_storm_update_the_same_summary(pulser, sandbox):
    await many_down_at_once(pulser, 30)
    pulser.notifier.storm_update_interval = 0  # the second round may rewrite the summary at once
    await pulser.notifier.deliver_due(limit=15)  # two rounds of 15
    await pulser.notifier.deliver_due(limit=15)
    [post] = alert_posts(sandbox)
    [update] = sandbox.calls_to("chat.update")
    assert message_text(update) == "🚨 30 apps missed their heartbeats"
    assert await pulser.pool.fetchval("SELECT count(DISTINCT slack_ts) FROM notifications") == 1


async def test_alerts_arriving_right_after_a_summary_update_wait_and_join_the_next_one(pulser, sandbox):
    await many_down_at_once(pulser, 30)
    await pulser.notifier.deliver_due(limit=15)
    await pulser.notifier.deliver_due(limit=15)  # within storm_update_interval of the post: deferred
    assert sandbox.calls_to("chat.update") == []
    waiting = await pulser.pool.fetch("SELECT status, attempts FROM notifications WHERE status = 'pending'")
    assert len(waiting) == 15 and {r["attempts"] for r in waiting} == {0}
    await pulser.pool.execute("UPDATE notifications SET next_attempt_at = now() WHERE status = 'pending'")
    pulser.notifier.storm_update_interval = 0
    await pulser.notifier.deliver_due()
    [update] = sandbox.calls_to("chat.update")
    assert message_text(update) == "🚨 30 apps missed their heartbeats"


async def test_an_alert_enqueued_by_another_process_is_delivered_without_waiting_for_a_poll(pulser, sandbox, database_url):
    first = await register(pulser.pool, name="first-job", interval=60, grace=0)
    app = await register(pulser.pool, interval=60, grace=0)
    pulser.notifier.poll_interval = 30  # only a NOTIFY can make it deliver within the test
    # One delivery round after the change: from then on the notifier sleeps up to 30 s between polls.
    await ping(pulser, first, "/fail")
    await eventually(lambda: _sent_alert(pulser.pool, first), timeout=30)
    other_process = await database.create_pool(database_url, max_size=1)
    try:
        async with other_process.acquire() as conn, conn.transaction():
            await notifications.enqueue_notifications(
                conn, [notifications.NewNotification("heartbeat_fail", app.id, {"received_at": datetime.now(timezone.utc).isoformat()})]
            )
    finally:
        await other_process.close()
    posts = await sandbox.wait_for_call("chat.postMessage", count=2, timeout=30)
    assert message_text(posts[-1]) == "🚨 nightly-backup reported a failure"


async def test_more_alerts_than_a_channel_takes_at_once_are_each_posted_once_at_slacks_pace(pulser, sandbox):
    apps = await many_down_at_once(pulser, pulser.notifier.storm_threshold)  # one short of a storm
    await pulser.notifier.deliver_due()
    posted = sorted(message["text"] for message in sandbox.messages[ALERTS])
    assert posted == sorted(f"🚨 Missed heartbeat: {app.name} — last seen 1 h ago, expected every 1 min" for app in apps)
    # The channel takes a burst, then 1 a second: Pulser spends its budget first, so Slack never refuses.
    assert sandbox.rate_limiter.refused["chat.postMessage"] == 0
    statuses = await pulser.pool.fetch("SELECT status, attempts FROM notifications")
    assert {(r["status"], r["attempts"]) for r in statuses} == {("sent", 1)}


async def test_an_alert_slack_keeps_rate_limiting_is_held_not_given_up(pulser, sandbox):
    pulser.notifier.max_attempts = 1  # any error that counted as an attempt would fail it at once
    # The first try and each of the client's retries (it waits Retry-After in between) are refused.
    sandbox.fail_next("chat.postMessage", status=429, retry_after=1, times=4)
    app = await register(pulser.pool, interval=60, grace=0)
    await heartbeat(pulser, app, at=ago(minutes=5))
    row = await eventually(lambda: _with_attempts(pulser.pool, app), timeout=60)
    assert (row["status"], row["attempts"], row["last_error"]) == ("pending", 0, "slack: ratelimited")
    # Due now instead of after the backoff; the wake stands in for the next poll.
    await pulser.pool.execute("UPDATE notifications SET next_attempt_at = now() WHERE id = $1", row["id"])
    pulser.notifier.wake()
    await eventually(lambda: _status(pulser.pool, row["id"], "sent"), timeout=30)
    assert [m["text"] for m in sandbox.messages[ALERTS]] == ["🚨 Missed heartbeat: nightly-backup — last seen 5 min ago, expected every 1 min"]


async def test_an_error_no_retry_can_fix_fails_the_alert_at_once_and_shows_in_health(pulser, sandbox):
    # The message itself is refused (a channel refusing Pulser is held instead: see the end of the file).
    sandbox.fail_next("chat.postMessage", status=200, error="invalid_blocks", times=1)
    app = await register(pulser.pool, interval=60, grace=0)
    await heartbeat(pulser, app, at=ago(minutes=5))
    row = await eventually(lambda: _settled(pulser.pool, app), timeout=30)
    assert [(r["status"], r["attempts"], r["last_error"]) for r in row] == [("failed", 1, "slack: invalid_blocks")]
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
    await ping(pulser, app, "/fail")
    row = await eventually(lambda: _delivered_or_held(pulser.pool, app), timeout=30)
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
    await ping(pulser, app, "/fail")
    await ping(pulser, other, "/fail")
    held = await eventually(lambda: _delivered_or_held(pulser.pool, app), timeout=30)
    assert held["status"] == "suppressed" and held["last_error"].startswith("inhibition:")
    sent = await eventually(lambda: _delivered_or_held(pulser.pool, other), timeout=30)
    assert sent["status"] == "sent"


# --- a channel that will not take Pulser's messages yet ----------------------------------------------


async def test_an_alert_for_a_channel_pulser_is_not_in_is_held_shown_by_default_and_posted_once_invited(pulser, sandbox):
    sandbox.add_channel("C0PAY", "payments")
    app = await register(pulser.pool, name="payments-sync", interval=60, grace=0, channel="C0PAY")
    sandbox.fail_next("chat.postMessage", status=200, error="not_in_channel", times=1)
    await heartbeat(pulser, app, at=ago(minutes=5))

    shown = await eventually(
        lambda: [m for m in sandbox.messages.get(ALERTS, []) if "payments-sync" in m.get("text", "")], timeout=30
    )
    assert "cannot post in" in shown[0]["text"], "meanwhile the alert itself is in the default channel, saying why"
    row = await current_alert(pulser.pool, app)
    assert row["status"] == "pending" and row["last_error"] == "slack: not_in_channel", "held, not given up"

    await sandbox.send_event({"type": "member_joined_channel", "user": sandbox.bot_user_id, "channel": "C0PAY"})
    delivered = await eventually(
        lambda: [m for m in sandbox.messages.get("C0PAY", []) if "payments-sync" in m.get("text", "")], timeout=30
    )
    assert len(delivered) == 1
    await eventually(lambda: _status_is(pulser.pool, app, "sent"), timeout=30)
    assert len([m for m in sandbox.messages.get(ALERTS, []) if "payments-sync" in m.get("text", "")]) == 1


async def _status_is(pool, app, status: str) -> bool:
    row = await current_alert(pool, app)
    return row is not None and row["status"] == status


async def test_one_summary_rewrite_takes_every_alert_waiting_for_it_not_one_rounds_worth(pulser, sandbox):
    await many_down_at_once(pulser, 30)
    await pulser.notifier.deliver_due(limit=10)  # the summary, naming 10
    await pulser.notifier.deliver_due(limit=10)  # a moment later: these wait for the next rewrite
    await pulser.notifier.deliver_due(limit=10)
    await pulser.pool.execute("UPDATE notifications SET next_attempt_at = now() WHERE status = 'pending'")
    pulser.notifier.storm_update_interval = 0
    await pulser.notifier.deliver_due(limit=5)  # a small round, yet the rewrite takes all 20 waiting
    [update] = sandbox.calls_to("chat.update")
    assert message_text(update) == "🚨 30 apps missed their heartbeats"
    assert await pulser.pool.fetchval("SELECT count(*) FROM notifications WHERE status = 'pending'") == 0

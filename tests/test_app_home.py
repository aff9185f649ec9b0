"""The App Home dashboard, end to end: opening Home publishes it, its buttons open the right forms,
and the refresher republishes for recent visitors when something changes, debounced. A running
Pulser against the sandbox, alerts through the real pipeline."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from sandbox.page import dm_channel_of
from alerts.applications import validate_application
from alerts.heartbeat_writer import HeartbeatEvent
from alerts.home import HomeRefresher
from alerts.normalized import NormalizedAlert
from alerts.oncall.validation import validate_schedule
from blocks.applications import REGISTER_CALLBACK
from blocks.heroku import CONFIG_CALLBACK
from blocks.home import EDIT_RULES, HEROKU_SETTINGS, NOTICE_CALLBACK, REGISTER_APP
from blocks.rules import ADD, ADD_CALLBACK
from storage import applications, schedules
from tests.conftest import eventually

ADMIN = "U0ADA"  # a workspace admin, as users.info says
MEMBER = "U0BOB"  # an ordinary member


@pytest.fixture(autouse=True)
def people(sandbox):
    sandbox.set_user(ADMIN, name="ada", is_admin=True)
    sandbox.set_user(MEMBER, name="bob")


def alert(fingerprint: str, title: str | None = None) -> NormalizedAlert:
    return NormalizedAlert(
        source="generic", source_event_id=fingerprint, service="api", env="production", severity="high",
        fingerprint=fingerprint, title=title or f"{fingerprint} is failing", description="",
        occurred_at=datetime.now(timezone.utc),
    )


def view_text(view: dict) -> str:
    """Everything a person reads on a view (sections, fields, context)."""
    return json.dumps(view.get("blocks", []), ensure_ascii=False)


async def open_home(sandbox, user: str = ADMIN) -> dict:
    before = len(sandbox.calls_to("views.publish"))
    await sandbox.send_app_home_opened(user)
    await sandbox.wait_for_call("views.publish", count=before + 1)
    return sandbox.home_views[user]


async def click_on_home(sandbox, action_id: str, user: str) -> dict:
    """Click a Home button; returns the modal it opened."""
    home = sandbox.home_views.get(user) or await open_home(sandbox, user)
    before = len(sandbox.calls_to("views.open"))
    await sandbox.send_block_action(action_id, action_id, user_id=user, view_id=home["id"])
    await sandbox.wait_for_call("views.open", count=before + 1)
    return sandbox.views[max(sandbox.views)]


# --- the dashboard ----------------------------------------------------------------------------------


async def test_opening_home_publishes_the_last_24_hours_with_grouping_and_acks(pulser, sandbox):
    first = await pulser.pipeline.ingest(alert("db", "Database unreachable"))
    await pulser.pipeline.ingest(alert("db", "Database unreachable"))
    await pulser.pipeline.ingest(alert("disk", "Disk almost full"))
    await pulser.incident_actions.ack(first.incident_id, ADMIN)
    text = view_text(await open_home(sandbox))
    assert "*Alerts received*\\n3" in text
    assert "*Incidents opened*\\n2 · 33% of alerts grouped" in text
    assert "*Acknowledged*\\n50% (1 of 2)" in text
    assert "*Generic webhook* · 3 alerts → 2 incidents (1.5 per incident)" in text
    assert "Disk almost full" in text and "*not acknowledged*" in text


async def test_a_missed_heartbeat_counts_as_an_alert_received_and_an_incident(pulser, sandbox):
    spec = validate_application({"name": "billing-cron", "expected_interval": 60, "grace_period": 0}, default_channel="C0OPS")
    app = await applications.create_application(pulser.pool, spec, created_by=ADMIN)
    ago = datetime.now(timezone.utc) - timedelta(minutes=5)
    await pulser.heartbeat_writer.submit(HeartbeatEvent(uuid=app.uuid, kind="success", exit_code=None, received_at=ago))
    await eventually(lambda: pulser.pool.fetchval("SELECT count(*) FROM incidents WHERE source = 'heartbeat'"), timeout=30)
    text = view_text(await open_home(sandbox))
    assert "*Alerts received*\\n1" in text and "*Incidents opened*\\n1" in text
    assert "*Heartbeats* · 1 alert → 1 incident" in text and "billing-cron missed its heartbeat" in text


async def test_a_fresh_install_shows_empty_figures_rather_than_errors(pulser, sandbox):
    text = view_text(await open_home(sandbox))
    assert "*Alerts received*\\n0" in text and "*Mean time to acknowledge*\\n—" in text
    assert "No open incidents." in text and "no alerts in the last 24 hours" in text
    assert "Sentry never" in text


async def test_the_dashboard_shows_heartbeat_apps_by_status(pulser, sandbox):
    await pulser.pool.execute(
        """
        INSERT INTO applications (uuid, name, expected_interval, channel, state, due_at, down_since)
        VALUES (gen_random_uuid(), 'billing-cron', 300, '#ops', 'down', now() - interval '1 h', now() - interval '5 min'),
               (gen_random_uuid(), 'web-ping', 300, '#ops', 'up', now() + interval '5 min', NULL)
        """
    )
    text = view_text(await open_home(sandbox))
    assert "2 apps: 🔴 1 down · 🟢 1 up" in text and "*billing-cron* (5 min)" in text


async def test_opening_the_messages_tab_publishes_nothing(pulser, sandbox):
    await sandbox.send_app_home_opened(ADMIN, tab="messages")
    await open_home(sandbox, MEMBER)  # a later event is handled, so the first one was too
    assert ADMIN not in sandbox.home_views


# --- the buttons ------------------------------------------------------------------------------------


async def test_home_says_who_is_on_call_until_when_and_who_is_next(pulser, sandbox):
    spec = validate_schedule({"name": "Primary", "time_zone": "UTC", "layers": [
        {"members": [ADMIN, MEMBER], "shift": "1 day", "handoff": "00:00", "start": "2026-01-01"}]})
    await schedules.create_schedule(pulser.pool, name=spec.name, time_zone=spec.time_zone, feed_token="h" * 32,
                                    layers=[layer.as_row() for layer in spec.layers], created_by=ADMIN)
    text = view_text(await open_home(sandbox))
    assert "*On call*" in text and "*Primary* — now <@" in text and ", then <@" in text


async def test_register_an_app_opens_the_registration_form_and_confirms_in_a_dm(pulser, sandbox):
    modal = await click_on_home(sandbox, REGISTER_APP, ADMIN)
    assert modal["callback_id"] == REGISTER_CALLBACK
    values = {
        "name": {"name": {"type": "plain_text_input", "value": "nightly-backup"}},
        "interval": {"interval": {"type": "plain_text_input", "value": "5m"}},
        "grace": {"grace": {"type": "plain_text_input", "value": "1m"}},
        "channel": {"channel": {"type": "conversations_select", "selected_conversation": "C0OPS"}},
        "owner": {"owner": {"type": "users_select", "selected_user": None}},
        "schedule": {"schedule": {"type": "plain_text_input", "value": None}},
        "timezone": {"timezone": {"type": "plain_text_input", "value": None}},
    }
    await sandbox.send_view_submission(REGISTER_CALLBACK, values, user_id=ADMIN, view_id=modal["id"])
    [dm] = await eventually(lambda: sandbox.messages.get(dm_channel_of(ADMIN)), timeout=30)
    assert "nightly-backup" in dm["text"] + json.dumps(dm["blocks"])


async def test_register_an_app_tells_a_member_that_only_admins_can(pulser, sandbox):
    modal = await click_on_home(sandbox, REGISTER_APP, MEMBER)
    assert modal["callback_id"] == NOTICE_CALLBACK
    assert "Only Pulser admins can register apps" in view_text(modal)


async def test_edit_rules_sends_the_rules_list_as_a_dm_whose_buttons_work(pulser, sandbox):
    modal = await click_on_home(sandbox, EDIT_RULES, ADMIN)
    assert modal["callback_id"] == NOTICE_CALLBACK and "Messages" in view_text(modal)
    [dm] = sandbox.messages[dm_channel_of(ADMIN)]
    assert "Routing rules" in json.dumps(dm["blocks"])
    before = len(sandbox.calls_to("views.open"))
    await sandbox.send_block_action(ADD, "add", user_id=ADMIN, channel_id=ADMIN, message_ts=dm["ts"])
    await sandbox.wait_for_call("views.open", count=before + 1)
    assert sandbox.views[max(sandbox.views)]["callback_id"] == ADD_CALLBACK


async def test_heroku_settings_opens_the_heroku_config_form_for_an_admin(pulser, sandbox):
    modal = await click_on_home(sandbox, HEROKU_SETTINGS, ADMIN)
    assert modal["callback_id"] == CONFIG_CALLBACK


async def test_heroku_settings_tells_a_member_that_only_admins_can(pulser, sandbox):
    modal = await click_on_home(sandbox, HEROKU_SETTINGS, MEMBER)
    assert modal["callback_id"] == NOTICE_CALLBACK
    assert "Only Pulser admins can change Heroku monitoring" in view_text(modal)


# --- the refresher ----------------------------------------------------------------------------------


async def test_the_refresher_republishes_for_recent_visitors_once_per_burst_of_changes(pulser, sandbox):
    refresher = HomeRefresher(pulser.pool, pulser.app.client, debounce=0.6)
    pulser.services.home = refresher  # as the runtime hands it to the Home handler
    await open_home(sandbox, ADMIN)
    assert refresher.users == [ADMIN]
    published = len(sandbox.calls_to("views.publish"))
    refresher.start()
    try:
        await pulser.pipeline.ingest(alert("queue", "Queue backing up"))
        for _ in range(5):
            refresher.wake()
        await sandbox.wait_for_call("views.publish", count=published + 1)
        assert "Queue backing up" in view_text(sandbox.home_views[ADMIN])
        refresher.wake()  # within the debounce: folded into one later publish
        refresher.wake()
        calls = await sandbox.wait_for_call("views.publish", count=published + 2, timeout=30)
        first, folded = calls[published], calls[published + 1]
        # The debounce runs from a round's start, before its view is built: allow for that build.
        assert folded.at - first.at >= refresher.debounce / 2, "the wakes waited out the debounce"
        # A later change is the next publish, debounced again: the folded wakes left no round of their own.
        await pulser.pipeline.ingest(alert("disk", "Disk full"))
        refresher.wake()
        calls = await sandbox.wait_for_call("views.publish", count=published + 3, timeout=30)
        assert "Disk full" in str(calls[-1].params) and "Disk full" not in str(folded.params)
        assert calls[-1].at - folded.at >= refresher.debounce / 2
    finally:
        await refresher.stop()


async def test_the_refresher_publishes_nothing_without_visitors(pulser, sandbox):
    refresher = HomeRefresher(pulser.pool, pulser.app.client, debounce=0.1)
    assert await refresher.refresh() == 0
    assert sandbox.calls_to("views.publish") == []


def test_the_refresher_remembers_the_last_fifty_visitors_most_recent_last():
    refresher = HomeRefresher(None, None)
    for i in range(60):
        refresher.opened(f"U{i:03d}")
    assert refresher.users[0] == "U010" and len(refresher.users) == 50
    refresher.opened("U010")  # back again: now the most recent, so the next to go is U011
    refresher.opened("U060")
    assert len(refresher.users) == 50
    assert "U011" not in refresher.users and refresher.users[-2:] == ["U010", "U060"]

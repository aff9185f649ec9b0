"""Buttons on heartbeat alerts: Ack, Snooze, Pause. Each click updates the message in place and is
audited. State lives in the alert's outbox row, so a click on an alert that recovered meanwhile
re-renders it as recovered (with the ack noted), never reopens it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import structlog
from slack_bolt.async_app import AsyncAck, AsyncApp

from blocks.heartbeat_alerts import ACK, PAUSE, SNOOZE
from handlers.slack.admin import is_admin
from handlers.slack.services import SlackServices
from storage import applications, audit, notifications

log = structlog.get_logger(__name__)


def register(app: AsyncApp, services: SlackServices) -> None:
    @app.action(ACK)
    async def ack_alert(ack: AsyncAck, body: dict, client, respond) -> None:
        await ack()
        alert = await _alert_of(services, body)
        if alert is None:
            await respond(text="This alert is no longer known to Pulser.", replace_original=False, response_type="ephemeral")
            return
        user = body["user"]["id"]
        now = datetime.now(timezone.utc)
        if not alert["payload"].get("acked_by"):
            alert = await notifications.merge_alert_state(services.pool, alert["id"], {"acked_by": user, "acked_at": now.isoformat()})
        await audit.record_action(
            services.pool, actor=user, action="heartbeat_alert.ack", target_type="application", target_id=alert["app_id"],
            details={"notification_id": alert["id"]},
        )
        await services.notifier.rerender(alert)

    @app.action(SNOOZE)
    async def snooze_alert(ack: AsyncAck, body: dict, respond) -> None:
        await ack()
        alert = await _alert_of(services, body)
        value = body["actions"][0].get("selected_option", {}).get("value", "")
        try:
            seconds = int(value.split(":")[1])
        except (IndexError, ValueError):
            seconds = 0
        if alert is None or not 0 < seconds <= 7 * 86400:
            await respond(text="That snooze option is not valid.", replace_original=False, response_type="ephemeral")
            return
        user = body["user"]["id"]
        until = datetime.now(timezone.utc) + timedelta(seconds=seconds)
        await applications.snooze(services.pool, alert["app_id"], until)
        alert = await notifications.merge_alert_state(
            services.pool, alert["id"], {"snoozed_by": user, "snoozed_until": until.isoformat()}
        )
        await audit.record_action(
            services.pool, actor=user, action="heartbeat_alert.snooze", target_type="application", target_id=alert["app_id"],
            details={"notification_id": alert["id"], "until": until.isoformat()},
        )
        await services.notifier.rerender(alert)

    @app.action(PAUSE)
    async def pause_monitoring(ack: AsyncAck, body: dict, client, respond) -> None:
        await ack()
        user = body["user"]["id"]
        alert = await _alert_of(services, body)
        if alert is None:
            await respond(text="This alert is no longer known to Pulser.", replace_original=False, response_type="ephemeral")
            return
        if not await is_admin(client, user, services.admins):
            await respond(
                text="Only Pulser admins can pause monitoring: workspace admins/owners or users listed in PULSER_ADMINS.",
                replace_original=False,
                response_type="ephemeral",
            )
            return
        await applications.set_active(services.pool, alert["app_id"], False)
        alert = await notifications.merge_alert_state(services.pool, alert["id"], {"paused_by": user})
        await audit.record_action(
            services.pool, actor=user, action="heartbeat_alert.pause", target_type="application", target_id=alert["app_id"],
            details={"notification_id": alert["id"]},
        )
        await services.notifier.rerender(alert)


async def _alert_of(services: SlackServices, body: dict) -> dict | None:
    """The alert behind the clicked message, found by the message's channel and ts."""
    container = body.get("container") or {}
    channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
    ts = container.get("message_ts") or (body.get("message") or {}).get("ts")
    if not channel or not ts:
        return None
    return await notifications.alert_by_message(services.pool, channel, ts)

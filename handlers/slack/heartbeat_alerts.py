"""Pause monitoring, the one button a heartbeat incident has beyond every incident's own (Ack,
Snooze, Resolve, Investigate: handlers/slack/incidents.py).

Admins only: it stops watching the app and resolves its incident, audited
(`alerts.heartbeat_incidents.HeartbeatIncidents.pause`); the incident notifier then re-renders
the message in place. Messages posted before heartbeat alerts were incidents carry the same
Pause button (same action id, the app's id as its value), so it works on them too; their Ack and
Snooze now answer with where to find those buttons.
"""

from __future__ import annotations

import structlog
from slack_bolt.async_app import AsyncAck, AsyncApp

from blocks.incidents import PAUSE_MONITORING
from handlers.slack.admin import REFUSAL, is_admin
from handlers.slack.services import SlackServices

log = structlog.get_logger(__name__)

# The Ack and Snooze of heartbeat alert messages posted before they became incidents.
OLD_ACK = "heartbeat_alert_ack"
OLD_SNOOZE = "heartbeat_alert_snooze"
OLD_BUTTON = (
    "This alert was posted before heartbeat alerts became incidents, so its buttons no longer act. "
    "The app's next miss opens an incident with Ack, Snooze and Resolve; `/pulser apps` shows how it stands now."
)


def register(app: AsyncApp, services: SlackServices) -> None:
    @app.action(PAUSE_MONITORING)
    async def pause_monitoring(ack: AsyncAck, body: dict, client, respond) -> None:
        await ack()
        user = body["user"]["id"]
        value = (body.get("actions") or [{}])[0].get("value") or ""
        if not value.isdigit():
            await _tell(respond, "This button does not belong to a Pulser heartbeat app.")
            return
        if not await is_admin(client, user, services.admins):
            await _tell(respond, REFUSAL.format(action="pause monitoring"))
            return
        result = await services.heartbeat_incidents.pause(int(value), user)
        if result.note:
            await _tell(respond, result.note)

    async def old_button(ack: AsyncAck, respond) -> None:
        await ack()
        await _tell(respond, OLD_BUTTON)

    app.action(OLD_ACK)(old_button)
    app.action(OLD_SNOOZE)(old_button)


async def _tell(respond, text: str) -> None:
    await respond(text=text, replace_original=False, response_type="ephemeral")

"""Buttons on incident messages: Ack, Snooze, Resolve, Investigate (and the link buttons, which
Slack also reports to the app). Each click is acked at once; `alerts.incident_actions` applies it
in one locked, audited transaction and the incident notifier re-renders every message of the
incident in place. The incident comes from the button's value (or the actions block id for the
Snooze menu), so a click on an escalation post works like one on the original message."""

from __future__ import annotations

import structlog
from slack_bolt.async_app import AsyncAck, AsyncApp

from alerts.incident_actions import ActionResult
from blocks.incidents import ACK, INVESTIGATE, RESOLVE, RUNBOOK, SNOOZE, SOURCE_LINK, incident_id_from_block, snooze_minutes
from handlers.slack.services import SlackServices
from storage import incidents

log = structlog.get_logger(__name__)


def register(app: AsyncApp, services: SlackServices) -> None:
    @app.action(ACK)
    async def ack_incident(ack: AsyncAck, body: dict, respond) -> None:
        await ack()
        incident_id = _incident_id(body)
        if incident_id is None:
            await _tell(respond, "This button does not belong to a Pulser incident.")
            return
        await _answer(respond, await services.incident_actions.ack(incident_id, body["user"]["id"]))

    @app.action(SNOOZE)
    async def snooze_incident(ack: AsyncAck, body: dict, respond) -> None:
        await ack()
        incident_id = _incident_id(body)
        minutes = snooze_minutes((body["actions"][0].get("selected_option") or {}).get("value", ""))
        if incident_id is None or minutes is None:
            await _tell(respond, "That snooze option is not valid; pick 30 min, 1 hour, 4 hours or 24 hours.")
            return
        await _answer(respond, await services.incident_actions.snooze(incident_id, body["user"]["id"], minutes))

    @app.action(RESOLVE)
    async def resolve_incident(ack: AsyncAck, body: dict, respond) -> None:
        await ack()
        incident_id = _incident_id(body)
        if incident_id is None:
            await _tell(respond, "This button does not belong to a Pulser incident.")
            return
        await _answer(respond, await services.incident_actions.resolve(incident_id, body["user"]["id"]))

    @app.action(INVESTIGATE)
    async def investigate_incident(ack: AsyncAck, body: dict, respond) -> None:
        await ack()
        incident_id = _incident_id(body)
        if incident_id is None:
            await _tell(respond, "This button does not belong to a Pulser incident.")
            return
        message = await _clicked_message(services, body)
        result = await services.incident_actions.investigate(
            incident_id, body["user"]["id"], message_id=message["id"] if message else None
        )
        await _answer(respond, result)

    async def link_clicked(ack: AsyncAck) -> None:
        await ack()  # Slack opens the URL; the click is reported to the app and must be acked

    app.action(RUNBOOK)(link_clicked)
    app.action(SOURCE_LINK)(link_clicked)


def _incident_id(body: dict) -> int | None:
    action = (body.get("actions") or [{}])[0]
    value = action.get("value")
    if value and value.isdigit():
        return int(value)
    return incident_id_from_block(action.get("block_id", ""))


async def _clicked_message(services: SlackServices, body: dict) -> dict | None:
    container = body.get("container") or {}
    channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
    ts = container.get("message_ts") or (body.get("message") or {}).get("ts")
    if not channel or not ts:
        return None
    return await incidents.message_by_slack(services.pool, channel, ts)


async def _answer(respond, result: ActionResult) -> None:
    if result.note:
        await _tell(respond, result.note)


async def _tell(respond, text: str) -> None:
    await respond(text=text, replace_original=False, response_type="ephemeral")

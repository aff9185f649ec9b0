"""`/pulser events` (where each event type is posted; admins change it) and the Ack / Investigate
buttons on failed events (ci failed, deploy failed, error rate exceeded, scheduled task failed).

Thin on purpose: parse, check admin rights, call `alerts.platform_events` (which validates, stores
and audits), answer with `blocks.events`. Command answers ride on the ack; clicks are acked at once
and the event notifier re-renders the message in place.
"""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from alerts.applications import ValidationError
from alerts.platform_events import EVENT_TYPES, EventActionResult
from blocks.events import ACK, INVESTIGATE, LINK, events_refused, events_usage, route_notice, routes_message
from alerts.managed import managed_notice
from handlers.slack.admin import is_admin, refusal
from storage import platform_events as event_store
from handlers.slack.services import SlackServices

# Slack sends a picked channel as <#C0123|name> (or <#C0123>); people also type #name.
_CHANNEL_MENTION = re.compile(r"^<#([CG][A-Z0-9]+)(?:\|[^>]*)?>$")
RESET_WORDS = ("default", "reset")


async def events_command(
    *, ack: AsyncAck, command: dict, args: str = "", client, services: SlackServices, **_: Any
) -> None:
    word, _, rest = args.strip().partition(" ")
    sub = word.lower()
    if sub in ("", "list", "routes"):
        await ack(**await _routes(services))
    elif sub == "route":
        await _route_command(ack, command, rest.strip(), client, services)
    elif sub == "help":
        await ack(**events_usage())
    else:
        await ack(**events_usage(f"I don't know `{word}` here."))


async def _route_command(ack: AsyncAck, command: dict, args: str, client, services: SlackServices) -> None:
    parts = args.split()
    if len(parts) != 2:
        await ack(**events_usage("Say which type and which channel, e.g. `/pulser events route deploy #ops-deploy`."))
        return
    event_type, target = parts[0].lower(), channel_argument(parts[1])
    if event_type not in EVENT_TYPES:
        await ack(**events_usage(f"Unknown event type `{parts[0]}`: use one of {', '.join(EVENT_TYPES)}."))
        return
    user = command["user_id"]
    if not await is_admin(client, user, services.admins):
        await ack(**events_refused(refusal("change event routes")))
        return
    if event_type in await event_store.managed_routes(services.pool):
        await ack(**events_refused(managed_notice("The route of event type", event_type).removeprefix(":lock: ")))
        return
    try:
        if target.lower() in RESET_WORDS:
            await services.events.reset_route(event_type, user)
            channel = None
        else:
            channel = await services.channels.resolve(target)
            await services.events.set_route(event_type, channel, user)
    except ValidationError as exc:
        await ack(**events_usage(" ".join(exc.errors.values())))
        return
    await ack(**await _routes(services, route_notice(event_type, channel, services.default_channel)))


def channel_argument(text: str) -> str:
    """`<#C0123|ops-deploy>` → `C0123`; anything else as typed."""
    match = _CHANNEL_MENTION.match(text.strip())
    return match.group(1) if match else text.strip()


async def _routes(services: SlackServices, notice: str | None = None) -> dict:
    return routes_message(await services.events.list_routes(), services.default_channel, notice=notice)


def register(app: AsyncApp, services: SlackServices) -> None:
    @app.action(ACK)
    async def ack_event(ack: AsyncAck, body: dict, respond) -> None:
        await ack()
        event_id = _event_id(body)
        if event_id is None:
            await _tell(respond, "This button does not belong to a Pulser event.")
            return
        await _answer(respond, await services.events.ack(event_id, body["user"]["id"]))

    @app.action(INVESTIGATE)
    async def investigate_event(ack: AsyncAck, body: dict, respond) -> None:
        await ack()
        event_id = _event_id(body)
        if event_id is None:
            await _tell(respond, "This button does not belong to a Pulser event.")
            return
        await _answer(respond, await services.events.investigate(event_id, body["user"]["id"]))

    @app.action(LINK)
    async def link_clicked(ack: AsyncAck) -> None:
        await ack()  # Slack opens the URL; the click is reported to the app and must be acked


def _event_id(body: dict) -> int | None:
    value = ((body.get("actions") or [{}])[0].get("value") or "").strip()
    return int(value) if re.fullmatch(r"[0-9]{1,18}", value) else None


async def _answer(respond, result: EventActionResult) -> None:
    if result.note:
        await _tell(respond, result.note)


async def _tell(respond, text: str) -> None:
    await respond(text=text, replace_original=False, response_type="ephemeral")

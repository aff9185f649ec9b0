"""`/pulser <subcommand>`: parse the first word and dispatch; unknown words get help."""

from __future__ import annotations

from typing import Awaitable, Callable

import structlog
from slack_bolt.async_app import AsyncAck, AsyncApp

from blocks.help import help_message
from handlers.slack import applications, deploy, escalation, events, incident_inbox, oncall, people, rules, silences, status
from handlers.slack.services import SlackServices

log = structlog.get_logger(__name__)

Subcommand = Callable[..., Awaitable[None]]


async def _help(ack: AsyncAck, **_: object) -> None:
    await ack(**help_message())


SUBCOMMANDS: dict[str, Subcommand] = {
    "help": _help,
    "register": applications.register_command,
    "apps": applications.apps_command,
    "rules": rules.rules_command,
    "silence": silences.silence_command,
    "status": status.status_command,
    "health": status.health_command,
    "deploy": deploy.deploy_command,
    "events": events.events_command,
    "incidents": incident_inbox.incidents_command,
    "oncall": oncall.oncall_command,
    "me": people.me_command,
    "escalation": escalation.escalation_command,
    "policies": escalation.escalation_command,
    "channels": escalation.channels_command,
}


def register(app: AsyncApp, services: SlackServices | None = None) -> None:
    @app.command("/pulser")
    async def pulser_command(ack: AsyncAck, command: dict, context: dict, client, respond) -> None:
        text = (command.get("text") or "").strip()
        word, _, rest = text.partition(" ")
        word = word.lower()
        log.info("slack.command", command="/pulser", subcommand=word or "help", user=command.get("user_id"))
        if not word:
            await _help(ack)
            return
        handler = SUBCOMMANDS.get(word)
        if handler is None:
            await ack(**help_message(unknown=word))
            return
        await handler(
            ack=ack, command=command, args=rest.strip(), context=context, client=client, respond=respond, services=services
        )

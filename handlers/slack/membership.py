"""`member_joined_channel`: when Pulser itself is let into a channel, the incident messages (heartbeat
incidents' included) held because Slack refused that channel (`not_in_channel`,
`channel_not_found`) go out at once instead of at their next retry."""

from __future__ import annotations

from datetime import datetime, timezone

import structlog
from slack_bolt.async_app import AsyncApp

from alerts.outbound.slack import CHANNEL_ERRORS
from alerts.outbound.incidents import LEASE
from handlers.slack.services import SlackServices
from storage import incidents, notifications

log = structlog.get_logger(__name__)


def register(app: AsyncApp, services: SlackServices) -> None:
    @app.event("member_joined_channel")
    async def on_member_joined(event: dict, context: dict) -> None:
        channel = event.get("channel")
        if event.get("user") != context.get("bot_user_id") or not isinstance(channel, str) or not channel:
            return  # someone else joined: nothing waits on them
        async with services.pool.acquire() as conn, conn.transaction():
            released = await incidents.release_held_messages(
                conn, channel, sorted(CHANNEL_ERRORS), now=datetime.now(timezone.utc), lease=LEASE
            )
            if released:
                await notifications.announce(conn)
        log.info("slack.joined_channel", channel=channel, released=released)

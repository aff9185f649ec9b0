"""Placeholder — being written (issue 6)."""

from __future__ import annotations

from slack_bolt.async_app import AsyncAck, AsyncApp

from handlers.slack.services import SlackServices


async def deploy_command(ack: AsyncAck, **_: object) -> None:
    await ack(text="not yet available")


def register(app: AsyncApp, services: SlackServices) -> None:
    pass

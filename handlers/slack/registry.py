"""Registers every Slack listener on the Bolt app; new capabilities add one line here."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from handlers.slack import commands


def register_all(app: AsyncApp) -> None:
    commands.register(app)

"""Placeholder — being written (issue 6)."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from handlers.slack.services import SlackServices


def register(app: AsyncApp, services: SlackServices) -> None:
    pass

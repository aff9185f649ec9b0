"""Registers every Slack listener on the Bolt app; new capabilities add one line here."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from handlers.slack import (
    applications, commands, deploy, escalation, events, heartbeat_alerts, heroku, home, incident_inbox, incidents,
    integrations, membership, oncall, people, rules, silences, status, storms,
)
from handlers.slack.services import SlackServices


def register_all(app: AsyncApp, services: SlackServices) -> None:
    commands.register(app, services)
    applications.register(app, services)
    heartbeat_alerts.register(app, services)
    incidents.register(app, services)
    incident_inbox.register(app, services)
    integrations.register(app, services)
    rules.register(app, services)
    silences.register(app, services)
    heroku.register(app, services)
    status.register(app, services)
    home.register(app, services)
    events.register(app, services)
    deploy.register(app, services)
    membership.register(app, services)
    storms.register(app, services)
    oncall.register(app, services)
    escalation.register(app, services)
    people.register(app, services)

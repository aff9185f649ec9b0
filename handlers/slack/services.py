"""What Slack listeners need from the process, handed to them at registration time.

Listeners live below `bot/` and must not import it; the runtime builds one SlackServices and
passes it to `register_all`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg

from alerts.channels import ChannelResolver


@dataclass
class SlackServices:
    pool: asyncpg.Pool
    admins: tuple[str, ...]  # PULSER_ADMINS; workspace admins and owners are admins too
    default_channel: str  # SLACK_CHANNEL
    public_base_url: str  # where heartbeat senders reach the sidecar, for the curl lines we hand out
    heartbeat_history: int = 100
    heartbeat_incidents: Any = None  # alerts.heartbeat_incidents.HeartbeatIncidents: Pause monitoring on an incident
    incident_actions: Any = None  # alerts.incident_actions.IncidentActions: Ack, Snooze, Resolve, Investigate
    heroku: Any = None  # alerts.heroku_monitor.HerokuMonitor: /heroku-status, its settings, Rollback
    health_report: Any = None  # async () -> dict: the runtime's /health report, for /pulser health and App Home
    events: Any = None  # alerts.platform_events.PlatformEvents: record events, audit actions, event routes
    deploys: Any = None  # alerts.deploys.Deploys: services, deploy requests, approval, triggers
    home: Any = None  # alerts.home.HomeRefresher: who opened App Home, to refresh their dashboard
    integrations: Any = None  # alerts.integrations.Integrations: App Home's section and its Send test buttons
    escalation: Any = None  # alerts.escalation.engine.EscalationEngine: test pages take the path real pages take
    # Channel names typed into forms and commands become IDs before they are saved.
    channels: ChannelResolver = field(default_factory=ChannelResolver)

"""From database rows to `blocks.incidents.IncidentView`: what one Slack message of an incident shows."""

from __future__ import annotations

from datetime import datetime

from alerts.normalized import severity_at_least
from blocks.incidents import IncidentView, PauseOffer, RollbackOffer, format_mention


def incident_view(incident: dict, message: dict | None = None, *, now: datetime | None = None) -> IncidentView:
    """The incident as seen in one channel: the route adds its mention (for severe enough
    incidents), its runbook and how far escalation went."""
    mention = None
    runbook = None
    escalation_level = 0
    if message is not None:
        runbook = message["runbook_url"]
        escalation_level = message["escalation_level"]
        if message["mention"] and severity_at_least(incident["severity"], message["mention_min_severity"]):
            mention = format_mention(message["mention"])
    return IncidentView(
        incident_id=incident["id"],
        title=incident["title"],
        description=incident["description"],
        source=incident["source"],
        service=incident["service"],
        env=incident["env"],
        severity=incident["severity"],
        status=incident["status"],
        count=incident["count"],
        first_seen=incident["first_seen"],
        last_seen=incident["last_seen"],
        link=incident["link"],
        runbook_url=runbook,
        mention=mention,
        acked_by=incident["acked_by"],
        acked_at=incident["acked_at"],
        snoozed_by=incident["snoozed_by"],
        snoozed_until=incident["snoozed_until"],
        investigator=incident["investigator"],
        resolved_by=incident["resolved_by"],
        resolved_at=incident["resolved_at"],
        resolve_reason=incident["resolve_reason"],
        spiked=incident["spiked_at"] is not None,
        reopened_count=incident["reopened_count"],
        escalation_level=escalation_level,
        suppressed_by=incident["suppressed_by"],
        now=now,
        rollback=rollback_offer(incident),
        pause=pause_offer(incident),
        action_note=incident.get("action_note"),
        members=tuple(incident.get("members") or ()),
        members_total=incident.get("members_total", 0),
        members_firing=incident.get("members_firing", 0),
    )


def rollback_offer(incident: dict) -> RollbackOffer | None:
    """Heroku deploy incidents carry the release to roll back to in their labels (set by detection)."""
    labels = incident.get("labels") or {}
    if incident["source"] != "heroku" or labels.get("kind") != "deploy" or not labels.get("rollback_target_id"):
        return None
    try:
        version = int(labels.get("rollback_target_version", ""))
    except ValueError:
        return None
    return RollbackOffer(app=labels.get("app", incident["service"]), release_id=labels["rollback_target_id"], version=version)


def pause_offer(incident: dict) -> PauseOffer | None:
    """Heartbeat incidents name their app in their labels (set by alerts.heartbeat_incidents)."""
    labels = incident.get("labels") or {}
    app_id = labels.get("heartbeat.app_id", "")
    if incident["source"] != "heartbeat" or not app_id.isdigit():
        return None
    return PauseOffer(app_id=int(app_id), app_name=labels.get("heartbeat.app") or incident["service"])

"""Missed and failed heartbeats as incidents: the alert each outage becomes, its recovery, and Pause.

A heartbeat alert is a `NormalizedAlert` of source `heartbeat` that goes through the one alert
pipeline, so routing rules, silences, inhibition rules, storm digests, escalation and the App Home
figures treat it like any other alert. It is ingested in the transaction that changes the app's
state — the watcher's `up → down` claim, the heartbeat writer's `/fail` or recovery — so an app
is never down without its incident, nor up again with its incident still firing.

- fingerprint `app:<uuid>` (stable across renames), service = the app's name, env "" (apps have
  none), severity "high" (apps have none either);
- tags `heartbeat.app_id` and `heartbeat.app`, plus `app` (the label the Heroku monitor uses, so
  one inhibition rule "a crashed dyno hides that app's missed heartbeat" covers both) and
  `alertname` (HeartbeatMissed / HeartbeatFailed), which silences made before heartbeat alerts
  were incidents match on;
- routed by the routing rules; when none matches, to the app's own channel (set at registration),
  not SLACK_CHANNEL;
- a recovery resolves the incident (its message turns green in place, with how long it was down,
  and a reply in its thread); **Pause monitoring** on the message resolves it too, as done by the
  admin who paused, because a paused app is not watched and nothing else would ever resolve it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Protocol
from uuid import UUID

import asyncpg
import structlog

from alerts.applications import expected_text, format_duration
from alerts.normalized import NormalizedAlert
from alerts.pipeline import AlertPipeline, IngestResult
from blocks.incidents import status_reply, user as actor
from blocks.kit import escape
from storage import applications, audit, heartbeat_incidents, incidents, notifications
from storage.heartbeat_incidents import APP_ID_LABEL
from storage.notifications import NewNotification

log = structlog.get_logger(__name__)

SOURCE = "heartbeat"
SEVERITY = "high"
MISSED = "HeartbeatMissed"
FAILED = "HeartbeatFailed"


class WatchedApp(Protocol):
    """What an alert says about an app: an `Application`, or a row of the watcher's claim."""

    id: int
    uuid: UUID
    name: str
    channel: str
    expected_interval: int | None
    grace_period: int
    schedule: str | None
    timezone: str


@dataclass(frozen=True)
class ClaimedApp:
    """An app the watcher has just marked down (a row of `applications.claim_overdue`)."""

    id: int
    uuid: UUID
    name: str
    channel: str
    expected_interval: int | None
    grace_period: int
    schedule: str | None
    timezone: str
    next_deadline: datetime
    last_heartbeat: datetime | None
    claimed_at: datetime

    @classmethod
    def from_row(cls, row: dict) -> "ClaimedApp":
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


def fingerprint(app: WatchedApp) -> str:
    return f"app:{app.uuid}"


def alert_tags(app: WatchedApp, alertname: str) -> dict[str, str]:
    return {"heartbeat.app_id": str(app.id), "heartbeat.app": app.name, "app": app.name, "alertname": alertname}


def _when(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _expected(app: WatchedApp) -> str:
    return f"expected {expected_text(app.expected_interval, app.schedule, app.timezone)}, grace {format_duration(app.grace_period)}"


def _sentence(text: str) -> str:
    """The first letter up, the rest as written (str.capitalize would lower "UTC")."""
    return text[:1].upper() + text[1:]


def _last_seen(last: datetime | None, now: datetime) -> str:
    if last is None:
        return "never seen"
    return f"last seen {format_duration(max(0.0, (now - last).total_seconds()))} ago ({_when(last)})"


def _alert(app: WatchedApp, *, title: str, description: str, alertname: str, now: datetime, status: str = "firing",
           service: str | None = None) -> NormalizedAlert:
    return NormalizedAlert(
        source=SOURCE, source_event_id=f"{app.uuid}:{now.isoformat()}", service=service or app.name, env="",
        severity=SEVERITY, fingerprint=fingerprint(app), title=title, description=description, occurred_at=now,
        status=status, tags=alert_tags(app, alertname),
    )


def missed_alert(app: WatchedApp, *, deadline: datetime, last_heartbeat: datetime | None, now: datetime) -> NormalizedAlert:
    """The alert of an app whose deadline (due + grace) passed without a heartbeat."""
    description = (
        f"{_sentence(_last_seen(last_heartbeat, now))}; {_expected(app)}.\n"
        f"Deadline passed at {_when(deadline)}."
    )
    return _alert(app, title=f"{app.name} missed its heartbeat", description=description, alertname=MISSED, now=now)


def failed_alert(app: WatchedApp, *, exit_code: int | None, previous_heartbeat: datetime | None, now: datetime) -> NormalizedAlert:
    """The alert of an app that reported a failure (`/fail`, or a non-zero exit code)."""
    code = f" (exit code {exit_code})" if exit_code is not None else ""
    previous = (
        f"previous heartbeat {format_duration(max(0.0, (now - previous_heartbeat).total_seconds()))} before it "
        f"({_when(previous_heartbeat)})" if previous_heartbeat else "no heartbeat before it"
    )
    description = f"Failure reported at {_when(now)}; {previous}; {_expected(app)}."
    return _alert(app, title=f"{app.name} reported failure{code}", description=description, alertname=FAILED, now=now)


def resolved_alert(app: WatchedApp, *, now: datetime, service: str | None = None, why: str) -> NormalizedAlert:
    """The alert that resolves the app's incident; `service` is the one the incident was opened
    with (the app may have been renamed since: the group key must be the incident's)."""
    return _alert(app, title=f"{app.name}: {why}", description="", alertname=MISSED, now=now, status="resolved",
                  service=service)


async def after_firing(conn: asyncpg.Connection, result: IngestResult, *, now: datetime) -> None:
    """A reopened incident is down again: the note of its last recovery no longer holds."""
    if result.outcome == "reopened" and result.incident_id is not None:
        await heartbeat_incidents.set_note(conn, result.incident_id, None, now=now)


async def resolve_in(
    pipeline: AlertPipeline, conn: asyncpg.Connection, app: WatchedApp, *, now: datetime, why: str
) -> IngestResult:
    """Ingest the resolved alert of the app's incident in the caller's transaction."""
    current = await heartbeat_incidents.firing_for_app(conn, app.id)
    service = current["service"] if current is not None and not current["group_key"].startswith("group:") else None
    return await pipeline.ingest_in(
        conn, resolved_alert(app, now=now, service=service, why=why), now=now, default_channel=app.channel
    )


async def recover_in(
    pipeline: AlertPipeline, conn: asyncpg.Connection, app: WatchedApp, *, down_since: datetime | None, now: datetime
) -> IngestResult:
    """The app sent a heartbeat while down: its incident resolves, its message says after how
    long (in place) and a reply in its thread says so to whoever follows it."""
    result = await resolve_in(pipeline, conn, app, now=now, why="sending heartbeats again")
    if result.outcome != "resolved" or result.incident_id is None:
        return result
    after = f": recovered after {format_duration(max(0.0, (now - down_since).total_seconds()))}" if down_since else ""
    note = f":white_check_mark: {escape(app.name)} is sending heartbeats again{after}."
    await heartbeat_incidents.set_note(conn, result.incident_id, note, now=now)
    await _reply_in_threads(conn, result.incident_id, note)
    return result


async def _reply_in_threads(conn: asyncpg.Connection, incident_id: int, text: str) -> None:
    rows = [
        NewNotification("incident_reply", None, {"message_id": m["id"], "message": status_reply(text)}, incident_id)
        for m in await incidents.messages_for(conn, incident_id, escalation_posts=False)
        if m["slack_ts"]
    ]
    await notifications.enqueue_notifications(conn, rows)


async def resolve_unwatched(pipeline: AlertPipeline, *, now: datetime | None = None) -> int:
    """Resolve the incidents of apps paused or deleted elsewhere than from the incident's own button
    (`/pulser apps`, the API): nothing else would ever resolve them. The incident sweep calls this.
    Returns how many were resolved."""
    now = now or datetime.now(timezone.utc)
    resolved = 0
    for row in await heartbeat_incidents.firing_for_unwatched_apps(pipeline.pool):
        last = NormalizedAlert.from_json_dict(row["last_alert"])
        why = "app deleted" if row["deleted"] else "monitoring paused"
        alert = dataclasses.replace(
            last, status="resolved", title=f"{last.service}: {why}", description="", occurred_at=now,
            source_event_id=f"{last.fingerprint}:{why}:{now.isoformat()}",
        )
        result = await pipeline.ingest(alert, now=now)
        if result.outcome != "resolved" or result.incident_id is None:
            continue
        note = (f":wastebasket: {escape(last.service)} was deleted from Pulser." if row["deleted"] else
                f":double_vertical_bar: Monitoring of {escape(last.service)} is paused: no alerts until someone resumes it.")
        async with pipeline.pool.acquire() as conn, conn.transaction():
            await heartbeat_incidents.set_note(conn, result.incident_id, note, now=now)
            await incidents.render_now(conn, result.incident_id, now=now)
        resolved += 1
        log.info("heartbeat.incident_resolved_unwatched", incident_id=result.incident_id, why=why)
    if resolved:
        pipeline.notify_change()
    return resolved


@dataclass(frozen=True)
class PauseResult:
    changed: bool
    incident_id: int | None = None
    note: str | None = None  # what to tell the clicker when nothing changed


class HeartbeatIncidents:
    """What a click on a heartbeat incident's own button does."""

    def __init__(self, pool: asyncpg.Pool, pipeline: AlertPipeline):
        self.pool = pool
        self.pipeline = pipeline

    async def pause(self, app_id: int, user: str, *, now: datetime | None = None) -> PauseResult:
        """Stop watching the app and resolve its incident, as done by `user`, in one audited
        transaction. Resuming (from `/pulser apps` or the API) works as ever: the app is `new`
        again and is watched from its next heartbeat."""
        now = now or datetime.now(timezone.utc)
        async with self.pool.acquire() as conn, conn.transaction():
            app = await applications.get_application(conn, app_id)
            if app is None:
                return PauseResult(False, note="This app is no longer registered with Pulser.")
            if not app.is_active:
                return PauseResult(False, note=f"Monitoring of {escape(app.name)} is already paused.")
            app = await applications.set_active(conn, app_id, False)
            result = await resolve_in(self.pipeline, conn, app, now=now, why="monitoring paused")
            if result.outcome == "resolved" and result.incident_id is not None:
                await incidents.update_incident(
                    conn, result.incident_id, {"resolved_by": user, "resolve_reason": "user"}, now=now
                )
                await heartbeat_incidents.set_note(
                    conn, result.incident_id,
                    f":double_vertical_bar: Monitoring paused by {actor(user)}: no alerts for {escape(app.name)} "
                    "until someone resumes it.",
                    now=now,
                )
                await incidents.render_now(conn, result.incident_id, now=now)
            await audit.record_action(
                conn, actor=user, action="heartbeat_alert.pause", target_type="application", target_id=app_id,
                details={"incident_id": result.incident_id, "outcome": result.outcome},
            )
        self.pipeline.after_commit([result])
        log.info("heartbeat.paused_from_incident", app_id=app_id, user=user, incident_id=result.incident_id)
        return PauseResult(True, result.incident_id)


__all__ = [
    "APP_ID_LABEL", "ClaimedApp", "HeartbeatIncidents", "PauseResult", "after_firing", "failed_alert", "missed_alert",
    "recover_in", "resolve_in", "resolve_unwatched", "resolved_alert",
]

"""What people and time do to incidents: Ack, Snooze, Resolve, Investigate, escalation, auto-close,
snooze expiry. Each change is one transaction that locks the incident row, writes the audit log and
schedules the messages to re-render, so a click racing an auto-resolve sees the resolved state and
never reopens it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

import asyncpg
import structlog

from alerts.escalation import lifecycle
from alerts.incident_view import incident_view
from blocks.incidents import (
    SNOOZE_CHOICES,
    escalation_reply,
    format_mention,
    investigation_thread,
    note_reply,
    status_reply,
    user as actor,
)
from storage import audit, incident_queries, incidents, notifications
from storage.notifications import NewNotification

log = structlog.get_logger(__name__)

SNOOZE_MINUTES = frozenset(minutes for minutes, _ in SNOOZE_CHOICES)


@dataclass(frozen=True)
class ActionResult:
    incident: dict | None
    changed: bool
    note: str | None = None  # what to tell the clicker when nothing changed


class IncidentActions:
    def __init__(self, pool: asyncpg.Pool, *, on_change: Callable[[], None] | None = None):
        self.pool = pool
        self._on_change = on_change or (lambda: None)

    # --- buttons -----------------------------------------------------------------------------------

    async def ack(self, incident_id: int, user: str, *, now: datetime | None = None) -> ActionResult:
        now = now or datetime.now(timezone.utc)

        async def apply(conn: asyncpg.Connection, incident: dict) -> ActionResult:
            if incident["status"] != "firing":
                return ActionResult(incident, False, "This incident is already resolved; nothing to acknowledge.")
            if incident["acked_by"]:
                return ActionResult(incident, False, f"Already acknowledged by {actor(incident['acked_by'])}.")
            incident = await incidents.update_incident(conn, incident["id"], {"acked_by": user, "acked_at": now}, now=now)
            await incidents.stop_escalation(conn, incident["id"])
            await lifecycle.incident_acknowledged(conn, incident, by=user, now=now)
            return ActionResult(incident, True)

        return await self._act(incident_id, user, "incident.ack", apply, now=now)

    async def snooze(self, incident_id: int, user: str, minutes: int, *, now: datetime | None = None) -> ActionResult:
        now = now or datetime.now(timezone.utc)
        if minutes not in SNOOZE_MINUTES:
            return ActionResult(None, False, "That snooze duration is not offered; pick one from the menu.")
        until = now + timedelta(minutes=minutes)

        async def apply(conn: asyncpg.Connection, incident: dict) -> ActionResult:
            if incident["status"] != "firing":
                return ActionResult(incident, False, "This incident is already resolved; there is nothing to snooze.")
            incident = await incidents.update_incident(
                conn, incident["id"], {"snoozed_by": user, "snoozed_until": until}, now=now
            )
            return ActionResult(incident, True)

        return await self._act(incident_id, user, "incident.snooze", apply, now=now, details={"until": until.isoformat()})

    async def resolve(self, incident_id: int, user: str, *, now: datetime | None = None) -> ActionResult:
        now = now or datetime.now(timezone.utc)

        async def apply(conn: asyncpg.Connection, incident: dict) -> ActionResult:
            if incident["status"] != "firing":
                return ActionResult(incident, False, "This incident is already resolved.")
            incident = await incidents.update_incident(
                conn,
                incident["id"],
                {"status": "resolved", "resolved_by": user, "resolved_at": now, "resolve_reason": "user"},
                now=now,
            )
            await incidents.stop_escalation(conn, incident["id"])
            await lifecycle.incident_resolved(conn, incident, by=user, now=now)
            return ActionResult(incident, True)

        return await self._act(incident_id, user, "incident.resolve", apply, now=now)

    async def investigate(
        self, incident_id: int, user: str, *, message_id: int | None = None, now: datetime | None = None
    ) -> ActionResult:
        """Assign the clicker and open a thread (under the clicked message) with the details and
        the last occurrences."""
        now = now or datetime.now(timezone.utc)

        async def apply(conn: asyncpg.Connection, incident: dict) -> ActionResult:
            messages = await incidents.messages_for(conn, incident["id"])
            parent = next((m for m in messages if m["id"] == message_id), None) or next(
                (m for m in messages if m["slack_ts"]), None
            )
            if incident["investigator"] != user:
                incident = await incidents.update_incident(
                    conn, incident["id"], {"investigator": user, "investigating_at": now}, now=now
                )
            if parent is not None:
                occurrences, total = await incidents.recent_occurrences(conn, incident["id"], limit=10)
                shown = [
                    {
                        "received_at": o["received_at"],
                        "status": o["status"],
                        "title": o["alert"].get("title", ""),
                        "description": o["alert"].get("description", ""),
                    }
                    for o in occurrences
                ]
                thread = investigation_thread(
                    incident_view(incident, parent, now=now), shown, user, labels=incident["labels"], total=total
                )
                await notifications.enqueue_notifications(
                    conn, [NewNotification("incident_reply", None, {"message_id": parent["id"], "message": thread}, incident["id"])]
                )
            return ActionResult(incident, True)

        return await self._act(incident_id, user, "incident.investigate", apply, now=now)

    async def assign(self, incident_id: int, user: str, assignee: str, *, now: datetime | None = None) -> ActionResult:
        """Make `assignee` the incident's investigator (what Investigate does for the clicker),
        and say so in the incident's thread."""
        now = now or datetime.now(timezone.utc)

        async def apply(conn: asyncpg.Connection, incident: dict) -> ActionResult:
            if incident["status"] != "firing":
                return ActionResult(incident, False, "This incident is already resolved; there is no one to assign.")
            if incident["investigator"] == assignee:
                return ActionResult(incident, False, f"Already assigned to {actor(assignee)}.")
            incident = await incidents.update_incident(
                conn, incident["id"], {"investigator": assignee, "investigating_at": now}, now=now
            )
            text = f":bust_in_silhouette: Assigned to {format_mention(assignee)} by {actor(user)}"
            await _thread_notice(conn, incident["id"], status_reply(text))
            return ActionResult(incident, True)

        return await self._act(incident_id, user, "incident.assign", apply, now=now, details={"assignee": assignee})

    async def add_note(self, incident_id: int, user: str, text: str, *, now: datetime | None = None) -> tuple[ActionResult, dict | None]:
        """A note on the incident: kept for its timeline, and posted as a reply in its thread (the
        same outbox every thread notice goes through). Notes are welcome on resolved incidents too."""
        now = now or datetime.now(timezone.utc)
        added: dict = {}
        details: dict = {"chars": len(text)}  # the audit entry is written after `apply`, with the note's id

        async def apply(conn: asyncpg.Connection, incident: dict) -> ActionResult:
            note = await incident_queries.add_note(conn, incident["id"], author=user, text=text, now=now)
            added.update(note)
            details["note_id"] = note["id"]
            await _thread_notice(conn, incident["id"], note_reply(user, text))
            return ActionResult(incident, True)

        result = await self._act(incident_id, user, "incident.note", apply, now=now, details=details, render=False)
        return result, (added or None)

    async def _act(
        self,
        incident_id: int,
        user: str,
        action: str,
        apply: Callable,
        *,
        now: datetime,
        details: dict | None = None,
        render: bool = True,
    ) -> ActionResult:
        async with self.pool.acquire() as conn, conn.transaction():
            incident = await incidents.get_incident(conn, incident_id, for_update=True)
            if incident is None:
                return ActionResult(None, False, "This incident is no longer known to Pulser.")
            result = await apply(conn, incident)
            await audit.record_action(
                conn,
                actor=user,
                action=action,
                target_type="incident",
                target_id=incident_id,
                details={**(details or {}), "outcome": "changed" if result.changed else "unchanged", **({"note": result.note} if result.note else {})},
            )
            # Re-render even when nothing changed: the clicker's view may be stale. A note changes
            # nothing the message shows; its thread reply still needs the outbox woken.
            if render:
                await incidents.render_now(conn, incident_id, now=now)
            await notifications.announce(conn)
        log.info(action.replace("incident.", "incident.clicked_"), incident_id=incident_id, user=user, changed=result.changed)
        self._on_change()
        return result

    # --- time ----------------------------------------------------------------------------------------

    async def sweep(self, *, now: datetime | None = None) -> dict[str, int]:
        """Escalate what nobody acked, close what went quiet, wake what was snoozed."""
        now = now or datetime.now(timezone.utc)
        # Snoozes first: an ended snooze restarts the escalation countdown rather than escalating at once.
        done = {"snooze_ended": await self._end_snoozes(now)}
        done["escalated"] = await self._escalate(now)
        done["auto_closed"] = await self._auto_close(now)
        if any(done.values()):
            self._on_change()
        return done

    async def _escalate(self, now: datetime) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            due = await incidents.claim_due_escalations(conn, now=now)
            if not due:
                return 0
            by_id = await incidents.get_incidents(conn, [m["incident_id"] for m in due])
            rows: list[NewNotification] = []
            for message in due:
                incident = by_id[message["incident_id"]]
                target = format_mention(message["escalate_to"]) or message["escalate_to"]
                view = incident_view(incident, message, now=now)
                level, levels = message["escalation_level"], message["escalation_levels"]
                rows.append(NewNotification(
                    "incident_reply", None,
                    {"message_id": message["id"], "message": escalation_reply(view, target, level, levels, message["escalate_after_minutes"])},
                    incident["id"],
                ))
                await incidents.render_now(conn, incident["id"], now=now)
                await incidents.add_escalation_post(conn, message, target=message["escalate_to"], level=level, due_at=now)
                await audit.record_action(
                    conn, actor="system", action="incident.escalate", target_type="incident", target_id=incident["id"],
                    details={"level": level, "to": message["escalate_to"], "channel": message["channel"]},
                )
                log.warning("incident.escalated", incident_id=incident["id"], level=level, to=message["escalate_to"])
            await notifications.enqueue_notifications(conn, rows)
            return len(due)

    async def _auto_close(self, now: datetime) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            closed = await incidents.claim_auto_close(conn, now=now)
            for incident in closed:
                await incidents.stop_escalation(conn, incident["id"])
                await lifecycle.incident_resolved(conn, incident, by="auto-close", now=now)
                await incidents.render_now(conn, incident["id"], now=now)
                await notifications.announce(conn)
                await audit.record_action(
                    conn, actor="system", action="incident.auto_close", target_type="incident", target_id=incident["id"],
                    details={"quiet_minutes": incident["auto_close_minutes"]},
                )
            return len(closed)

    async def _end_snoozes(self, now: datetime) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            ended = await incidents.claim_snooze_ended(conn, now=now)
            rows: list[NewNotification] = []
            for incident in ended:
                await incidents.render_now(conn, incident["id"], now=now)
                await notifications.announce(conn)
                if incident["status"] != "firing":
                    continue
                await incidents.rearm_escalation(conn, incident["id"], now=now)
                text = f":alarm_clock: Snooze ended and this is still firing ({incident['count']} occurrences so far)."
                for message in await incidents.messages_for(conn, incident["id"], escalation_posts=False):
                    if message["slack_ts"]:
                        rows.append(NewNotification("incident_reply", None, {"message_id": message["id"], "message": status_reply(text)}, incident["id"]))
            await notifications.enqueue_notifications(conn, rows)
            return len(ended)


async def _thread_notice(conn: asyncpg.Connection, incident_id: int, message: dict) -> None:
    """A reply in the thread of each posted routed message of the incident, through the outbox
    (as "Snooze ended" and escalations go). Before the first post there is no thread yet: the
    note or change is still in the timeline."""
    rows = [
        NewNotification("incident_reply", None, {"message_id": m["id"], "message": message}, incident_id)
        for m in await incidents.messages_for(conn, incident_id, escalation_posts=False)
        if m["slack_ts"]
    ]
    if rows:
        await notifications.enqueue_notifications(conn, rows)

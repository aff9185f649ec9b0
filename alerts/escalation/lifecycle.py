"""What an incident's changes do to its escalation, called inside the transaction that makes them:
posted → its routes' policies start; acknowledged or resolved → every policy and personal page of
it stops, and every outbound channel that was paged hears of it (PagerDuty acknowledges and
resolves with the same dedup key, the GitHub issue gets a comment or is closed, a webhook gets the
event); fired again after resolving → the policies walk again from the start."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

import asyncpg

from alerts.outbound.channels import KINDS
from storage import escalation, notifications, outbound


async def start_policies(conn: asyncpg.Connection, incident_id: int, routes: Sequence[Any], *, now: datetime) -> int:
    """The incident was posted to these routes (dicts or `Route`s): start the policies they name."""
    policy_ids = [r.get("escalation_policy_id") if isinstance(r, dict) else r.escalation_policy_id for r in routes]
    return await escalation.start_runs(conn, incident_id, [p for p in policy_ids if p], now=now)


async def incident_acknowledged(conn: asyncpg.Connection, incident: dict, *, by: str, now: datetime) -> None:
    await _stopped(conn, incident, "acknowledge", by, now)


async def incident_resolved(conn: asyncpg.Connection, incident: dict, *, by: str, now: datetime) -> None:
    await _stopped(conn, incident, "resolve", by, now)


async def incident_reopened(conn: asyncpg.Connection, incident: dict, *, now: datetime) -> None:
    await escalation.restart_runs(conn, incident["id"], now=now)


async def _stopped(conn: asyncpg.Connection, incident: dict, action: str, by: str, now: datetime) -> None:
    paged = await escalation.stop_runs(conn, incident["id"], by=by, now=now)
    if not paged:
        return
    generation = incident.get("reopened_count") or 0
    for channel in (await outbound.get_channels(conn, paged)).values():
        if action in KINDS[channel["kind"]].actions:
            await outbound.enqueue(
                conn, key=f"{action}:{incident['id']}:{generation}:c{channel['id']}", channel_id=channel["id"],
                incident_id=incident["id"], action=action, severity=incident["severity"],
                reason=f"{action}d by {by}", now=now,
            )
    await notifications.announce(conn)

"""SQL that puts rows into the notification outbox.

A notification is written in the same transaction as the state change that causes it (a `fail`
heartbeat, a recovery), so "the app went down" and "Slack must be told" commit together or not at
all; the notifier delivers the rows later.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

import asyncpg


@dataclass(frozen=True)
class NewNotification:
    kind: str  # heartbeat_fail | heartbeat_recovered | …
    app_id: int | None
    payload: dict[str, Any]


async def enqueue_notifications(conn: asyncpg.Connection, rows: Sequence[NewNotification]) -> None:
    """One statement for all of a batch's notifications; pending, due now."""
    if not rows:
        return
    # jsonb goes over the wire as text: the pool's codec covers jsonb values, not jsonb[] arrays.
    await conn.execute(
        """
        INSERT INTO notifications (kind, app_id, payload)
        SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[]::jsonb[])
        """,
        [r.kind for r in rows],
        [r.app_id for r in rows],
        [json.dumps(r.payload, separators=(",", ":")) for r in rows],
    )

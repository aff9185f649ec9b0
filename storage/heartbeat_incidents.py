"""SQL for heartbeat incidents: an app's open incident, and Pulser's note on it.

A heartbeat alert is an ordinary incident (source `heartbeat`); what is specific is finding the
one an app has open (its labels carry `heartbeat.app_id`, matched through the index on firing
incidents' labels) and the note Pulser writes on it when the app recovers or is paused.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

Conn = asyncpg.Pool | asyncpg.Connection

APP_ID_LABEL = "heartbeat.app_id"


async def firing_for_app(conn: Conn, app_id: int) -> dict | None:
    """The app's firing incident (the newest, should there be two), or None."""
    row = await conn.fetchrow(
        """
        SELECT id, service, group_key FROM incidents
         WHERE status = 'firing' AND labels @> jsonb_build_object($2::text, $1::text)
         ORDER BY id DESC LIMIT 1
        """,
        str(app_id),
        APP_ID_LABEL,
    )
    return dict(row) if row else None


async def set_note(conn: Conn, incident_id: int, note: str | None, *, now: datetime) -> None:
    """Pulser's own words on the incident's message ("recovered after 14 min"), shown at once;
    None takes them away (the app is down again: the incident reopened)."""
    await conn.execute(
        "UPDATE incidents SET action_note = $2, version = version + 1, updated_at = $3 WHERE id = $1",
        incident_id,
        note,
        now,
    )


async def firing_for_unwatched_apps(conn: Conn, *, limit: int = 100) -> list[dict]:
    """Firing heartbeat incidents whose app is no longer watched: paused or deleted since (from
    `/pulser apps`, the API or the config of an app), so that nothing will ever resolve them. A
    `group_by` group is left alone: its members resolve it."""
    rows = await conn.fetch(
        """
        SELECT i.id, i.group_key, i.last_alert, (a.id IS NULL OR a.deleted_at IS NOT NULL) AS deleted
          FROM incidents i
          LEFT JOIN applications a ON a.id::text = i.labels->>$1
         WHERE i.status = 'firing' AND i.source = 'heartbeat' AND i.group_key NOT LIKE 'group:%'
           AND (a.id IS NULL OR a.deleted_at IS NOT NULL OR NOT a.is_active)
         ORDER BY i.id
         LIMIT $2
        """,
        APP_ID_LABEL,
        limit,
    )
    return [dict(r) for r in rows]

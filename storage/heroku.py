"""SQL for Heroku monitoring: the settings row and per-app state."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

import asyncpg

Conn = asyncpg.Pool | asyncpg.Connection



async def ensure_settings(conn: Conn, *, apps: Sequence[str], channel: str, interval_minutes: int) -> dict:
    """The stored settings; the first start stores the environment's values (later starts keep
    what was changed from Slack)."""
    await conn.execute(
        """
        INSERT INTO heroku_settings (id, apps, channel, interval_minutes, updated_by)
        VALUES (true, $1, $2, $3, 'environment')
        ON CONFLICT (id) DO NOTHING
        """,
        list(apps),
        channel,
        interval_minutes,
    )
    return await get_settings(conn)


async def get_settings(conn: Conn) -> dict:
    row = await conn.fetchrow("SELECT apps, channel, interval_minutes, updated_by, updated_at FROM heroku_settings")
    return dict(row) if row else {}


async def save_settings(conn: Conn, *, apps: Sequence[str], channel: str, interval_minutes: int, updated_by: str) -> dict:
    row = await conn.fetchrow(
        """
        INSERT INTO heroku_settings (id, apps, channel, interval_minutes, updated_by, updated_at)
        VALUES (true, $1, $2, $3, $4, now())
        ON CONFLICT (id) DO UPDATE
           SET apps = $1, channel = $2, interval_minutes = $3, updated_by = $4, updated_at = now()
        RETURNING apps, channel, interval_minutes, updated_by, updated_at
        """,
        list(apps),
        channel,
        interval_minutes,
        updated_by,
    )
    return dict(row)


async def lock_app_state(conn: asyncpg.Connection, app: str) -> dict | None:
    """The app's state, locked until the transaction ends (webhook and poll never interleave)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('heroku:' || $1, 7))", app)
    row = await conn.fetchrow("SELECT * FROM app_state WHERE app = $1 FOR UPDATE", app)
    return dict(row) if row else None


async def save_app_state(
    conn: asyncpg.Connection,
    app: str,
    *,
    state: dict[str, Any],
    last_release_version: int | None,
    dynos: dict,
    config_hash: str | None,
    config_key_id: str | None,
    addons: dict,
    polled_at: datetime | None,
) -> None:
    await conn.execute(
        """
        INSERT INTO app_state (app, state, last_release_version, dynos, config_hash, config_key_id, addons,
                               last_poll_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())
        ON CONFLICT (app) DO UPDATE
           SET state = $2, last_release_version = $3, dynos = $4, config_hash = $5, config_key_id = $6,
               addons = $7,
               last_poll_at = coalesce($8, app_state.last_poll_at),
               last_poll_error = CASE WHEN $8::timestamptz IS NULL THEN app_state.last_poll_error END,
               updated_at = now()
        """,
        app,
        state,
        last_release_version,
        dynos,
        config_hash,
        config_key_id,
        addons,
        polled_at,
    )


async def claim_cycle(conn: Conn, *, now: datetime) -> dict | None:
    """Claim this poll cycle if it is due (interval passed since the last claim); one process wins."""
    row = await conn.fetchrow(
        """
        UPDATE heroku_settings SET last_cycle_at = $1
         WHERE last_cycle_at IS NULL
            OR last_cycle_at <= $1::timestamptz - make_interval(mins => interval_minutes) + interval '2 seconds'
        RETURNING apps, channel, interval_minutes
        """,
        now,
    )
    return dict(row) if row else None


async def release_cycle(conn: Conn) -> None:
    """Settings changed: the next tick polls at once with the new ones."""
    await conn.execute("UPDATE heroku_settings SET last_cycle_at = NULL")


async def record_poll_error(pool: asyncpg.Pool, app: str, error: str, at: datetime) -> None:
    await pool.execute(
        """
        UPDATE app_state SET last_poll_error = left($2, 500), last_error_at = $3 WHERE app = $1
        """,
        app,
        error,
        at,
    )


async def app_states(conn: Conn, apps: Sequence[str] | None = None) -> dict[str, dict]:
    rows = await conn.fetch(
        "SELECT * FROM app_state WHERE $1::text[] IS NULL OR app = ANY($1::text[]) ORDER BY app",
        None if apps is None else list(apps),
    )
    return {r["app"]: dict(r) for r in rows}


async def set_incident_note(conn: Conn, incident_id: int, note: str) -> None:
    """Show an action's outcome on the incident's messages (the caller schedules the re-render)."""
    await conn.execute(
        "UPDATE incidents SET action_note = $2, version = version + 1, updated_at = now() WHERE id = $1",
        incident_id,
        note,
    )

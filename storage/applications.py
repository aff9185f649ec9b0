"""SQL for heartbeat applications: CRUD, row locks for the heartbeat writer, the watcher's claim.

Deadlines changing triggers `NOTIFY pulser_deadlines, '<epoch>'`, so a watcher in any process
wakes early when something became due sooner than it planned to look.
"""

from __future__ import annotations

import uuid as uuid_module
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable, NamedTuple, Sequence

import asyncpg

DEADLINE_CHANNEL = "pulser_deadlines"

_COLUMNS = """id, uuid, name, expected_interval, grace_period, schedule, timezone, channel, owner,
    is_active, state, last_heartbeat, last_start, last_duration_ms, due_at, next_deadline, down_since,
    snoozed_until, created_by, created_at, updated_at"""


@dataclass(frozen=True)
class ApplicationSpec:
    """What a person or the API decides about an application (validated in alerts.applications)."""

    name: str
    expected_interval: int | None
    grace_period: int
    schedule: str | None
    timezone: str
    channel: str
    owner: str | None
    is_active: bool


class AppClock(NamedTuple):
    """The columns of `applications` that a heartbeat reads or changes (see alerts.heartbeat_rules).

    A NamedTuple, not a dataclass: the heartbeat writer builds and `_replace`s one per event, and
    that is measurably cheaper on the hot path."""

    id: int
    name: str
    is_active: bool
    state: str
    expected_interval: int | None
    grace_period: int
    schedule: str | None
    timezone: str
    last_heartbeat: datetime | None
    last_start: datetime | None
    due_at: datetime | None
    next_deadline: datetime | None
    down_since: datetime | None
    snoozed_until: datetime | None


class NameTaken(Exception):
    """Another (not deleted) application already has this name, compared case-insensitively."""


@dataclass(frozen=True)
class Application:
    id: int
    uuid: uuid_module.UUID
    name: str
    expected_interval: int | None
    grace_period: int
    schedule: str | None
    timezone: str
    channel: str
    owner: str | None
    is_active: bool
    state: str
    last_heartbeat: datetime | None
    last_start: datetime | None
    last_duration_ms: int | None
    due_at: datetime | None
    next_deadline: datetime | None
    down_since: datetime | None
    snoozed_until: datetime | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> "Application":
        return cls(**dict(row))

    @property
    def spec(self) -> ApplicationSpec:
        return ApplicationSpec(
            name=self.name,
            expected_interval=self.expected_interval,
            grace_period=self.grace_period,
            schedule=self.schedule,
            timezone=self.timezone,
            channel=self.channel,
            owner=self.owner,
            is_active=self.is_active,
        )


async def create_application(pool: asyncpg.Pool, spec: ApplicationSpec, *, created_by: str | None) -> Application:
    try:
        row = await pool.fetchrow(
            f"""
            INSERT INTO applications (uuid, name, expected_interval, grace_period, schedule, timezone,
                                      channel, owner, is_active, created_by)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            RETURNING {_COLUMNS}
            """,
            uuid_module.uuid4(),
            spec.name,
            spec.expected_interval,
            spec.grace_period,
            spec.schedule,
            spec.timezone,
            spec.channel,
            spec.owner,
            spec.is_active,
            created_by,
        )
    except asyncpg.UniqueViolationError as exc:
        raise NameTaken(spec.name) from exc
    return Application.from_row(row)


ClockRule = Callable[["Application", ApplicationSpec], tuple[datetime | None, datetime | None]]


async def update_application(
    pool: asyncpg.Pool, app_id: int, spec: ApplicationSpec, *, clock_after_edit: ClockRule
) -> Application | None:
    """Store a new spec (not `is_active`: pausing goes through set_active). The row is locked and
    the clock recomputed from it inside the transaction, so a heartbeat or the watcher committing
    meanwhile is never overwritten; the state column is not touched at all. Wakes watchers when
    the deadline moves earlier."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            f"SELECT {_COLUMNS} FROM applications WHERE id = $1 AND deleted_at IS NULL FOR UPDATE", app_id
        )
        if row is None:
            return None
        current = Application.from_row(row)
        due_at, next_deadline = clock_after_edit(current, spec)
        try:
            row = await conn.fetchrow(
                f"""
                UPDATE applications
                   SET name = $2, expected_interval = $3, grace_period = $4, schedule = $5, timezone = $6,
                       channel = $7, owner = $8, due_at = $9, next_deadline = $10, updated_at = now()
                 WHERE id = $1
                RETURNING {_COLUMNS}
                """,
                app_id,
                spec.name,
                spec.expected_interval,
                spec.grace_period,
                spec.schedule,
                spec.timezone,
                spec.channel,
                spec.owner,
                due_at,
                next_deadline,
            )
        except asyncpg.UniqueViolationError as exc:
            raise NameTaken(spec.name) from exc
        if next_deadline is not None and next_deadline != current.next_deadline:
            await notify_deadline(conn, next_deadline)
    return Application.from_row(row)


async def set_active(pool: asyncpg.Pool, app_id: int, active: bool) -> Application | None:
    """Pause, or resume as `new` (the clock restarts with the next heartbeat)."""
    row = await pool.fetchrow(
        f"""
        UPDATE applications
           SET is_active = $2, updated_at = now(),
               state = CASE WHEN $2 AND NOT is_active THEN 'new' ELSE state END,
               due_at = CASE WHEN $2 AND NOT is_active THEN NULL ELSE due_at END,
               next_deadline = CASE WHEN $2 AND NOT is_active THEN NULL ELSE next_deadline END,
               down_since = CASE WHEN $2 AND NOT is_active THEN NULL ELSE down_since END
         WHERE id = $1 AND deleted_at IS NULL
        RETURNING {_COLUMNS}
        """,
        app_id,
        active,
    )
    return Application.from_row(row) if row else None


async def snooze(pool: asyncpg.Pool, app_id: int, until: datetime | None) -> Application | None:
    row = await pool.fetchrow(
        f"UPDATE applications SET snoozed_until = $2, updated_at = now() WHERE id = $1 AND deleted_at IS NULL RETURNING {_COLUMNS}",
        app_id,
        until,
    )
    return Application.from_row(row) if row else None


async def delete_application(pool: asyncpg.Pool, app_id: int) -> bool:
    """Soft delete: the UUID stops working at once and the name is free again; history stays
    until retention removes it with the row."""
    result = await pool.execute(
        "UPDATE applications SET deleted_at = now(), updated_at = now() WHERE id = $1 AND deleted_at IS NULL", app_id
    )
    return result.endswith(" 1")


async def get_application(pool: asyncpg.Pool, app_id: int) -> Application | None:
    row = await pool.fetchrow(f"SELECT {_COLUMNS} FROM applications WHERE id = $1 AND deleted_at IS NULL", app_id)
    return Application.from_row(row) if row else None


async def get_application_by_uuid(pool: asyncpg.Pool, app_uuid: uuid_module.UUID) -> Application | None:
    row = await pool.fetchrow(f"SELECT {_COLUMNS} FROM applications WHERE uuid = $1 AND deleted_at IS NULL", app_uuid)
    return Application.from_row(row) if row else None


async def get_applications(pool: asyncpg.Pool, app_ids: Sequence[int]) -> dict[int, Application]:
    rows = await pool.fetch(
        f"SELECT {_COLUMNS} FROM applications WHERE id = ANY($1::bigint[]) AND deleted_at IS NULL", list(app_ids)
    )
    return {r["id"]: Application.from_row(r) for r in rows}


async def list_applications(pool: asyncpg.Pool, *, limit: int = 1000, offset: int = 0) -> list[Application]:
    rows = await pool.fetch(
        f"SELECT {_COLUMNS} FROM applications WHERE deleted_at IS NULL ORDER BY lower(name) LIMIT $1 OFFSET $2",
        limit,
        offset,
    )
    return [Application.from_row(r) for r in rows]


async def list_by_attention(pool: asyncpg.Pool, *, limit: int) -> list[Application]:
    """Down apps first, then late ones, then the rest, each by name: what a person should see
    first when the whole fleet does not fit in one message."""
    rows = await pool.fetch(
        f"""
        SELECT {_COLUMNS} FROM applications
         WHERE deleted_at IS NULL
         ORDER BY CASE WHEN is_active AND state = 'down' THEN 0
                       WHEN is_active AND state = 'up' AND due_at < now() THEN 1
                       ELSE 2 END,
                  lower(name)
         LIMIT $1
        """,
        limit,
    )
    return [Application.from_row(r) for r in rows]


async def count_by_state(pool: asyncpg.Pool) -> dict[str, int]:
    rows = await pool.fetch(
        """
        SELECT CASE WHEN NOT is_active THEN 'paused'
                    WHEN state = 'up' AND due_at < now() THEN 'late'
                    ELSE state END AS status,
               count(*) AS n
          FROM applications WHERE deleted_at IS NULL GROUP BY 1
        """
    )
    counts = {s: 0 for s in ("new", "up", "late", "down", "paused")}
    counts.update({r["status"]: r["n"] for r in rows})
    return counts


# --- for the heartbeat writer (inside its transaction) -------------------------------------------


async def lock_clocks(conn: asyncpg.Connection, uuids: Sequence[uuid_module.UUID]) -> dict[uuid_module.UUID, AppClock]:
    """Lock the (not deleted) applications of these UUIDs, in id order so writers never deadlock."""
    rows = await conn.fetch(
        """
        SELECT id, name, is_active, state, expected_interval, grace_period, schedule, timezone,
               last_heartbeat, last_start, due_at, next_deadline, down_since, snoozed_until, uuid
          FROM applications
         WHERE uuid = ANY($1::uuid[]) AND deleted_at IS NULL
         ORDER BY id
           FOR UPDATE
        """,
        list(uuids),
    )
    # Columns are selected in AppClock's field order, uuid last: the first 14 values are the clock.
    return {r[14]: AppClock(*r[:14]) for r in rows}


async def save_clocks(conn: asyncpg.Connection, clocks: Iterable[tuple[AppClock, int | None]]) -> None:
    """Write back the clocks the writer computed; (clock, last duration in ms or None)."""
    rows = [
        (c.id, c.state, c.last_heartbeat, c.last_start, duration, c.due_at, c.next_deadline, c.down_since)
        for c, duration in clocks
    ]
    if not rows:
        return
    await conn.execute(
        """
        UPDATE applications AS a
           SET state = u.state, last_heartbeat = u.last_heartbeat, last_start = u.last_start,
               last_duration_ms = coalesce(u.duration, a.last_duration_ms),
               due_at = u.due_at, next_deadline = u.next_deadline, down_since = u.down_since,
               updated_at = now()
          FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::bigint[],
                      $6::timestamptz[], $7::timestamptz[], $8::timestamptz[])
               AS u(id, state, last_heartbeat, last_start, duration, due_at, next_deadline, down_since)
         WHERE a.id = u.id
        """,
        *[list(col) for col in zip(*rows)],
    )


async def notify_deadline(conn: asyncpg.Connection, deadline: datetime) -> None:
    await conn.execute("SELECT pg_notify($1, $2)", DEADLINE_CHANNEL, f"{deadline.timestamp():.3f}")


# --- for the watcher -------------------------------------------------------------------------------


async def earliest_deadline(pool: asyncpg.Pool) -> tuple[datetime | None, datetime]:
    """The earliest deadline of a watched app, and the database's clock to compare it with."""
    row = await pool.fetchrow(
        "SELECT min(next_deadline) AS earliest, now() AS db_now FROM applications"
        " WHERE deleted_at IS NULL AND is_active AND state = 'up'"
    )
    return row["earliest"], row["db_now"]


async def claim_overdue(conn: asyncpg.Connection | asyncpg.Pool, *, limit: int = 100) -> list[dict[str, Any]]:
    """Mark overdue apps down, earliest deadline first; returns what their alerts need.

    The conditional UPDATE is the claim: of two watchers racing, only one moves a row from `up` to
    `down` (SKIP LOCKED keeps the loser from waiting), so each miss alerts exactly once. The caller
    opens the apps' incidents in the same transaction (see jobs.heartbeat_watcher).
    """
    rows = await conn.fetch(
        """
        WITH overdue AS (
            SELECT id FROM applications
             WHERE deleted_at IS NULL AND is_active AND state = 'up' AND next_deadline <= now()
             ORDER BY next_deadline
             LIMIT $1
               FOR UPDATE SKIP LOCKED
        )
        UPDATE applications AS a
           SET state = 'down', down_since = a.next_deadline, updated_at = now()
          FROM overdue WHERE a.id = overdue.id
        RETURNING a.id, a.uuid, a.name, a.channel, a.expected_interval, a.grace_period, a.schedule, a.timezone,
                  a.next_deadline, a.last_heartbeat, now() AS claimed_at
        """,
        limit,
    )
    return sorted((dict(r) for r in rows), key=lambda r: (r["next_deadline"], r["id"]))

"""SQL for on-call schedules: schedules with their layers, overrides, swaps, the imported
calendars' last good copies, the people cache and the shift notices (migration 0012).

SQL only: what a layer means and how shifts are computed is `alerts.oncall`. Every function takes
a pool or a connection, so callers may group several in one transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Iterable, Sequence

import asyncpg

Conn = asyncpg.Pool | asyncpg.Connection

_SCHEDULE = "id, name, time_zone, feed_token, created_by, created_at, updated_at, managed_by"
_LAYER = """position, name, kind, members, shift_count, shift_unit, handoff_time, start_date, restrict_days,
    restrict_from, restrict_to, ical_url"""
LAYER_FIELDS: tuple[str, ...] = tuple(c.strip() for c in _LAYER.split(","))
_OVERRIDE = "id, schedule_id, user_id, starts_at, ends_at, created_by, created_at"
_SWAP = "id, schedule_id, shift_start, from_user, to_user, created_by, created_at"
_CALENDAR = "schedule_id, url, fetched_at, last_success_at, last_error, event_count, unmatched"


class NameTaken(Exception):
    """Another schedule has this name (ignoring case)."""


class OverlappingOverride(Exception):
    def __init__(self, existing: dict[str, Any]):
        super().__init__("overlaps an existing override")
        self.existing = existing


# --- schedules -------------------------------------------------------------------------------------


async def list_schedules(conn: Conn) -> list[dict[str, Any]]:
    return [dict(r) for r in await conn.fetch(f"SELECT {_SCHEDULE} FROM oncall_schedules ORDER BY lower(name)")]


async def get_schedule(conn: Conn, schedule_id: int) -> dict[str, Any] | None:
    row = await conn.fetchrow(f"SELECT {_SCHEDULE} FROM oncall_schedules WHERE id = $1", schedule_id)
    return dict(row) if row else None


async def find_schedule(conn: Conn, name: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(f"SELECT {_SCHEDULE} FROM oncall_schedules WHERE lower(name) = lower($1)", name)
    return dict(row) if row else None


async def schedule_by_feed_token(conn: Conn, token: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(f"SELECT {_SCHEDULE} FROM oncall_schedules WHERE feed_token = $1", token)
    return dict(row) if row else None


async def create_schedule(
    pool: asyncpg.Pool, *, name: str, time_zone: str, feed_token: str, layers: Sequence[dict[str, Any]],
    created_by: str | None,
) -> dict[str, Any]:
    async with pool.acquire() as conn, conn.transaction():
        try:
            row = await conn.fetchrow(
                f"""INSERT INTO oncall_schedules (name, time_zone, feed_token, created_by) VALUES ($1, $2, $3, $4)
                    RETURNING {_SCHEDULE}""",
                name, time_zone, feed_token, created_by,
            )
        except asyncpg.UniqueViolationError:
            raise NameTaken(name) from None
        await _put_layers(conn, row["id"], layers)
    return dict(row)


async def update_schedule(
    pool: asyncpg.Pool, schedule_id: int, *, name: str, time_zone: str, layers: Sequence[dict[str, Any]],
    feed_token: str | None = None,
) -> dict[str, Any] | None:
    """Store the name, zone and the whole list of layers; a new `feed_token` rotates the feed's."""
    async with pool.acquire() as conn, conn.transaction():
        try:
            row = await conn.fetchrow(
                f"""UPDATE oncall_schedules SET name = $2, time_zone = $3, feed_token = coalesce($4, feed_token),
                           updated_at = now()
                     WHERE id = $1 RETURNING {_SCHEDULE}""",
                schedule_id, name, time_zone, feed_token,
            )
        except asyncpg.UniqueViolationError:
            raise NameTaken(name) from None
        if row is None:
            return None
        await _put_layers(conn, schedule_id, layers)
    return dict(row)


async def delete_schedule(conn: Conn, schedule_id: int) -> bool:
    return await conn.fetchval("DELETE FROM oncall_schedules WHERE id = $1 RETURNING id", schedule_id) is not None


async def lock_schedule(conn: asyncpg.Connection, schedule_id: int) -> bool:
    """Serialize changes to one schedule's overrides and swaps (inside a transaction)."""
    return await conn.fetchval("SELECT id FROM oncall_schedules WHERE id = $1 FOR UPDATE", schedule_id) is not None


# --- layers ----------------------------------------------------------------------------------------


async def layers_of(conn: Conn, schedule_ids: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
    """schedule id → its layers, bottom first."""
    ids = list(schedule_ids)
    found: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    rows = await conn.fetch(
        f"SELECT schedule_id, {_LAYER} FROM oncall_layers WHERE schedule_id = ANY($1::bigint[]) ORDER BY schedule_id, position",
        ids,
    )
    for row in rows:
        layer = dict(row)
        found[layer.pop("schedule_id")].append(layer)
    return found


async def replace_layers(conn: asyncpg.Connection, schedule_id: int, layers: Sequence[dict[str, Any]]) -> None:
    """The same, for a caller with its own transaction (the config file's apply)."""
    await _put_layers(conn, schedule_id, layers)


async def _put_layers(conn: asyncpg.Connection, schedule_id: int, layers: Sequence[dict[str, Any]]) -> None:
    """Replace the layers; calendars no layer names any more go, with their events."""
    await conn.execute("DELETE FROM oncall_layers WHERE schedule_id = $1", schedule_id)
    for position, layer in enumerate(layers, start=1):
        values = [layer.get(c) for c in LAYER_FIELDS[1:]]
        await conn.execute(
            """INSERT INTO oncall_layers (schedule_id, position, name, kind, members, shift_count, shift_unit, handoff_time,
                                          start_date, restrict_days, restrict_from, restrict_to, ical_url)
               VALUES ($1, $2, $3, $4, coalesce($5::text[], '{}'), $6, $7, $8, $9, $10, $11, $12, $13)""",
            schedule_id, position, *values,
        )
    urls = [layer["ical_url"] for layer in layers if layer.get("ical_url")]
    await conn.execute(
        "DELETE FROM oncall_calendars WHERE schedule_id = $1 AND NOT (url = ANY($2::text[]))", schedule_id, urls
    )
    for url in urls:
        await conn.execute(
            "INSERT INTO oncall_calendars (schedule_id, url) VALUES ($1, $2) ON CONFLICT DO NOTHING", schedule_id, url
        )


# --- imported calendars ----------------------------------------------------------------------------


async def calendars_of(conn: Conn, schedule_id: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(f"SELECT {_CALENDAR} FROM oncall_calendars WHERE schedule_id = $1 ORDER BY url", schedule_id)
    return [dict(r) for r in rows]


async def claim_stale_calendars(
    conn: Conn, *, now: datetime, older_than: timedelta, hold: timedelta, limit: int = 20,
    schedule_id: int | None = None,
) -> list[dict[str, Any]]:
    """Calendars last fetched before now - older_than (or never), claimed for `hold` so replicas
    running the same job fetch each once. `schedule_id` limits it to one schedule."""
    rows = await conn.fetch(
        f"""
        UPDATE oncall_calendars c SET claimed_until = $1::timestamptz + $3::interval
          FROM (SELECT schedule_id, url FROM oncall_calendars
                 WHERE (fetched_at IS NULL OR fetched_at <= $1::timestamptz - $2::interval)
                   AND (claimed_until IS NULL OR claimed_until < $1::timestamptz)
                   AND ($5::bigint IS NULL OR schedule_id = $5)
                 ORDER BY fetched_at NULLS FIRST LIMIT $4 FOR UPDATE SKIP LOCKED) due
         WHERE c.schedule_id = due.schedule_id AND c.url = due.url
        RETURNING c.schedule_id, c.url
        """,
        now, older_than, hold, limit, schedule_id,
    )
    return [dict(r) for r in rows]


async def store_calendar_events(
    pool: asyncpg.Pool, schedule_id: int, url: str, events: Sequence[tuple[datetime, datetime, str | None, str]],
    *, now: datetime,
) -> bool:
    """Replace a calendar's last good copy; False when the layer was removed meanwhile."""
    async with pool.acquire() as conn, conn.transaction():
        updated = await conn.fetchval(
            """UPDATE oncall_calendars SET fetched_at = $3, last_success_at = $3, last_error = NULL, claimed_until = NULL,
                      event_count = $4, unmatched = $5
                WHERE schedule_id = $1 AND url = $2 RETURNING url""",
            schedule_id, url, now, len(events), sum(1 for e in events if e[2] is None),
        )
        if updated is None:
            return False
        await conn.execute("DELETE FROM oncall_imported_events WHERE schedule_id = $1 AND url = $2", schedule_id, url)
        await conn.copy_records_to_table(
            "oncall_imported_events",
            records=[(schedule_id, url, start, end, user, label) for start, end, user, label in events],
            columns=["schedule_id", "url", "starts_at", "ends_at", "user_id", "label"],
        )
    return True


async def record_calendar_failure(conn: Conn, schedule_id: int, url: str, error: str, *, now: datetime) -> None:
    """A failed fetch: the last good copy stays; the error is shown until a fetch succeeds."""
    await conn.execute(
        """UPDATE oncall_calendars SET fetched_at = $3, last_error = $4, claimed_until = NULL
            WHERE schedule_id = $1 AND url = $2""",
        schedule_id, url, now, error,
    )


async def imported_events(
    conn: Conn, schedule_id: int, url: str, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT starts_at, ends_at, user_id, label FROM oncall_imported_events
            WHERE schedule_id = $1 AND url = $2 AND starts_at < $4 AND ends_at > $3 ORDER BY starts_at""",
        schedule_id, url, start, end,
    )
    return [dict(r) for r in rows]


# --- people ----------------------------------------------------------------------------------------


async def remembered_people(conn: Conn, keys: Sequence[str], *, fresher_than: datetime) -> dict[str, dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT key, user_id, name FROM oncall_people WHERE key = ANY($1::text[]) AND checked_at > $2", list(keys), fresher_than
    )
    return {r["key"]: dict(r) for r in rows}


async def remember_person(conn: Conn, key: str, user_id: str | None, name: str | None) -> None:
    await conn.execute(
        """INSERT INTO oncall_people (key, user_id, name) VALUES ($1, $2, $3)
           ON CONFLICT (key) DO UPDATE SET user_id = excluded.user_id, name = excluded.name, checked_at = now()""",
        key, user_id, name,
    )


async def names_of(conn: Conn, user_ids: Sequence[str]) -> dict[str, str]:
    rows = await conn.fetch(
        "SELECT user_id, name FROM oncall_people WHERE key = ANY($1::text[]) AND name IS NOT NULL",
        [f"user:{u}" for u in user_ids],
    )
    return {r["user_id"]: r["name"] for r in rows}


# --- overrides and swaps ---------------------------------------------------------------------------


async def overrides_between(conn: Conn, schedule_id: int, start: datetime, end: datetime) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"""SELECT {_OVERRIDE} FROM oncall_overrides WHERE schedule_id = $1 AND starts_at < $3 AND ends_at > $2
             ORDER BY starts_at""",
        schedule_id, start, end,
    )
    return [dict(r) for r in rows]


async def create_override(
    pool: asyncpg.Pool, schedule_id: int, *, user_id: str, starts_at: datetime, ends_at: datetime, created_by: str | None
) -> dict[str, Any] | None:
    """None when the schedule is gone; OverlappingOverride when another override shares time with it."""
    async with pool.acquire() as conn, conn.transaction():
        if not await lock_schedule(conn, schedule_id):
            return None
        clash = await conn.fetchrow(
            f"""SELECT {_OVERRIDE} FROM oncall_overrides WHERE schedule_id = $1 AND starts_at < $3 AND ends_at > $2
                 ORDER BY starts_at LIMIT 1""",
            schedule_id, starts_at, ends_at,
        )
        if clash is not None:
            raise OverlappingOverride(dict(clash))
        row = await conn.fetchrow(
            f"""INSERT INTO oncall_overrides (schedule_id, user_id, starts_at, ends_at, created_by)
                VALUES ($1, $2, $3, $4, $5) RETURNING {_OVERRIDE}""",
            schedule_id, user_id, starts_at, ends_at, created_by,
        )
    return dict(row)


async def get_override(conn: Conn, schedule_id: int, override_id: int) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"SELECT {_OVERRIDE} FROM oncall_overrides WHERE schedule_id = $1 AND id = $2", schedule_id, override_id
    )
    return dict(row) if row else None


async def delete_override(conn: Conn, schedule_id: int, override_id: int) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"DELETE FROM oncall_overrides WHERE schedule_id = $1 AND id = $2 RETURNING {_OVERRIDE}", schedule_id, override_id
    )
    return dict(row) if row else None


async def swaps_between(conn: Conn, schedule_id: int, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Swaps of shifts starting in [start, end)."""
    rows = await conn.fetch(
        f"""SELECT {_SWAP} FROM oncall_swaps WHERE schedule_id = $1 AND shift_start >= $2 AND shift_start < $3
             ORDER BY shift_start""",
        schedule_id, start, end,
    )
    return [dict(r) for r in rows]


async def create_swap(
    conn: Conn, schedule_id: int, *, shift_start: datetime, from_user: str, to_user: str, created_by: str | None
) -> dict[str, Any] | None:
    """None when this shift of from_user was swapped already."""
    row = await conn.fetchrow(
        f"""INSERT INTO oncall_swaps (schedule_id, shift_start, from_user, to_user, created_by)
            VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING {_SWAP}""",
        schedule_id, shift_start, from_user, to_user, created_by,
    )
    return dict(row) if row else None


# --- shift notices ---------------------------------------------------------------------------------


async def claim_notice(conn: Conn, schedule_id: int, user_id: str, shift_start: datetime) -> bool:
    """True for the one caller (of every replica) that is to announce this shift."""
    inserted = await conn.fetchval(
        """INSERT INTO oncall_shift_notices (schedule_id, user_id, shift_start) VALUES ($1, $2, $3)
           ON CONFLICT DO NOTHING RETURNING true""",
        schedule_id, user_id, shift_start,
    )
    return bool(inserted)


async def forget_notices_before(conn: Conn, before: datetime) -> int:
    result = await conn.execute("DELETE FROM oncall_shift_notices WHERE shift_start < $1", before)
    return int(result.split()[-1])

"""Reading incidents by filter, their occurrences and everything a timeline is made of.

Lists page by keyset (the last row's sort key comes back as the cursor), so a page costs the
same however deep it is and a row arriving meanwhile neither repeats nor skips one. `now` is
passed in, as everywhere in storage.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

Conn = asyncpg.Pool | asyncpg.Connection

# The sort key each order pages by: columns and the direction of the row comparison.
SORT_KEYS = {
    "newest": ("ORDER BY i.id DESC", "i.id < $c1", 1),
    "oldest": ("ORDER BY i.id", "i.id > $c1", 1),
    "oldest_unacked": (
        "ORDER BY (i.acked_at IS NOT NULL), i.first_seen, i.id",
        "((i.acked_at IS NOT NULL), i.first_seen, i.id) > ($c1::boolean, $c2::timestamptz, $c3::bigint)",
        3,
    ),
}


class _Sql:
    """Numbered parameters for a statement built piece by piece."""

    def __init__(self) -> None:
        self.args: list[Any] = []
        self.where: list[str] = []

    def arg(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"


def _incident_conditions(sql: _Sql, f: Any, now: datetime, alias: str = "i") -> None:
    """`f` is an alerts.incident_filters.IncidentFilter (read by attribute: storage imports
    nothing above it)."""
    a = alias
    status_sql = {
        "open": f"{a}.status = 'firing'",
        "acked": f"({a}.status = 'firing' AND {a}.acked_at IS NOT NULL)",
        "unacked": f"({a}.status = 'firing' AND {a}.acked_at IS NULL)",
        "snoozed": f"({a}.status = 'firing' AND {a}.snoozed_until > {sql.arg(now)})" if "snoozed" in f.statuses else "",
        "resolved": f"{a}.status = 'resolved'",
    }
    if f.statuses:
        sql.where.append("(" + " OR ".join(status_sql[s] for s in f.statuses) + ")")
    if f.envs:
        sql.where.append(f"{a}.env = ANY({sql.arg(list(f.envs))}::text[])")
    if f.services:
        sql.where.append(f"{a}.service = ANY({sql.arg(list(f.services))}::text[])")
    if f.sources:
        sql.where.append(f"{a}.source = ANY({sql.arg(list(f.sources))}::text[])")
    if f.min_severity:
        sql.where.append(f"{a}.severity = ANY({sql.arg(list(f.at_least))}::text[])")
    if f.severities:
        sql.where.append(f"{a}.severity = ANY({sql.arg(list(f.severities))}::text[])")
    if f.tags:
        sql.where.append(f"{a}.labels @> {sql.arg(dict(f.tags))}::jsonb")
    if f.assignee == "none":
        sql.where.append(f"coalesce({a}.investigator, {a}.acked_by) IS NULL")
    elif f.assignee:
        sql.where.append(f"coalesce({a}.investigator, {a}.acked_by) = {sql.arg(f.assignee)}")
    if f.since is not None:
        sql.where.append(f"{a}.last_seen >= {sql.arg(now - f.since)}")


async def search_incidents(
    conn: Conn, f: Any, *, now: datetime, limit: int, after: list[Any] | None = None
) -> tuple[list[dict], list[Any] | None]:
    """One page of incidents matching `f` in its sort order, and the key to pass as `after` for
    the next page (None on the last one)."""
    sql = _Sql()
    _incident_conditions(sql, f, now)
    order, after_sql, width = SORT_KEYS[f.sort]
    if after is not None:
        if len(after) != width:
            raise ValueError("cursor does not fit this order")
        for n, value in enumerate(after, start=1):
            after_sql = after_sql.replace(f"$c{n}", sql.arg(value))
        sql.where.append(after_sql)
    where = f"WHERE {' AND '.join(sql.where)}" if sql.where else ""
    rows = await conn.fetch(
        f"SELECT i.* FROM incidents i {where} {order} LIMIT {sql.arg(limit + 1)}", *sql.args
    )
    found = [dict(r) for r in rows[:limit]]
    if len(rows) <= limit or not found:
        return found, None
    last = found[-1]
    key = [last["id"]] if width == 1 else [last["acked_at"] is not None, last["first_seen"], last["id"]]
    return found, key


async def count_incidents(conn: Conn, f: Any, *, now: datetime) -> int:
    sql = _Sql()
    _incident_conditions(sql, f, now)
    where = f"WHERE {' AND '.join(sql.where)}" if sql.where else ""
    return await conn.fetchval(f"SELECT count(*) FROM incidents i {where}", *sql.args)


async def search_occurrences(
    conn: Conn,
    f: Any,
    *,
    now: datetime,
    limit: int,
    statuses: tuple[str, ...] = (),
    incident_id: int | None = None,
    before_id: int | None = None,
) -> tuple[list[dict], int | None]:
    """Received alerts, newest first: the incident filters apply to the alert itself (its
    source, service, env, severity, tags) and to when it arrived."""
    sql = _Sql()
    if statuses:
        sql.where.append(f"o.status = ANY({sql.arg(list(statuses))}::text[])")
    if incident_id is not None:
        sql.where.append(f"o.incident_id = {sql.arg(incident_id)}")
    for column, values in (("env", f.envs), ("service", f.services), ("source", f.sources), ("severity", f.severities)):
        if values:
            sql.where.append(f"o.alert->>'{column}' = ANY({sql.arg(list(values))}::text[])")
    if f.min_severity:
        sql.where.append(f"o.alert->>'severity' = ANY({sql.arg(list(f.at_least))}::text[])")
    if f.tags:
        sql.where.append(f"o.alert->'tags' @> {sql.arg(dict(f.tags))}::jsonb")
    if f.since is not None:
        sql.where.append(f"o.received_at >= {sql.arg(now - f.since)}")
    if before_id is not None:
        sql.where.append(f"o.id < {sql.arg(before_id)}")
    where = f"WHERE {' AND '.join(sql.where)}" if sql.where else ""
    rows = await conn.fetch(
        f"SELECT o.id, o.incident_id, o.received_at, o.status, o.alert FROM alert_occurrences o {where} "
        f"ORDER BY o.id DESC LIMIT {sql.arg(limit + 1)}",
        *sql.args,
    )
    found = [dict(r) for r in rows[:limit]]
    return found, (found[-1]["id"] if len(rows) > limit and found else None)


async def occurrences_of(conn: Conn, incident_id: int, *, limit: int = 200) -> list[dict]:
    """The incident's kept occurrences, oldest first."""
    rows = await conn.fetch(
        """
        SELECT id, incident_id, received_at, status, alert FROM (
            SELECT * FROM alert_occurrences WHERE incident_id = $1 ORDER BY id DESC LIMIT $2) newest
         ORDER BY id
        """,
        incident_id,
        limit,
    )
    return [dict(r) for r in rows]


async def timeline_rows(conn: Conn, incident_id: int) -> dict[str, list[dict]]:
    """Everything the timeline is made of besides occurrences: audited actions, thread replies,
    the incident's Slack messages, its notes and its pages beyond Slack (outbound deliveries)."""
    actions = await conn.fetch(
        """
        SELECT id, actor, action, details, at FROM audit_log
         WHERE target_type = 'incident' AND target_id = $1 ORDER BY at, id LIMIT 500
        """,
        str(incident_id),
    )
    replies = await conn.fetch(
        """
        SELECT id, kind, payload, status, created_at, sent_at, slack_channel FROM notifications
         WHERE incident_id = $1 ORDER BY id LIMIT 500
        """,
        incident_id,
    )
    messages = await conn.fetch(
        """
        SELECT id, channel, slack_channel, slack_ts, runbook_url, escalation_of, escalation_level, escalate_to,
               created_at, last_rendered_at, failed, last_error
          FROM incident_messages WHERE incident_id = $1 ORDER BY id
        """,
        incident_id,
    )
    notes = await list_notes(conn, incident_id)
    pages = await conn.fetch(
        """
        SELECT d.id, d.method, d.action, d.recipient, d.reason, d.status, d.attempts, d.last_error, d.detail,
               d.created_at, d.finished_at, c.name AS channel_name, c.kind AS channel_kind
          FROM outbound_deliveries d LEFT JOIN outbound_channels c ON c.id = d.channel_id
         WHERE d.incident_id = $1 ORDER BY d.id LIMIT 500
        """,
        incident_id,
    )
    return {
        "actions": [dict(r) for r in actions],
        "replies": [dict(r) for r in replies],
        "messages": [dict(r) for r in messages],
        "notes": notes,
        "pages": [dict(r) for r in pages],
    }


# --- notes ---------------------------------------------------------------------------------------------


async def add_note(conn: Conn, incident_id: int, *, author: str, text: str, now: datetime) -> dict:
    row = await conn.fetchrow(
        "INSERT INTO incident_notes (incident_id, author, text, created_at) VALUES ($1, $2, $3, $4) RETURNING *",
        incident_id,
        author,
        text,
        now,
    )
    return dict(row)


async def list_notes(conn: Conn, incident_id: int) -> list[dict]:
    rows = await conn.fetch("SELECT * FROM incident_notes WHERE incident_id = $1 ORDER BY id LIMIT 500", incident_id)
    return [dict(r) for r in rows]

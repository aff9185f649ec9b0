"""Aggregate SQL behind `/pulser status` and the App Home dashboard.

Each function is one statement that answers one panel, however many apps or incidents there are:
counts come from GROUP BY / FILTER, and named lists carry a LIMIT, so the answer's cost does not
grow with the fleet (a status command must be answered within Slack's 3 s). Time is passed in.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

import asyncpg

Conn = asyncpg.Pool | asyncpg.Connection

APP_STATUSES = ("new", "up", "late", "down", "paused")


async def heartbeat_overview(conn: Conn, *, now: datetime, down_limit: int) -> dict[str, Any]:
    """Apps by status as a person sees them (late and paused derived as in `count_by_state`), and
    the first `down_limit` down apps, longest down first."""
    row = await conn.fetchrow(
        """
        WITH live AS (
            SELECT name, channel, down_since,
                   CASE WHEN NOT is_active THEN 'paused'
                        WHEN state = 'up' AND due_at < $1 THEN 'late'
                        ELSE state END AS status
              FROM applications WHERE deleted_at IS NULL
        )
        SELECT (SELECT coalesce(jsonb_object_agg(status, n), '{}'::jsonb)
                  FROM (SELECT status, count(*) AS n FROM live GROUP BY status) c) AS counts,
               (SELECT coalesce(jsonb_agg(jsonb_build_object('name', name, 'channel', channel,
                                                             'down_since', down_since)), '[]'::jsonb)
                  FROM (SELECT name, channel, down_since FROM live WHERE status = 'down'
                         ORDER BY down_since NULLS LAST, lower(name) LIMIT $2) d) AS down
        """,
        now,
        down_limit,
    )
    counts = {status: 0 for status in APP_STATUSES}
    counts.update(row["counts"])
    down = [{**app, "down_since": _timestamp(app["down_since"])} for app in row["down"]]
    return {"counts": counts, "total": sum(counts.values()), "down": down}


async def open_incidents(conn: Conn, *, limit: int) -> dict[str, Any]:
    """Firing incidents shown in Slack (held-back ones are counted by `quiet_figures`): counts by
    severity, how many nobody acknowledged, and the first `limit` with unacknowledged ones first,
    oldest first within each, plus the channel each was posted to."""
    row = await conn.fetchrow(
        """
        WITH open AS (
            SELECT id, title, service, env, source, severity, count, first_seen, acked_by, acked_at,
                   snoozed_until, investigator
              FROM incidents WHERE status = 'firing' AND suppressed_by IS NULL
        )
        SELECT (SELECT count(*) FROM open) AS total,
               (SELECT count(*) FROM open WHERE acked_at IS NULL) AS unacked,
               (SELECT coalesce(jsonb_object_agg(severity, n), '{}'::jsonb)
                  FROM (SELECT severity, count(*) AS n FROM open GROUP BY severity) s) AS by_severity,
               (SELECT coalesce(jsonb_agg(to_jsonb(l) ORDER BY l.unacked DESC, l.first_seen, l.id), '[]'::jsonb)
                  FROM (SELECT o.*, o.acked_at IS NULL AS unacked,
                               (SELECT m.slack_channel FROM incident_messages m
                                 WHERE m.incident_id = o.id AND m.slack_ts IS NOT NULL
                                 ORDER BY m.id LIMIT 1) AS slack_channel
                          FROM open o
                         ORDER BY o.acked_at IS NULL DESC, o.first_seen, o.id
                         LIMIT $1) l) AS oldest
        """,
        limit,
    )
    oldest = [
        {
            **incident,
            "first_seen": _timestamp(incident["first_seen"]),
            "acked_at": _timestamp(incident["acked_at"]),
            "snoozed_until": _timestamp(incident["snoozed_until"]),
        }
        for incident in row["oldest"]
    ]
    return {"total": row["total"], "unacked": row["unacked"], "by_severity": dict(row["by_severity"]), "oldest": oldest}


async def quiet_figures(conn: Conn, *, now: datetime) -> dict[str, int]:
    """What is kept quiet: silences in force, silences still to start, firing incidents held back
    from Slack by a silence or an inhibition rule, snoozed incidents and snoozed heartbeat apps."""
    row = await conn.fetchrow(
        """
        SELECT (SELECT count(*) FROM silences
                 WHERE starts_at <= $1 AND ends_at > $1 AND expired_by IS NULL) AS active_silences,
               (SELECT count(*) FROM silences
                 WHERE starts_at > $1 AND expired_by IS NULL) AS pending_silences,
               (SELECT count(*) FROM incidents
                 WHERE status = 'firing' AND suppressed_by IS NOT NULL) AS held_back,
               (SELECT count(*) FROM incidents
                 WHERE status = 'firing' AND snoozed_until > $1) AS snoozed_incidents,
               (SELECT count(*) FROM applications
                 WHERE deleted_at IS NULL AND snoozed_until > $1) AS snoozed_apps
        """,
        now,
    )
    return dict(row)


async def alert_figures(conn: Conn, *, since: datetime, noisy_limit: int) -> dict[str, Any]:
    """Since `since`: alerts received (firing occurrences), incidents opened, how many of those
    were acknowledged and how fast on average, and the sources with the most alerts (with how
    many incidents they made)."""
    row = await conn.fetchrow(
        """
        WITH occ AS (
            SELECT o.incident_id, i.source
              FROM alert_occurrences o JOIN incidents i ON i.id = o.incident_id
             WHERE o.received_at >= $1 AND o.status = 'firing'
        ), opened AS (
            SELECT first_seen, acked_at FROM incidents WHERE first_seen >= $1
        )
        SELECT (SELECT count(*) FROM occ) AS alerts,
               (SELECT count(*) FROM opened) AS incidents_opened,
               (SELECT count(*) FROM opened WHERE acked_at IS NOT NULL) AS acked,
               (SELECT extract(epoch FROM avg(acked_at - first_seen))::float8
                  FROM opened WHERE acked_at IS NOT NULL) AS mtta_seconds,
               (SELECT coalesce(jsonb_agg(to_jsonb(s) ORDER BY s.alerts DESC, s.source), '[]'::jsonb)
                  FROM (SELECT source, count(*) AS alerts, count(DISTINCT incident_id) AS incidents
                          FROM occ GROUP BY source ORDER BY count(*) DESC, source LIMIT $2) s) AS noisy_sources
        """,
        since,
        noisy_limit,
    )
    return dict(row)


async def delivery_figures(conn: Conn, *, sources: Sequence[str], since: datetime) -> dict[str, Any]:
    """When each webhook source last delivered (one index probe per source), when Slack last took
    a message (the delivery log or the notification outbox, whichever is newer), when a Slack call
    last failed and how many failed since `since`."""
    row = await conn.fetchrow(
        """
        SELECT (SELECT coalesce(jsonb_object_agg(s.source, (SELECT max(received_at) FROM envelopes e
                                                              WHERE e.source = s.source)), '{}'::jsonb)
                  FROM unnest($1::text[]) AS s(source)) AS webhooks,
               greatest((SELECT max(at) FROM slack_deliveries WHERE ok),
                        (SELECT max(sent_at) FROM notifications WHERE status = 'sent')) AS last_slack_delivery,
               (SELECT max(at) FROM slack_deliveries WHERE NOT ok) AS last_slack_failure,
               (SELECT count(*) FROM slack_deliveries WHERE NOT ok AND at >= $2) AS slack_failures
        """,
        list(sources),
        since,
    )
    webhooks = {source: _timestamp(row["webhooks"].get(source)) for source in sources}
    return {
        "webhooks": webhooks,
        "last_slack_delivery": row["last_slack_delivery"],
        "last_slack_failure": row["last_slack_failure"],
        "slack_failures": row["slack_failures"],
    }


def _timestamp(value: Any) -> datetime | None:
    """jsonb carries timestamps as ISO text; callers get datetimes back."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)

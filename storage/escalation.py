"""SQL for escalation policies, each incident's walk through them, personal pages, and people's
notification rules and contacts.

Runs and personal pages are claimed like outbox rows: due now, SKIP LOCKED, one statement; the
step they take writes its deliveries under idempotency keys, so a run taken twice (a crash after
the step, before the advance) sends nothing twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping, Sequence

import asyncpg

from storage.outbound import PAGED_CHANNELS

Conn = asyncpg.Pool | asyncpg.Connection

_POLICY_COLUMNS = "id, name, repeat, managed_by, created_by, created_at, updated_at"
_STEP_COLUMNS = "id, policy_id, position, kind, wait_minutes, target, mention, channel_id, min_severity"
STEP_FIELDS = ("kind", "wait_minutes", "target", "mention", "channel_id", "min_severity")
_RUN_COLUMNS = "id, incident_id, policy_id, next_position, round, due_at, status, stopped_by, started_at, updated_at"
_PAGE_COLUMNS = "id, incident_id, user_id, reason, next_position, due_at, status, created_at"


# --- policies ------------------------------------------------------------------------------------


async def list_policies(conn: Conn) -> list[dict]:
    policies = [dict(r) for r in await conn.fetch(f"SELECT {_POLICY_COLUMNS} FROM escalation_policies ORDER BY name")]
    steps = await conn.fetch(f"SELECT {_STEP_COLUMNS} FROM escalation_steps ORDER BY policy_id, position")
    by_policy: dict[int, list[dict]] = {}
    for step in steps:
        by_policy.setdefault(step["policy_id"], []).append(dict(step))
    for policy in policies:
        policy["steps"] = by_policy.get(policy["id"], [])
    return policies


async def get_policy(conn: Conn, policy_id: int) -> dict | None:
    row = await conn.fetchrow(f"SELECT {_POLICY_COLUMNS} FROM escalation_policies WHERE id = $1", policy_id)
    if row is None:
        return None
    policy = dict(row)
    policy["steps"] = [
        dict(r) for r in await conn.fetch(
            f"SELECT {_STEP_COLUMNS} FROM escalation_steps WHERE policy_id = $1 ORDER BY position", policy_id
        )
    ]
    return policy


async def policy_id_by_name(conn: Conn, name: str) -> int | None:
    return await conn.fetchval("SELECT id FROM escalation_policies WHERE name = $1", name)


async def create_policy(conn: asyncpg.Connection, *, name: str, repeat: int, steps: Sequence[Mapping[str, Any]],
                        created_by: str | None, managed_by: str | None = None) -> dict:
    policy_id = await conn.fetchval(
        "INSERT INTO escalation_policies (name, repeat, created_by, managed_by) VALUES ($1, $2, $3, $4) RETURNING id",
        name, repeat, created_by, managed_by,
    )
    await _insert_steps(conn, policy_id, steps)
    return await get_policy(conn, policy_id)


async def replace_policy(conn: asyncpg.Connection, policy_id: int, *, name: str, repeat: int,
                         steps: Sequence[Mapping[str, Any]], managed_by: str | None = None) -> dict | None:
    """New name, repeat and steps in one go. Runs in progress keep their position: a shorter list
    simply ends them sooner."""
    updated = await conn.execute(
        "UPDATE escalation_policies SET name = $2, repeat = $3, managed_by = $4, updated_at = now() WHERE id = $1",
        policy_id, name, repeat, managed_by,
    )
    if updated == "UPDATE 0":
        return None
    await conn.execute("DELETE FROM escalation_steps WHERE policy_id = $1", policy_id)
    await _insert_steps(conn, policy_id, steps)
    return await get_policy(conn, policy_id)


async def _insert_steps(conn: asyncpg.Connection, policy_id: int, steps: Sequence[Mapping[str, Any]]) -> None:
    await conn.executemany(
        """
        INSERT INTO escalation_steps (policy_id, position, kind, wait_minutes, target, mention, channel_id, min_severity)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        """,
        [(policy_id, position, *(step.get(f) for f in STEP_FIELDS)) for position, step in enumerate(steps, start=1)],
    )


async def delete_policy(conn: Conn, policy_id: int) -> bool:
    """False when no such policy. Raises ForeignKeyViolationError while a routing rule names it."""
    return (await conn.execute("DELETE FROM escalation_policies WHERE id = $1", policy_id)) != "DELETE 0"


async def rules_using_policy(conn: Conn, policy_id: int) -> list[str]:
    rows = await conn.fetch("SELECT name FROM routing_rules WHERE escalation_policy_id = $1 ORDER BY position", policy_id)
    return [r["name"] for r in rows]


# --- runs ----------------------------------------------------------------------------------------


async def start_runs(conn: Conn, incident_id: int, policy_ids: Sequence[int], *, now: datetime) -> int:
    """Start each policy for the incident, due now; a policy already started for it is left alone."""
    if not policy_ids:
        return 0
    result = await conn.execute(
        """
        INSERT INTO incident_escalations (incident_id, policy_id, due_at, started_at, updated_at)
        SELECT $1, p, $3, $3, $3 FROM unnest($2::bigint[]) AS p
        ON CONFLICT (incident_id, policy_id) DO NOTHING
        """,
        incident_id, list(dict.fromkeys(policy_ids)), now,
    )
    return int(result.split()[-1])


async def claim_due_runs(conn: asyncpg.Connection, *, now: datetime, limit: int = 50) -> list[dict]:
    """Due runs, locked for this transaction (the step and the advance commit together)."""
    rows = await conn.fetch(
        f"""
        SELECT {_RUN_COLUMNS} FROM incident_escalations
         WHERE status = 'active' AND due_at <= $1
         ORDER BY due_at, id LIMIT $2
           FOR UPDATE SKIP LOCKED
        """,
        now, limit,
    )
    return [dict(r) for r in rows]


async def advance_run(conn: Conn, run_id: int, *, next_position: int, round: int, due_at: datetime | None,
                      status: str, now: datetime) -> None:
    await conn.execute(
        """
        UPDATE incident_escalations SET next_position = $2, round = $3, due_at = $4, status = $5, updated_at = $6
         WHERE id = $1
        """,
        run_id, next_position, round, due_at, status, now,
    )


async def stop_runs(conn: Conn, incident_id: int, *, by: str, now: datetime) -> list[int]:
    """Stop the incident's policies and personal pages (acknowledged or resolved), and return the
    outbound channels it was sent to (a trigger or an escalation), which hear of the change. One
    statement: every acknowledgement and resolution of every incident passes here."""
    rows = await conn.fetch(
        """
        WITH runs AS (
            UPDATE incident_escalations SET status = 'stopped', stopped_by = $2, due_at = NULL, updated_at = $3
             WHERE incident_id = $1 AND status = 'active'
        ), pages AS (
            UPDATE personal_pages SET status = 'stopped', due_at = NULL WHERE incident_id = $1 AND status = 'active'
        )
        """ + PAGED_CHANNELS,
        incident_id, by, now,
    )
    return [r["channel_id"] for r in rows]


async def restart_runs(conn: Conn, incident_id: int, *, now: datetime) -> int:
    """The incident fired again after it was resolved: its policies walk again from the start."""
    await conn.execute("DELETE FROM personal_pages WHERE incident_id = $1", incident_id)
    result = await conn.execute(
        """
        UPDATE incident_escalations
           SET status = 'active', next_position = 1, round = round + 1, due_at = $2, stopped_by = NULL, updated_at = $2
         WHERE incident_id = $1
        """,
        incident_id, now,
    )
    return int(result.split()[-1])


async def runs_for_incident(conn: Conn, incident_id: int) -> list[dict]:
    rows = await conn.fetch(
        f"""
        SELECT r.{_RUN_COLUMNS.replace(', ', ', r.')}, p.name AS policy_name
          FROM incident_escalations r JOIN escalation_policies p ON p.id = r.policy_id
         WHERE r.incident_id = $1 ORDER BY r.id
        """,
        incident_id,
    )
    return [dict(r) for r in rows]


# --- personal pages ------------------------------------------------------------------------------


async def start_page(conn: Conn, incident_id: int, user_id: str, *, reason: str, now: datetime) -> bool:
    """Page a person; False when they are being paged for this incident already (their own rules
    go on where they stand)."""
    started = await conn.fetchval(
        """
        INSERT INTO personal_pages (incident_id, user_id, reason, due_at, created_at) VALUES ($1, $2, $3, $4, $4)
        ON CONFLICT (incident_id, user_id) DO NOTHING RETURNING id
        """,
        incident_id, user_id, reason, now,
    )
    return started is not None


async def claim_due_pages(conn: asyncpg.Connection, *, now: datetime, limit: int = 100) -> list[dict]:
    rows = await conn.fetch(
        f"""
        SELECT {_PAGE_COLUMNS} FROM personal_pages
         WHERE status = 'active' AND due_at <= $1
         ORDER BY due_at, id LIMIT $2
           FOR UPDATE SKIP LOCKED
        """,
        now, limit,
    )
    return [dict(r) for r in rows]


async def advance_page(conn: Conn, page_id: int, *, next_position: int, due_at: datetime | None, status: str) -> None:
    await conn.execute(
        "UPDATE personal_pages SET next_position = $2, due_at = $3, status = $4 WHERE id = $1",
        page_id, next_position, due_at, status,
    )


# --- people --------------------------------------------------------------------------------------


async def notification_rules(conn: Conn, user_id: str) -> list[dict]:
    rows = await conn.fetch(
        "SELECT position, method, delay_minutes FROM notification_rules WHERE user_id = $1 ORDER BY position", user_id
    )
    return [dict(r) for r in rows]


async def set_notification_rules(conn: asyncpg.Connection, user_id: str, rules: Sequence[Mapping[str, Any]]) -> None:
    await conn.execute("DELETE FROM notification_rules WHERE user_id = $1", user_id)
    await conn.executemany(
        "INSERT INTO notification_rules (user_id, position, method, delay_minutes) VALUES ($1, $2, $3, $4)",
        [(user_id, position, r["method"], r["delay_minutes"]) for position, r in enumerate(rules, start=1)],
    )


async def contacts(conn: Conn, user_id: str) -> dict:
    row = await conn.fetchrow("SELECT user_id, email, phone, updated_at FROM user_contacts WHERE user_id = $1", user_id)
    return dict(row) if row else {"user_id": user_id, "email": None, "phone": None, "updated_at": None}


async def set_contacts(conn: Conn, user_id: str, *, email: str | None, phone: str | None) -> None:
    await conn.execute(
        """
        INSERT INTO user_contacts (user_id, email, phone) VALUES ($1, $2, $3)
        ON CONFLICT (user_id) DO UPDATE SET email = EXCLUDED.email, phone = EXCLUDED.phone, updated_at = now()
        """,
        user_id, email, phone,
    )

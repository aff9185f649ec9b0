"""SQL for configuration as code: make the database hold what a checked config file says, in one
transaction, and read today's state back for `pulser config export`.

An apply touches only objects marked `managed_by = 'config'`, plus an unmanaged object with the
same name as a file entry (a deploy service, a routing or inhibition rule; for a silence the same
matchers and window), which the file adopts: exporting today's state and applying it keeps every
object, its id and its history. Managed objects the file no longer lists are removed (a silence is
expired, as the API's DELETE does). Managed routing rules come first, in the file's order; the
others follow in their own order. A no-op apply writes nothing, so applying the same file again is
free and leaves no audit entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import asyncpg

from storage import audit

MANAGED = "config"
ACTOR = "config"
_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('pulser.config', 0))"
_RULE_FIELDS = (
    "name", "envs", "min_severity", "services", "sources", "tags", "continue_matching", "channel", "mention",
    "mention_min_severity", "escalate_after_minutes", "escalate_to", "escalation_levels", "runbook_url",
    "auto_close_minutes",
)  # fmt: skip
_SERVICE_FIELDS = ("name", "action_type", "action", "default_env", "requires_approval", "channel")


@dataclass
class ApplyResult:
    changes: list[str] = field(default_factory=list)  # one line per object created, changed or removed

    @property
    def changed(self) -> bool:
        return bool(self.changes)


async def apply(pool: asyncpg.Pool, spec: Any, *, source: str, now: datetime | None = None) -> ApplyResult:
    """Make the database match `spec` (an `alerts.config_file.ConfigSpec`); all or nothing."""
    now = now or datetime.now(timezone.utc)
    result = ApplyResult()
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(_LOCK)  # two processes applying at once take turns
        await _apply_rules(conn, spec, result)
        await _apply_silences(conn, spec, result, now)
        await _apply_inhibitions(conn, spec, result)
        await _apply_routes(conn, spec, result)
        await _apply_services(conn, spec, result)
        if result.changed:
            await audit.record_action(
                conn, actor=ACTOR, action="config.apply", target_type="config", target_id=source,
                details={"changes": result.changes[:200]},
            )
    return result


async def _apply_rules(conn: asyncpg.Connection, spec: Any, result: ApplyResult) -> None:
    await conn.execute("LOCK TABLE routing_rules IN EXCLUSIVE MODE")
    rows = [dict(r) for r in await conn.fetch("SELECT * FROM routing_rules ORDER BY position")]
    managed = {r["name"]: r for r in rows if r["managed_by"] == MANAGED}
    order: list[int] = []
    for rule in spec.rules:
        wanted = rule.as_row()
        row = managed.pop(rule.name, None) or _first(rows, lambda r: r["managed_by"] is None and r["name"] == rule.name)
        if row is None:
            rule_id = await conn.fetchval(
                f"""INSERT INTO routing_rules (position, {', '.join(_RULE_FIELDS)}, created_by, managed_by)
                    VALUES ({', '.join(f'${i}' for i in range(1, len(_RULE_FIELDS) + 2))}, $17, '{MANAGED}')
                    RETURNING id""",
                len(rows) + len(order) + 1, *(wanted[f] for f in _RULE_FIELDS), ACTOR,
            )
            result.changes.append(f"routing rule {rule.name!r} created")
        else:
            rule_id = row["id"]
            if row["managed_by"] != MANAGED or any(_norm(row[f]) != _norm(wanted[f]) for f in _RULE_FIELDS):
                sets = ", ".join(f"{f} = ${i}" for i, f in enumerate(_RULE_FIELDS, start=2))
                await conn.execute(
                    f"UPDATE routing_rules SET {sets}, managed_by = '{MANAGED}', updated_at = now() WHERE id = $1",
                    rule_id, *(wanted[f] for f in _RULE_FIELDS),
                )
                result.changes.append(f"routing rule {rule.name!r} {'updated' if row['managed_by'] else 'adopted'}")
        order.append(rule_id)
    for row in managed.values():
        await conn.execute("DELETE FROM routing_rules WHERE id = $1", row["id"])
        result.changes.append(f"routing rule {row['name']!r} removed")
    removed = {r["id"] for r in managed.values()}
    chosen = set(order)
    wanted_order = order + [r["id"] for r in rows if r["id"] not in chosen and r["id"] not in removed]
    before = [r["id"] for r in rows if r["id"] not in removed] + [i for i in order if i not in {r["id"] for r in rows}]
    # Positions stay 1..n: the table's UNIQUE (position) is checked at commit.
    await conn.execute(
        """UPDATE routing_rules r SET position = v.position
             FROM unnest($1::bigint[]) WITH ORDINALITY AS v(id, position)
            WHERE r.id = v.id AND r.position <> v.position""",
        wanted_order,
    )
    if wanted_order != before:
        result.changes.append("routing rules reordered: the file's rules first, in its order")


async def _apply_silences(conn: asyncpg.Connection, spec: Any, result: ApplyResult, now: datetime) -> None:
    rows = [
        dict(r) for r in await conn.fetch(
            "SELECT * FROM silences WHERE ends_at > $1 AND expired_by IS NULL ORDER BY id", now
        )
    ]
    kept: set[int] = set()
    for silence in spec.silences:
        if silence.ends_at <= now:
            continue  # over already: nothing to hold back
        key = (_norm(silence.matchers), silence.starts_at, silence.ends_at, silence.comment)
        row = _first(rows, lambda r: r["id"] not in kept and r["managed_by"] == MANAGED and _silence_key(r) == key) or _first(
            rows, lambda r: r["id"] not in kept and r["managed_by"] is None and _silence_key(r) == key
        )
        if row is None:
            await conn.execute(
                """INSERT INTO silences (matchers, starts_at, ends_at, comment, created_by, managed_by)
                   VALUES ($1, $2, $3, $4, $5, $6)""",
                silence.matchers, silence.starts_at, silence.ends_at, silence.comment, silence.created_by, MANAGED,
            )
            result.changes.append(f"silence {_matchers_text(silence.matchers)} created")
            continue
        kept.add(row["id"])
        if row["managed_by"] is None:
            await conn.execute("UPDATE silences SET managed_by = $2 WHERE id = $1", row["id"], MANAGED)
            result.changes.append(f"silence {row['id']} adopted")
    for row in rows:
        if row["managed_by"] == MANAGED and row["id"] not in kept:
            await conn.execute(
                """UPDATE silences SET ends_at = $2, expired_by = $3, starts_at = least(starts_at, $2::timestamptz - interval '1 microsecond')
                    WHERE id = $1""",
                row["id"], now, ACTOR,
            )
            result.changes.append(f"silence {row['id']} expired")


async def _apply_inhibitions(conn: asyncpg.Connection, spec: Any, result: ApplyResult) -> None:
    rows = [dict(r) for r in await conn.fetch("SELECT * FROM inhibition_rules ORDER BY id")]
    managed = {r["name"]: r for r in rows if r["managed_by"] == MANAGED}
    for rule in spec.inhibitions:
        wanted = (
            [m.to_json() for m in rule.source_matchers], [m.to_json() for m in rule.target_matchers], list(rule.equal)
        )
        row = managed.pop(rule.name, None) or _first(rows, lambda r: r["managed_by"] is None and r["name"] == rule.name)
        if row is None:
            await conn.execute(
                """INSERT INTO inhibition_rules (name, source_matchers, target_matchers, equal, created_by, managed_by)
                   VALUES ($1, $2, $3, $4, $5, $6)""",
                rule.name, *wanted, ACTOR, MANAGED,
            )
            result.changes.append(f"inhibition rule {rule.name!r} created")
        elif row["managed_by"] != MANAGED or _norm((row["source_matchers"], row["target_matchers"], list(row["equal"]))) != _norm(wanted):
            await conn.execute(
                """UPDATE inhibition_rules SET source_matchers = $2, target_matchers = $3, equal = $4, managed_by = $5
                    WHERE id = $1""",
                row["id"], *wanted, MANAGED,
            )
            result.changes.append(f"inhibition rule {rule.name!r} {'updated' if row['managed_by'] else 'adopted'}")
    for row in managed.values():
        await conn.execute("DELETE FROM inhibition_rules WHERE id = $1", row["id"])
        result.changes.append(f"inhibition rule {row['name']!r} removed")


async def _apply_routes(conn: asyncpg.Connection, spec: Any, result: ApplyResult) -> None:
    rows = {r["event_type"]: dict(r) for r in await conn.fetch("SELECT * FROM event_routes")}
    for event_type, channel in spec.event_routes.items():
        row = rows.get(event_type)
        if row is not None and row["channel"] == channel and row["managed_by"] == MANAGED:
            continue
        await conn.execute(
            """INSERT INTO event_routes (event_type, channel, updated_by, updated_at, managed_by)
               VALUES ($1, $2, $3, now(), $4)
               ON CONFLICT (event_type) DO UPDATE SET channel = $2, updated_by = $3, updated_at = now(), managed_by = $4""",
            event_type, channel, ACTOR, MANAGED,
        )
        result.changes.append(f"event route {event_type} → {channel}")
    for event_type, row in rows.items():
        if row["managed_by"] == MANAGED and event_type not in spec.event_routes:
            await conn.execute("DELETE FROM event_routes WHERE event_type = $1", event_type)
            result.changes.append(f"event route {event_type} removed (back to the default channel)")


async def _apply_services(conn: asyncpg.Connection, spec: Any, result: ApplyResult) -> None:
    rows = [dict(r) for r in await conn.fetch("SELECT * FROM deploy_services ORDER BY id")]
    managed = {r["name"].lower(): r for r in rows if r["managed_by"] == MANAGED}
    for service in spec.services:
        wanted = {f: getattr(service, f) for f in _SERVICE_FIELDS}
        row = managed.pop(service.name.lower(), None) or _first(
            rows, lambda r: r["managed_by"] is None and r["name"].lower() == service.name.lower()
        )
        if row is None:
            await conn.execute(
                """INSERT INTO deploy_services (name, action_type, action, default_env, requires_approval, channel,
                                                created_by, managed_by)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
                *wanted.values(), ACTOR, MANAGED,
            )
            result.changes.append(f"deploy service {service.name!r} created")
        elif row["managed_by"] != MANAGED or any(_norm(row[f]) != _norm(wanted[f]) for f in _SERVICE_FIELDS):
            sets = ", ".join(f"{f} = ${i}" for i, f in enumerate(_SERVICE_FIELDS, start=2))
            await conn.execute(
                f"UPDATE deploy_services SET {sets}, managed_by = '{MANAGED}', updated_at = now() WHERE id = $1",
                row["id"], *wanted.values(),
            )
            result.changes.append(f"deploy service {service.name!r} {'updated' if row['managed_by'] else 'adopted'}")
    for row in managed.values():
        await conn.execute("DELETE FROM deploy_services WHERE id = $1", row["id"])
        result.changes.append(f"deploy service {row['name']!r} removed")


# --- export --------------------------------------------------------------------------------------------


async def current_state(pool: asyncpg.Pool | asyncpg.Connection, *, now: datetime | None = None) -> dict[str, list[dict]]:
    """Every object a config file can hold, managed or not, as stored (silences: the ones not over yet)."""
    now = now or datetime.now(timezone.utc)
    return {
        "routing_rules": [dict(r) for r in await pool.fetch("SELECT * FROM routing_rules ORDER BY position")],
        "silences": [
            dict(r) for r in await pool.fetch(
                "SELECT * FROM silences WHERE ends_at > $1 AND expired_by IS NULL ORDER BY id", now
            )
        ],
        "inhibition_rules": [dict(r) for r in await pool.fetch("SELECT * FROM inhibition_rules ORDER BY id")],
        "event_routes": [dict(r) for r in await pool.fetch("SELECT * FROM event_routes ORDER BY event_type")],
        "deploy_services": [dict(r) for r in await pool.fetch("SELECT * FROM deploy_services ORDER BY lower(name)")],
    }


async def managed_counts(pool: asyncpg.Pool) -> dict[str, int]:
    row = await pool.fetchrow(
        """SELECT (SELECT count(*) FROM routing_rules WHERE managed_by IS NOT NULL) AS routing_rules,
                  (SELECT count(*) FROM silences WHERE managed_by IS NOT NULL AND expired_by IS NULL AND ends_at > now()) AS silences,
                  (SELECT count(*) FROM inhibition_rules WHERE managed_by IS NOT NULL) AS inhibition_rules,
                  (SELECT count(*) FROM event_routes WHERE managed_by IS NOT NULL) AS event_routes,
                  (SELECT count(*) FROM deploy_services WHERE managed_by IS NOT NULL) AS deploy_services"""
    )
    return dict(row)


# --- helpers -------------------------------------------------------------------------------------------


def _first(rows: list[dict], predicate) -> dict | None:
    return next((r for r in rows if predicate(r)), None)


def _norm(value: Any) -> Any:
    """Compare arrays as lists and jsonb as plain values, whatever the driver handed back."""
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    return value


def _silence_key(row: dict) -> tuple:
    return (_norm(row["matchers"]), row["starts_at"], row["ends_at"], row["comment"])


def _matchers_text(matchers: list[dict[str, str]]) -> str:
    return " ".join(f"{m['name']}{m['op']}{m['value']!r}" for m in matchers)

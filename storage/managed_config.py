"""SQL for configuration as code: make the database hold what a checked config file says, in one
transaction, and read today's state back for `pulser config export`.

Order inside the transaction: outbound channels, schedules, escalation policies (their steps name
both), routing rules (they name policies), then the rest; what the file dropped is removed in the
reverse order (policies, schedules, channels), after the rules that used it have changed. Names
are resolved to ids here, against the file's own objects and the unmanaged ones; a name found in
neither, or a dropped object an unmanaged one still uses, refuses the whole apply (`ApplyRefused`).

An apply touches only objects marked `managed_by = 'config'`, plus an unmanaged object with the
same name as a file entry (a deploy service, a routing or inhibition rule; for a silence the same
matchers and window), which the file adopts: exporting today's state and applying it keeps every
object, its id and its history. Managed objects the file no longer lists are removed (a silence is
expired, as the API's DELETE does). Managed routing rules come first, in the file's order; the
others follow in their own order. A no-op apply writes nothing, so applying the same file again is
free and leaves no audit entry.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import asyncpg

from storage import audit, escalation, outbound, routing_rules, schedules

MANAGED = "config"
ACTOR = "config"
_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('pulser.config', 0))"
_RULE_FIELDS = routing_rules.EDITABLE
_SERVICE_FIELDS = ("name", "action_type", "action", "default_env", "requires_approval", "channel")
_LAYER_FIELDS = schedules.LAYER_FIELDS[1:]  # without the position: a layer's place is its place in the list


class ApplyRefused(Exception):
    """The file checks, but the database as it stands cannot take it; nothing was changed.
    `problems`: (location in the file, what to do), the location as the check's (`PolicyRef.loc`);
    () for an object the file no longer lists."""

    def __init__(self, problems: list[tuple[tuple, str]]):
        self.problems = problems
        super().__init__("; ".join(message for _, message in problems))


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
    problems: list[tuple[tuple, str]] = []
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(_LOCK)  # two processes applying at once take turns
        channels, dropped_channels = await _apply_channels(conn, spec, result, problems)
        schedule_names, dropped_schedules = await _apply_schedules(conn, spec, result)
        policies, dropped_policies = await _apply_policies(conn, spec, result, problems, channels, schedule_names)
        await _apply_rules(conn, spec, result, _rule_policy_ids(spec, policies, problems))
        await _apply_silences(conn, spec, result, now)
        await _apply_inhibitions(conn, spec, result)
        await _apply_routes(conn, spec, result)
        await _apply_services(conn, spec, result)
        await _remove_policies(conn, dropped_policies, result, problems)
        await _remove_schedules(conn, dropped_schedules, result, problems)
        await _remove_channels(conn, dropped_channels, result, problems)
        if problems:
            raise ApplyRefused(problems)  # leaving the block rolls every change back
        if result.changed:
            await audit.record_action(
                conn, actor=ACTOR, action="config.apply", target_type="config", target_id=source,
                details={"changes": result.changes[:200]},
            )
    return result


async def _apply_rules(conn: asyncpg.Connection, spec: Any, result: ApplyResult, policy_ids: dict[str, int | None]) -> None:
    await conn.execute("LOCK TABLE routing_rules IN EXCLUSIVE MODE")
    rows = [dict(r) for r in await conn.fetch("SELECT * FROM routing_rules ORDER BY position")]
    managed = {r["name"]: r for r in rows if r["managed_by"] == MANAGED}
    order: list[int] = []
    for rule in spec.rules:
        wanted = {**rule.as_row(), "escalation_policy_id": policy_ids.get(rule.name)}
        row = managed.pop(rule.name, None) or _first(rows, lambda r: r["managed_by"] is None and r["name"] == rule.name)
        if row is None:
            count = len(_RULE_FIELDS)
            rule_id = await conn.fetchval(
                f"""INSERT INTO routing_rules (position, {', '.join(_RULE_FIELDS)}, created_by, managed_by)
                    VALUES ({', '.join(f'${i}' for i in range(1, count + 2))}, ${count + 2}, '{MANAGED}')
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


# --- paging: outbound channels, schedules, escalation policies -------------------------------------------


async def _apply_channels(
    conn: asyncpg.Connection, spec: Any, result: ApplyResult, problems: list
) -> tuple[dict[str, int], list[dict]]:
    """Channels as the file says; returns name → id of every channel a policy may name (the file's
    and the unmanaged ones) and the managed channels the file dropped (removed last)."""
    rows = await outbound.list_channels(conn)
    managed = {r["name"]: r for r in rows if r["managed_by"] == MANAGED}
    usable = {r["name"]: r["id"] for r in rows if r["managed_by"] is None}
    for channel in spec.channels:
        row = managed.pop(channel.name, None) or _first(rows, lambda r: r["managed_by"] is None and r["name"] == channel.name)
        if row is None:
            row = await outbound.create_channel(conn, name=channel.name, kind=channel.kind, settings=channel.settings,
                                                created_by=ACTOR, managed_by=MANAGED)
            result.changes.append(f"outbound channel {channel.name!r} created")
        elif row["kind"] != channel.kind:
            problems.append(((*channel.loc, "kind"), (
                f"Pulser's channel {channel.name!r} is a {row['kind']} channel: a channel's kind cannot change, so give "
                f"the {channel.kind} channel another name (and point the policies at it)"
            )))
        elif row["managed_by"] != MANAGED or _norm(row["settings"]) != _norm(channel.settings):
            await outbound.update_channel(conn, row["id"], name=channel.name, settings=channel.settings, managed_by=MANAGED)
            # the settings hold secrets: the change says that, never what
            result.changes.append(f"outbound channel {channel.name!r} {'updated' if row['managed_by'] else 'adopted'}")
        usable[channel.name] = row["id"]
    return usable, list(managed.values())


async def _apply_schedules(conn: asyncpg.Connection, spec: Any, result: ApplyResult) -> tuple[list[str], list[dict]]:
    """Schedules as the file says (name, zone, layers; overrides and swaps are left alone);
    returns the names an on-call step may name and the managed schedules the file dropped."""
    rows = await schedules.list_schedules(conn)
    layers = await schedules.layers_of(conn, [r["id"] for r in rows])
    managed = {r["name"].lower(): r for r in rows if r["managed_by"] == MANAGED}
    usable = [r["name"] for r in rows if r["managed_by"] is None]
    for schedule in spec.schedules:
        wanted = [layer.as_row() for layer in schedule.layers]
        row = managed.pop(schedule.name.lower(), None) or _first(
            rows, lambda r: r["managed_by"] is None and r["name"].lower() == schedule.name.lower()
        )
        if row is None:
            schedule_id = await conn.fetchval(
                """INSERT INTO oncall_schedules (name, time_zone, feed_token, created_by, managed_by)
                   VALUES ($1, $2, $3, $4, $5) RETURNING id""",
                schedule.name, schedule.time_zone, secrets.token_urlsafe(24), ACTOR, MANAGED,
            )
            await schedules.replace_layers(conn, schedule_id, wanted)
            result.changes.append(f"schedule {schedule.name!r} created")
        else:
            same_layers = _layer_rows(layers[row["id"]]) == _layer_rows(wanted)
            if row["managed_by"] != MANAGED or (row["name"], row["time_zone"]) != (schedule.name, schedule.time_zone) or not same_layers:
                await conn.execute(
                    """UPDATE oncall_schedules SET name = $2, time_zone = $3, managed_by = $4, updated_at = now()
                        WHERE id = $1""",
                    row["id"], schedule.name, schedule.time_zone, MANAGED,
                )
                if not same_layers:
                    await schedules.replace_layers(conn, row["id"], wanted)
                result.changes.append(f"schedule {schedule.name!r} {'updated' if row['managed_by'] else 'adopted'}")
        usable.append(schedule.name)
    return usable, list(managed.values())


async def _apply_policies(
    conn: asyncpg.Connection, spec: Any, result: ApplyResult, problems: list, channels: dict[str, int],
    schedule_names: list[str],
) -> tuple[dict[str, int], list[dict]]:
    """Policies as the file says, their steps' channel and schedule names resolved; returns name →
    id of every policy a rule may name and the managed policies the file dropped."""
    rows = await escalation.list_policies(conn)
    managed = {r["name"]: r for r in rows if r["managed_by"] == MANAGED}
    usable = {r["name"]: r["id"] for r in rows if r["managed_by"] is None}
    known_schedules = {name.lower() for name in schedule_names}
    for policy in spec.policies:
        steps = []
        for n, step in enumerate(policy.steps):
            step = {f: step.get(f) for f in escalation.STEP_FIELDS} | {"channel_name": step.get("channel_name")}
            if step["kind"] == "outbound":
                step["channel_id"] = channels.get(step["channel_name"])
                if step["channel_id"] is None:
                    problems.append(((*policy.loc, "steps", n, "channel"), _unknown(
                        "outbound channel", step["channel_name"], channels, "outbound_channels")))
            elif step["kind"] == "oncall" and step["target"].lower() not in known_schedules:
                problems.append(((*policy.loc, "steps", n, "target"), _unknown(
                    "schedule", step["target"], schedule_names, "schedules")))
            steps.append({f: step[f] for f in escalation.STEP_FIELDS})
        row = managed.pop(policy.name, None) or _first(rows, lambda r: r["managed_by"] is None and r["name"] == policy.name)
        if any(s["kind"] == "outbound" and s["channel_id"] is None for s in steps):
            usable[policy.name] = row["id"] if row else None
            continue
        if row is None:
            row = await escalation.create_policy(conn, name=policy.name, repeat=policy.repeat, steps=steps,
                                                 created_by=ACTOR, managed_by=MANAGED)
            result.changes.append(f"escalation policy {policy.name!r} created")
        elif row["repeat"] != policy.repeat or _step_rows(row["steps"]) != _step_rows(steps):
            await escalation.replace_policy(conn, row["id"], name=policy.name, repeat=policy.repeat, steps=steps,
                                            managed_by=MANAGED)
            result.changes.append(f"escalation policy {policy.name!r} {'updated' if row['managed_by'] else 'adopted'}")
        elif row["managed_by"] != MANAGED:  # only adopted: its steps (and their ids) stay as they are
            await conn.execute("UPDATE escalation_policies SET managed_by = $2, updated_at = now() WHERE id = $1",
                               row["id"], MANAGED)
            result.changes.append(f"escalation policy {policy.name!r} adopted")
        usable[policy.name] = row["id"]
    return usable, list(managed.values())


def _rule_policy_ids(spec: Any, policies: dict[str, int | None], problems: list) -> dict[str, int | None]:
    """Rule name → the id of the policy it names (None: it names none)."""
    ids: dict[str, int | None] = {}
    for rule_name, ref in spec.rule_policies.items():
        if ref.name in policies:
            ids[rule_name] = policies[ref.name]
        else:
            problems.append((ref.loc, _unknown("escalation policy", ref.name, policies, "escalation_policies")))
    return ids


async def _remove_policies(conn: asyncpg.Connection, dropped: list[dict], result: ApplyResult, problems: list) -> None:
    for row in dropped:
        users = await escalation.rules_using_policy(conn, row["id"])  # the file's rules no longer do: these are not its
        if users:
            problems.append(((), (
                f"escalation policy {row['name']!r} is no longer in the file, but routing rule(s) {_names(users)} made in "
                "Slack or the API use it: point them at another policy first, or keep the policy in the file"
            )))
            continue
        await escalation.delete_policy(conn, row["id"])
        result.changes.append(f"escalation policy {row['name']!r} removed")


async def _remove_schedules(conn: asyncpg.Connection, dropped: list[dict], result: ApplyResult, problems: list) -> None:
    for row in dropped:
        users = [r["name"] for r in await conn.fetch(
            """SELECT DISTINCT p.name FROM escalation_steps s JOIN escalation_policies p ON p.id = s.policy_id
                WHERE s.kind = 'oncall' AND lower(s.target) = lower($1) ORDER BY p.name""",
            row["name"],
        )]
        if users:
            problems.append(((), (
                f"schedule {row['name']!r} is no longer in the file, but escalation policy(ies) {_names(users)} made in "
                "Slack or the API page its on-call: change them first, or keep the schedule in the file"
            )))
            continue
        await schedules.delete_schedule(conn, row["id"])
        result.changes.append(f"schedule {row['name']!r} removed")


async def _remove_channels(conn: asyncpg.Connection, dropped: list[dict], result: ApplyResult, problems: list) -> None:
    for row in dropped:
        users = await outbound.policies_using_channel(conn, row["id"])
        if users:
            problems.append(((), (
                f"outbound channel {row['name']!r} is no longer in the file, but escalation policy(ies) {_names(users)} "
                "made in Slack or the API send to it: change them first, or keep the channel in the file"
            )))
            continue
        await outbound.delete_channel(conn, row["id"])
        result.changes.append(f"outbound channel {row['name']!r} removed")


def _unknown(what: str, name: str, known: Any, section: str) -> str:
    listed = ", ".join(sorted(str(k) for k in known)) or "none yet"
    return f"no {what} is called {name!r}: define it under {section}, or name one Pulser has (known: {listed})"


def _names(names: list[str]) -> str:
    return ", ".join(repr(n) for n in names)


def _layer_rows(layers: list[dict]) -> list[dict]:
    return [{f: _norm(layer.get(f)) for f in _LAYER_FIELDS} for layer in layers]


def _step_rows(steps: list[dict]) -> list[dict]:
    return [{f: step.get(f) for f in escalation.STEP_FIELDS} for step in steps]


# --- export --------------------------------------------------------------------------------------------


async def current_state(pool: asyncpg.Pool | asyncpg.Connection, *, now: datetime | None = None) -> dict[str, list[dict]]:
    """Every object a config file can hold, managed or not, as stored (silences: the ones not over
    yet; schedules with their layers, policies with their steps)."""
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
        # settings with their secrets: export writes ${VARIABLES} in their place
        "outbound_channels": await outbound.list_channels(pool),
        "schedules": await _schedules_with_layers(pool),
        "escalation_policies": await escalation.list_policies(pool),
    }


async def _schedules_with_layers(conn: asyncpg.Pool | asyncpg.Connection) -> list[dict]:
    rows = await schedules.list_schedules(conn)
    layers = await schedules.layers_of(conn, [r["id"] for r in rows])
    return [{**row, "layers": layers[row["id"]]} for row in rows]


async def known_names(conn: asyncpg.Pool | asyncpg.Connection) -> dict[str, frozenset[str]]:
    """Names of the objects a file's entries may refer to without defining them: the channels,
    schedules and policies made in Slack or the API (the managed ones go when the file drops them)."""
    return {
        "channels": frozenset(r["name"] for r in await conn.fetch("SELECT name FROM outbound_channels WHERE managed_by IS NULL")),
        "schedules": frozenset(r["name"] for r in await conn.fetch("SELECT name FROM oncall_schedules WHERE managed_by IS NULL")),
        "policies": frozenset(r["name"] for r in await conn.fetch("SELECT name FROM escalation_policies WHERE managed_by IS NULL")),
    }


async def managed_counts(pool: asyncpg.Pool) -> dict[str, int]:
    row = await pool.fetchrow(
        """SELECT (SELECT count(*) FROM routing_rules WHERE managed_by IS NOT NULL) AS routing_rules,
                  (SELECT count(*) FROM silences WHERE managed_by IS NOT NULL AND expired_by IS NULL AND ends_at > now()) AS silences,
                  (SELECT count(*) FROM inhibition_rules WHERE managed_by IS NOT NULL) AS inhibition_rules,
                  (SELECT count(*) FROM event_routes WHERE managed_by IS NOT NULL) AS event_routes,
                  (SELECT count(*) FROM deploy_services WHERE managed_by IS NOT NULL) AS deploy_services,
                  (SELECT count(*) FROM outbound_channels WHERE managed_by IS NOT NULL) AS outbound_channels,
                  (SELECT count(*) FROM oncall_schedules WHERE managed_by IS NOT NULL) AS schedules,
                  (SELECT count(*) FROM escalation_policies WHERE managed_by IS NOT NULL) AS escalation_policies"""
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

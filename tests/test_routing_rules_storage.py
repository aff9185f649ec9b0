"""Routing rule storage on a real Postgres: order kept 1..n through creates, moves and deletes."""

from __future__ import annotations

import asyncio

from alerts.routing import RoutingRule, validate_rule
from storage import routing_rules as store


def fields(name: str, **data) -> dict:
    return validate_rule({"name": name, "channel": "#api-alerts", **data}).as_row()


async def add(pool, *names: str) -> list[dict]:
    return [await store.create_rule(pool, fields(name), created_by="U0ADA") for name in names]


async def order(pool) -> list[tuple[int, str]]:
    return [(r["position"], r["name"]) for r in await store.list_rules(pool)]


async def test_new_rules_are_appended_in_order(pool):
    await add(pool, "first", "second", "third")
    assert await order(pool) == [(1, "first"), (2, "second"), (3, "third")]


async def test_every_column_round_trips(pool):
    spec = validate_rule({
        "name": "api", "channel": "#api-alerts", "envs": "prod", "min_severity": "high", "services": "api, web",
        "sources": "sentry", "tags": "team=payments", "continue_matching": True, "mention": "@here",
        "mention_min_severity": "critical", "escalate_after_minutes": 15, "escalate_to": "U0LEAD",
        "escalation_levels": 3, "runbook_url": "https://wiki.example.com/api", "auto_close_minutes": 60,
    })
    created = await store.create_rule(pool, spec.as_row(), created_by="U0ADA")
    rule = RoutingRule.from_row(await store.get_rule(pool, created["id"]))
    assert rule.spec == spec
    assert (rule.envs, rule.services, rule.sources, rule.tags) == (("production",), ("api", "web"), ("sentry",), {"team": "payments"})
    assert (rule.escalate_after_minutes, rule.escalate_to, rule.escalation_levels, rule.created_by) == (15, "U0LEAD", 3, "U0ADA")
    assert rule.created_at is not None and rule.created_at.utcoffset().total_seconds() == 0


async def test_a_rule_created_at_a_position_pushes_the_others_down(pool):
    await add(pool, "first", "second")
    await store.create_rule(pool, fields("urgent"), created_by=None, position=1)
    assert await order(pool) == [(1, "urgent"), (2, "first"), (3, "second")]


async def test_a_position_past_the_end_appends(pool):
    await add(pool, "first")
    await store.create_rule(pool, {**fields("last"), "position": 99}, created_by=None)
    assert await order(pool) == [(1, "first"), (2, "last")]


async def test_an_update_changes_the_rule_but_not_its_place(pool):
    first, second = await add(pool, "first", "second")
    updated = await store.update_rule(pool, second["id"], fields("renamed", services="billing"))
    assert (updated["name"], updated["services"], updated["position"]) == ("renamed", ["billing"], 2)
    assert updated["updated_at"] >= second["updated_at"]


async def test_an_update_of_a_missing_rule_is_none(pool):
    assert await store.update_rule(pool, 12345, fields("ghost")) is None


async def test_a_delete_closes_the_gap(pool):
    _, middle, _ = await add(pool, "first", "middle", "last")
    assert await store.delete_rule(pool, middle["id"]) is True
    assert await order(pool) == [(1, "first"), (2, "last")]
    assert await store.delete_rule(pool, middle["id"]) is False


async def test_moving_up_and_down_shifts_the_rules_in_between(pool):
    a, b, c, d = await add(pool, "a", "b", "c", "d")
    moved = await store.move_rule(pool, d["id"], 2)
    assert moved["position"] == 2
    assert await order(pool) == [(1, "a"), (2, "d"), (3, "b"), (4, "c")]
    await store.move_rule(pool, a["id"], 3)
    assert await order(pool) == [(1, "d"), (2, "b"), (3, "a"), (4, "c")]


async def test_a_move_beyond_either_end_is_clamped(pool):
    a, b, c = await add(pool, "a", "b", "c")
    await store.move_rule(pool, a["id"], 50)
    assert await order(pool) == [(1, "b"), (2, "c"), (3, "a")]
    await store.move_rule(pool, a["id"], -4)
    assert await order(pool) == [(1, "a"), (2, "b"), (3, "c")]


async def test_moving_a_missing_rule_is_none(pool):
    assert await store.move_rule(pool, 12345, 1) is None


async def test_concurrent_creates_and_moves_keep_positions_one_to_n(pool):
    rules = await add(pool, *[f"r{i}" for i in range(5)])
    await asyncio.gather(
        *[store.create_rule(pool, fields(f"new{i}"), created_by=None, position=1 + i % 3) for i in range(5)],
        *[store.move_rule(pool, r["id"], 5 - i) for i, r in enumerate(rules)],
    )
    assert [p for p, _ in await order(pool)] == list(range(1, 11))


async def test_list_rules_works_on_a_connection_inside_a_transaction(pool):
    await add(pool, "first")
    async with pool.acquire() as conn, conn.transaction():
        assert [r["name"] for r in await store.list_rules(conn)] == ["first"]

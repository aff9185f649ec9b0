"""The outbound outbox on a real Postgres against the stand-ins: exactly once across processes,
takeover of a dead claimer's work, Retry-After, refs kept for later sends, test pages."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from alerts.escalation import admin
from alerts.outbound.dispatch import OutboundDispatcher
from storage import outbound, workers
from tests.outbound_standins import OutboundStandins


@pytest.fixture
async def hook(pool, standins) -> int:
    channel = await admin.save_channel(
        pool, {"name": "receiver", "kind": "webhook", "settings": {"url": standins.webhook_url(), "signing_secret": standins.webhook_secret}},
        actor="test",
    )
    return channel["id"]


async def queue_tests(pool, channel_id: int, n: int) -> list[int]:
    return [await admin.send_test(pool, channel_id, actor="test") for _ in range(n)]


async def drain(*dispatchers: OutboundDispatcher, now: datetime | None = None) -> None:
    while sum(await asyncio.gather(*(d.deliver_due(now=now) for d in dispatchers))):
        pass


async def test_two_processes_deliver_each_page_exactly_once(pool, standins, hook):
    ids = await queue_tests(pool, hook, 40)
    first, second = OutboundDispatcher(pool, worker="a"), OutboundDispatcher(pool, worker="b")
    try:
        await drain(first, second)
    finally:
        await first.stop()
        await second.stop()
    assert len(standins.received("webhook")) == 40
    assert {(await outbound.get_delivery(pool, i))["status"] for i in ids} == {"delivered"}


async def test_a_page_claimed_by_a_process_that_died_is_taken_over_at_once(pool, standins, hook):
    [delivery_id] = await queue_tests(pool, hook, 1)
    await workers.beat(pool, "dead")
    [claimed] = await outbound.claim_due(pool, now=datetime.now(timezone.utc), worker="dead", lease=timedelta(minutes=5))
    await pool.execute("UPDATE pulser_workers SET seen_at = now() - interval '1 minute' WHERE name = 'dead'")
    survivor = OutboundDispatcher(pool, worker="alive")
    try:
        await drain(survivor)
    finally:
        await survivor.stop()
    assert claimed["id"] == delivery_id and len(standins.received("webhook")) == 1
    assert (await outbound.get_delivery(pool, delivery_id))["status"] == "delivered"


async def test_a_page_claimed_by_a_live_process_waits_for_its_lease(pool, standins, hook):
    await queue_tests(pool, hook, 1)
    await workers.beat(pool, "busy")
    await outbound.claim_due(pool, now=datetime.now(timezone.utc), worker="busy", lease=timedelta(minutes=5))
    other = OutboundDispatcher(pool, worker="other")
    try:
        assert await other.deliver_due() == 0
    finally:
        await other.stop()
    assert standins.received("webhook") == []


async def test_a_429_is_tried_again_after_its_retry_after(pool, standins, hook):
    [delivery_id] = await queue_tests(pool, hook, 1)
    standins.fail_next("webhook", 429, retry_after=30)
    dispatcher = OutboundDispatcher(pool, worker="a")
    try:
        await dispatcher.deliver_due()
        waiting = await outbound.get_delivery(pool, delivery_id)
        assert waiting["status"] == "pending" and "429" in waiting["last_error"]
        assert timedelta(seconds=25) < waiting["next_attempt_at"] - datetime.now(timezone.utc) <= timedelta(seconds=30)
        assert await dispatcher.deliver_due() == 0
        await dispatcher.deliver_due(now=waiting["next_attempt_at"])
    finally:
        await dispatcher.stop()
    assert (await outbound.get_delivery(pool, delivery_id))["status"] == "delivered"


async def test_a_page_to_a_deleted_channel_fails_and_says_so(pool, standins, hook):
    [delivery_id] = await queue_tests(pool, hook, 1)
    claimed = await outbound.claim_due(pool, now=datetime.now(timezone.utc), worker="a", lease=timedelta(seconds=1))
    await pool.execute("UPDATE outbound_deliveries SET channel_id = NULL, claimed_until = NULL WHERE id = $1", claimed[0]["id"])
    dispatcher = OutboundDispatcher(pool, worker="a")
    try:
        await dispatcher.deliver_due()
    finally:
        await dispatcher.stop()
    failed = await outbound.get_delivery(pool, delivery_id)
    assert failed["status"] == "failed" and "deleted" in failed["last_error"]


async def test_secrets_are_never_shown_back(pool, hook):
    shown = admin.channel_json(await outbound.get_channel(pool, hook))
    assert OutboundStandins.webhook_secret not in str(shown) and shown["settings"]["signing_secret"] == "(set)"


async def test_an_edit_that_leaves_a_secret_out_keeps_it(pool, standins, hook):
    await admin.save_channel(pool, {"name": "renamed", "settings": {"url": standins.webhook_url("other")}},
                             actor="test", channel_id=hook)
    stored = await outbound.get_channel(pool, hook)
    assert stored["name"] == "renamed" and stored["settings"]["signing_secret"] == OutboundStandins.webhook_secret


def test_the_backoff_doubles_from_its_base_up_to_its_cap_with_some_jitter():
    from alerts.outbound.retry import backoff

    base, cap = timedelta(seconds=2), timedelta(minutes=5)
    for attempts, expected in ((1, 2), (2, 4), (3, 8), (9, 300), (40, 300)):
        waits = [backoff(attempts, base=base, cap=cap).total_seconds() for _ in range(50)]
        assert all(0.8 * expected <= w <= 1.2 * expected for w in waits), (attempts, min(waits), max(waits))
        assert len(set(waits)) > 1  # rows that failed together do not come back together

"""storage.silences against a real Postgres: silences' windows, expiry, listing, inhibition rules."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import asyncpg
import pytest

from alerts.matchers import active_silence, inhibition_lookup, inhibits
from storage import silences as store

NOW = datetime.now(timezone.utc).replace(microsecond=0)
STAGING = [{"name": "env", "op": "=", "value": "staging"}]


async def silence(pool, *, starts=-10, ends=60, matchers=STAGING, comment="", by="U0ADA") -> dict:
    """A silence from `starts` to `ends` minutes after NOW."""
    return await store.create_silence(
        pool, matchers=matchers, starts_at=NOW + timedelta(minutes=starts), ends_at=NOW + timedelta(minutes=ends),
        comment=comment, created_by=by,
    )


async def test_a_created_silence_reads_back_with_its_matchers_as_a_list(pool):
    created = await silence(pool, comment="db upgrade")
    assert created["matchers"] == STAGING
    assert (created["comment"], created["created_by"], created["expired_by"]) == ("db upgrade", "U0ADA", None)
    assert created["ends_at"] == NOW + timedelta(minutes=60)
    assert await store.get_silence(pool, created["id"]) == created


async def test_without_a_start_a_silence_starts_at_the_databases_now(pool):
    created = await store.create_silence(
        pool, matchers=STAGING, starts_at=None, ends_at=NOW + timedelta(hours=1), comment="", created_by="api"
    )
    assert abs(created["starts_at"] - datetime.now(timezone.utc)) < timedelta(seconds=5)


async def test_an_unknown_silence_is_none(pool):
    assert await store.get_silence(pool, 999) is None


async def test_a_silence_must_end_after_it_starts(pool):
    with pytest.raises(asyncpg.CheckViolationError):
        await silence(pool, starts=10, ends=10)


async def test_active_silences_are_those_in_force_now_oldest_first(pool):
    first = await silence(pool)
    second = await silence(pool, starts=-1, ends=5)
    await silence(pool, starts=10, ends=60)  # pending
    await silence(pool, starts=-60, ends=-1)  # over
    assert [s["id"] for s in await store.active_silences(pool, NOW)] == [first["id"], second["id"]]


async def test_active_silences_can_be_read_inside_a_transaction(pool):
    created = await silence(pool)
    async with pool.acquire() as conn, conn.transaction():
        assert [s["id"] for s in await store.active_silences(conn, NOW)] == [created["id"]]


async def test_expiring_ends_a_silence_now_and_records_who(pool):
    created = await silence(pool)
    expired = await store.expire_silence(pool, created["id"], by="U0ADA", now=NOW)
    assert (expired["ends_at"], expired["expired_by"]) == (NOW, "U0ADA")
    assert await store.active_silences(pool, NOW) == []


async def test_expiring_twice_or_an_unknown_silence_changes_nothing(pool):
    created = await silence(pool)
    assert await store.expire_silence(pool, created["id"], by="U0ADA", now=NOW) is not None
    assert await store.expire_silence(pool, created["id"], by="U0BOB", now=NOW + timedelta(minutes=1)) is None
    assert (await store.get_silence(pool, created["id"]))["expired_by"] == "U0ADA"
    assert await store.expire_silence(pool, 999, by="U0ADA", now=NOW) is None


async def test_a_silence_that_ran_out_cannot_be_expired(pool):
    over = await silence(pool, starts=-60, ends=-1)
    assert await store.expire_silence(pool, over["id"], by="U0ADA", now=NOW) is None


async def test_expiring_a_pending_silence_means_it_never_starts(pool):
    pending = await silence(pool, starts=30, ends=90)
    await store.expire_silence(pool, pending["id"], by="U0ADA", now=NOW)
    assert await store.active_silences(pool, NOW + timedelta(minutes=45)) == []


async def test_the_list_shows_active_and_pending_soonest_ending_first(pool):
    later = await silence(pool, ends=120)
    sooner = await silence(pool, ends=30)
    pending = await silence(pool, starts=10, ends=60)
    await silence(pool, starts=-60, ends=-1)
    listed = await store.list_silences(pool, now=NOW)
    assert [s["id"] for s in listed] == [sooner["id"], pending["id"], later["id"]]


async def test_the_full_list_adds_ended_silences_after_the_live_ones(pool):
    live = await silence(pool)
    over = await silence(pool, starts=-60, ends=-30)
    expired = await silence(pool)
    await store.expire_silence(pool, expired["id"], by="U0ADA", now=NOW)
    listed = await store.list_silences(pool, now=NOW, include_expired=True)
    assert [s["id"] for s in listed] == [live["id"], expired["id"], over["id"]]


async def test_the_list_is_limited(pool):
    for _ in range(3):
        await silence(pool)
    assert len(await store.list_silences(pool, now=NOW, limit=2)) == 2


async def test_stored_silences_mute_matching_labels_through_the_domain_check(pool):
    await silence(pool)
    rows = await store.active_silences(pool, NOW)
    assert active_silence(rows, {"env": "staging", "service": "api"}, NOW) is not None
    assert active_silence(rows, {"env": "production", "service": "api"}, NOW) is None


# --- inhibition rules -----------------------------------------------------------------------------


async def rule(pool, name: str = "critical mutes the rest", equal=("service",)) -> dict:
    return await store.create_inhibition_rule(
        pool,
        name=name,
        source_matchers=[{"name": "severity", "op": "=", "value": "critical"}],
        target_matchers=[{"name": "severity", "op": "!=", "value": "critical"}],
        equal=list(equal),
        created_by="api",
    )


async def test_an_inhibition_rule_reads_back_as_stored(pool):
    created = await rule(pool, equal=("service", "env"))
    assert created["equal"] == ["service", "env"]
    assert created["source_matchers"] == [{"name": "severity", "op": "=", "value": "critical"}]
    assert await store.get_inhibition_rule(pool, created["id"]) == created


async def test_rules_are_listed_and_counted_in_creation_order(pool):
    first, second = await rule(pool, "one"), await rule(pool, "two")
    assert [r["id"] for r in await store.list_inhibition_rules(pool)] == [first["id"], second["id"]]
    assert await store.count_inhibition_rules(pool) == 2


async def test_deleting_a_rule_removes_it_once(pool):
    created = await rule(pool)
    assert await store.delete_inhibition_rule(pool, created["id"]) is True
    assert await store.delete_inhibition_rule(pool, created["id"]) is False
    assert await store.get_inhibition_rule(pool, created["id"]) is None


async def test_a_lookup_subset_finds_the_source_incident_with_a_containment_query(pool):
    """The pipeline's use, end to end: `labels @> subset` over firing incidents, then `inhibits`."""
    stored = await rule(pool)
    source_labels = {"severity": "critical", "service": "api", "alertname": "ServiceDown"}
    await pool.execute(
        """
        INSERT INTO incidents (group_key, source, service, env, fingerprint, title, labels, source_severity,
                               severity, first_seen, last_seen, spike_window_start, last_alert)
        VALUES ('k1', 'alertmanager', 'api', '', 'fp', 'down', $1, 'critical', 'critical', now(), now(), now(), '{}')
        """,
        source_labels,
    )
    target_labels = {"severity": "high", "service": "api", "alertname": "HighLatency"}
    subset = inhibition_lookup(stored, target_labels)
    found = await pool.fetch("SELECT labels FROM incidents WHERE status = 'firing' AND labels @> $1", subset)
    assert [r["labels"] for r in found] == [source_labels]
    assert inhibits(stored, found[0]["labels"], target_labels)

"""The envelope ledger, against the real Postgres."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from storage import envelopes


async def record(pool, envelope_id="E1", source="sentry", claimed_by=None, payload=None):
    return await envelopes.record_envelope(
        pool,
        source=source,
        scope="T1",
        envelope_id=envelope_id,
        kind="test",
        payload=payload if payload is not None else {"n": 1},
        claimed_by=claimed_by,
    )


async def test_a_new_envelope_is_recorded_as_received(pool):
    pk = await record(pool)
    row = await envelopes.get_envelope_by_pk(pool, pk)
    assert row.status == "received"
    assert row.payload == {"n": 1}
    assert row.attempts == 0


async def test_a_sequential_duplicate_is_not_recorded_again(pool):
    first = await record(pool)
    second = await record(pool, payload={"n": 2})
    assert first is not None and second is None
    assert await envelopes.count_envelopes(pool, source="sentry") == 1
    assert (await envelopes.get_envelope_by_pk(pool, first)).payload == {"n": 1}


async def test_concurrent_duplicates_give_exactly_one_winner(pool):
    results = await asyncio.gather(*(record(pool, envelope_id="same") for _ in range(20)))
    assert sum(r is not None for r in results) == 1
    assert await envelopes.count_envelopes(pool, source="sentry", envelope_id="same") == 1


async def test_the_same_id_from_another_source_or_scope_is_a_different_envelope(pool):
    assert await record(pool, source="sentry") is not None
    assert await record(pool, source="github") is not None
    other_scope = await envelopes.record_envelope(
        pool, source="sentry", scope="T2", envelope_id="E1", kind="test", payload={}
    )
    assert other_scope is not None


async def test_a_claimed_recording_counts_as_the_first_attempt(pool):
    pk = await record(pool, claimed_by="me")
    row = await envelopes.get_envelope_by_pk(pool, pk)
    assert row.attempts == 1 and row.claimed_by == "me"


async def test_mark_processed_sets_status_and_time(pool):
    pk = await record(pool, claimed_by="me")
    assert await envelopes.mark_processed(pool, pk) is True
    row = await envelopes.get_envelope_by_pk(pool, pk)
    assert row.status == "processed" and row.processed_at is not None and row.next_attempt_at is None


async def test_mark_failed_keeps_the_error_and_schedules_a_retry(pool):
    pk = await record(pool, claimed_by="me")
    retry_at = await envelopes.mark_failed(pool, pk, "ValueError: boom", max_attempts=5)
    row = await envelopes.get_envelope_by_pk(pool, pk)
    assert row.status == "failed" and row.last_error == "ValueError: boom"
    assert retry_at is not None and retry_at > row.received_at


async def test_a_late_failure_does_not_undo_processed(pool):
    pk = await record(pool, claimed_by="me")
    await envelopes.mark_processed(pool, pk)
    assert await envelopes.mark_failed(pool, pk, "late", max_attempts=5) is None
    assert (await envelopes.get_envelope_by_pk(pool, pk)).status == "processed"


async def test_backoff_doubles_with_each_attempt(pool):
    pk = await record(pool, claimed_by="me")
    delays = []
    for attempt in range(1, 4):
        await pool.execute("UPDATE envelopes SET attempts = $2 WHERE id = $1", pk, attempt)
        retry_at = await envelopes.mark_failed(pool, pk, "x", max_attempts=10, base_delay=timedelta(seconds=10))
        now = await pool.fetchval("SELECT now()")
        delays.append(round((retry_at - now).total_seconds()))
    assert delays == [10, 20, 40]


async def test_no_retry_is_scheduled_once_attempts_are_used_up(pool):
    pk = await record(pool, claimed_by="me")
    await pool.execute("UPDATE envelopes SET attempts = 3 WHERE id = $1", pk)
    assert await envelopes.mark_failed(pool, pk, "x", max_attempts=3) is None
    row = await envelopes.get_envelope_by_pk(pool, pk)
    assert row.status == "failed" and row.next_attempt_at is None


async def test_claim_due_takes_failed_rows_whose_backoff_passed(pool):
    pk = await record(pool, claimed_by="me")
    await envelopes.mark_failed(pool, pk, "x", max_attempts=5)
    assert await envelopes.claim_due(pool, worker="w", sources=["sentry"], limit=10, max_attempts=5) == []
    await pool.execute("UPDATE envelopes SET next_attempt_at = now() - interval '1 second' WHERE id = $1", pk)
    claimed = await envelopes.claim_due(pool, worker="w", sources=["sentry"], limit=10, max_attempts=5)
    assert [c.id for c in claimed] == [pk]
    assert claimed[0].attempts == 2 and claimed[0].status == "received" and claimed[0].claimed_by == "w"


async def test_claim_due_takes_received_rows_whose_lease_ran_out(pool):
    pk = await record(pool, claimed_by="dead-process")
    await pool.execute("UPDATE envelopes SET next_attempt_at = now() - interval '1 second' WHERE id = $1", pk)
    claimed = await envelopes.claim_due(pool, worker="w", sources=["sentry"], limit=10, max_attempts=5)
    assert [c.id for c in claimed] == [pk]


async def test_claim_due_ignores_sources_this_process_cannot_handle(pool):
    await record(pool, source="github")  # unclaimed: due at once
    assert await envelopes.claim_due(pool, worker="w", sources=["sentry"], limit=10, max_attempts=5) == []


async def test_two_workers_never_claim_the_same_row(pool):
    for i in range(30):
        await record(pool, envelope_id=f"E{i}")
    batches = await asyncio.gather(
        *(envelopes.claim_due(pool, worker=f"w{i}", sources=["sentry"], limit=10, max_attempts=5) for i in range(4))
    )
    ids = [row.id for batch in batches for row in batch]
    assert len(ids) == len(set(ids)) == 30


async def test_stuck_rows_without_attempts_left_are_abandoned_as_failed(pool):
    pk = await record(pool, claimed_by="dead-process")
    await pool.execute(
        "UPDATE envelopes SET attempts = 5, next_attempt_at = now() - interval '1 second' WHERE id = $1", pk
    )
    assert await envelopes.abandon_exhausted(pool, max_attempts=5) == 1
    row = await envelopes.get_envelope_by_pk(pool, pk)
    assert row.status == "failed" and "abandoned" in row.last_error and row.next_attempt_at is None


async def test_release_claims_makes_rows_due_now_for_another_process(pool):
    pk = await record(pool, claimed_by="me")
    assert await envelopes.release_claims(pool, "someone-else", [pk]) == 0
    assert await envelopes.release_claims(pool, "me", [pk]) == 1
    claimed = await envelopes.claim_due(pool, worker="other", sources=["sentry"], limit=10, max_attempts=5)
    assert [c.id for c in claimed] == [pk]


async def test_processed_rows_older_than_the_retention_are_deleted_and_others_kept(pool):
    old_done = await record(pool, envelope_id="old-done", claimed_by="me")
    old_failed = await record(pool, envelope_id="old-failed", claimed_by="me")
    new_done = await record(pool, envelope_id="new-done", claimed_by="me")
    for pk in (old_done, new_done):
        await envelopes.mark_processed(pool, pk)
    await envelopes.mark_failed(pool, old_failed, "x", max_attempts=5)
    await pool.execute(
        "UPDATE envelopes SET received_at = now() - interval '15 days' WHERE id = ANY($1::bigint[])", [old_done, old_failed]
    )
    assert await envelopes.delete_processed_before(pool, days=14) == 1
    remaining = await pool.fetchval("SELECT array_agg(envelope_id ORDER BY envelope_id) FROM envelopes")
    assert remaining == ["new-done", "old-failed"], "failed rows stay until someone looks"

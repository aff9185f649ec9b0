"""The retry worker: processors decide processed/failed; backoff and limits come from the ledger."""

from __future__ import annotations

from storage import envelopes
from jobs.ledger_worker import LedgerWorker


async def due_row(pool, envelope_id="E1", source="generic"):
    return await envelopes.record_envelope(
        pool, source=source, scope="", envelope_id=envelope_id, kind="test", payload={"id": envelope_id}
    )


async def make_due(pool, pk):
    await pool.execute(
        "UPDATE envelopes SET next_attempt_at = now() - interval '1 second' WHERE id = $1 AND next_attempt_at IS NOT NULL", pk
    )


async def test_a_processor_that_returns_marks_the_row_processed(pool):
    seen = []

    async def processor(row):
        seen.append(row.payload["id"])

    worker = LedgerWorker(pool, max_attempts=3)
    worker.register("generic", processor)
    pk = await due_row(pool)
    assert await worker.run_once() == 1
    assert seen == ["E1"]
    assert (await envelopes.get_envelope_by_pk(pool, pk)).status == "processed"


async def test_a_processor_that_raises_marks_the_row_failed_with_the_error(pool):
    async def processor(row):
        raise ConnectionError("slack unreachable")

    worker = LedgerWorker(pool, max_attempts=3)
    worker.register("generic", processor)
    pk = await due_row(pool)
    await worker.run_once()
    row = await envelopes.get_envelope_by_pk(pool, pk)
    assert row.status == "failed"
    assert row.last_error == "ConnectionError: slack unreachable"
    assert row.next_attempt_at is not None


async def test_a_failed_row_is_retried_until_it_succeeds(pool):
    calls = []

    async def flaky(row):
        calls.append(row.attempts)
        if len(calls) < 3:
            raise RuntimeError("not yet")

    worker = LedgerWorker(pool, max_attempts=5)
    worker.register("generic", flaky)
    pk = await due_row(pool)
    for _ in range(3):
        await worker.run_once()
        await make_due(pool, pk)
    assert calls == [1, 2, 3]
    assert (await envelopes.get_envelope_by_pk(pool, pk)).status == "processed"


async def test_the_worker_gives_up_after_max_attempts(pool):
    calls = []

    async def always_fails(row):
        calls.append(row.attempts)
        raise RuntimeError("permanent")

    worker = LedgerWorker(pool, max_attempts=2)
    worker.register("generic", always_fails)
    pk = await due_row(pool)
    for _ in range(4):
        await worker.run_once()
        await make_due(pool, pk)
    assert calls == [1, 2]
    row = await envelopes.get_envelope_by_pk(pool, pk)
    assert row.status == "failed" and row.next_attempt_at is None


async def test_rows_of_other_sources_are_left_alone(pool):
    async def processor(row):
        raise AssertionError("must not be called")

    worker = LedgerWorker(pool, max_attempts=3)
    worker.register("generic", processor)
    pk = await due_row(pool, source="github")
    assert await worker.run_once() == 0
    assert (await envelopes.get_envelope_by_pk(pool, pk)).attempts == 0


async def test_outcomes_are_reported_for_metrics(pool):
    outcomes = []

    async def processor(row):
        if row.payload["id"] == "bad":
            raise ValueError("bad")

    worker = LedgerWorker(pool, max_attempts=3, on_outcome=lambda s, o: outcomes.append((s, o)))
    worker.register("generic", processor)
    await due_row(pool, "good")
    await due_row(pool, "bad")
    await worker.run_once()
    assert sorted(outcomes) == [("generic", "failed"), ("generic", "processed")]

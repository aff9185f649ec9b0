"""The batching heartbeat writer against a real Postgres: grouping, ordering, atomicity, failures."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest

from alerts.applications import validate_application
from alerts.heartbeat_writer import HeartbeatEvent, HeartbeatRejected, HeartbeatWriter, SubmitResult, WriterStopped
from alerts.pipeline import AlertPipeline, PipelineSettings
from storage import applications
from storage.applications import Application
from storage.database import DATABASE_ERRORS
from tests.conftest import eventually


async def register(pool: asyncpg.Pool, name: str) -> Application:
    spec = validate_application({"name": name, "expected_interval": 60}, default_channel="#ops-alerts")
    return await applications.create_application(pool, spec, created_by="test")


def pipeline(pool: asyncpg.Pool, **callbacks) -> AlertPipeline:
    return AlertPipeline(pool, PipelineSettings(default_channel="#ops-alerts"), **callbacks)


def event(app_uuid: uuid.UUID, kind: str = "success", *, at: datetime | None = None, **fields) -> HeartbeatEvent:
    return HeartbeatEvent(
        uuid=app_uuid, kind=kind, exit_code=None, received_at=at or datetime.now(timezone.utc), **fields
    )


async def test_concurrent_submits_commit_in_few_batches_and_each_event_is_stored_once(pool, writer):
    apps = [await register(pool, f"app-{i}") for i in range(50)]
    events = [event(apps[i % 50].uuid, body=f"event {i}") for i in range(200)]
    results = await asyncio.gather(*(writer.submit(e) for e in events))
    assert all(r.found and r.status == "up" for r in results)
    assert writer.batches < 200
    assert writer.events_written == 200
    bodies = [r["body"] for r in await pool.fetch("SELECT body FROM heartbeats")]
    assert sorted(bodies) == sorted(f"event {i}" for i in range(200))
    per_app = await pool.fetch("SELECT app_id, count(*) AS n FROM heartbeats GROUP BY app_id")
    assert {r["n"] for r in per_app} == {4} and len(per_app) == 50


async def test_events_of_one_app_in_one_batch_apply_in_arrival_order(pool, writer):
    app = await register(pool, "ordered")
    started = datetime.now(timezone.utc)
    start, success = await asyncio.gather(
        writer.submit(event(app.uuid, "start", at=started)),
        writer.submit(event(app.uuid, "success", at=started + timedelta(milliseconds=1500))),
    )
    assert (start.status, success.status) == ("new", "up")
    durations = [r["duration_ms"] for r in await pool.fetch("SELECT duration_ms FROM heartbeats ORDER BY id")]
    assert durations == [None, 1500]
    assert (await applications.get_application(pool, app.id)).last_duration_ms == 1500


async def test_batches_in_flight_together_keep_each_apps_events_in_arrival_order(pool):
    app = await register(pool, "pipelined")
    writer = HeartbeatWriter(pool, pipeline(pool), max_batch=1, max_in_flight=2)  # every event its own batch
    await writer.start()
    started = datetime.now(timezone.utc)
    kinds = ["start", "success"] * 25
    try:
        await asyncio.gather(
            *(writer.submit(event(app.uuid, kind, at=started + timedelta(seconds=i))) for i, kind in enumerate(kinds))
        )
    finally:
        await writer.stop()
    assert writer.batches == 50
    rows = await pool.fetch("SELECT kind, duration_ms FROM heartbeats ORDER BY id")
    assert [(r["kind"], r["duration_ms"]) for r in rows] == [("start", None), ("success", 1000)] * 25
    assert (await applications.get_application(pool, app.id)).last_heartbeat == started + timedelta(seconds=49)


async def test_an_unknown_uuid_is_not_found_and_stores_nothing(pool, writer):
    result = await writer.submit(event(uuid.uuid4()))
    assert result == SubmitResult(found=False)
    assert await pool.fetchval("SELECT count(*) FROM heartbeats") == 0


async def test_a_failed_batch_fails_its_waiters_writes_nothing_and_the_writer_goes_on(pool, writer):
    app = await register(pool, "survivor")
    await pool.execute("ALTER TABLE heartbeats RENAME TO heartbeats_away")
    with pytest.raises(asyncpg.UndefinedTableError):
        await asyncio.wait_for(writer.submit(event(app.uuid)), 30)
    # The clock update that preceded the failing insert was rolled back with it.
    assert (await applications.get_application(pool, app.id)).last_heartbeat is None
    await pool.execute("ALTER TABLE heartbeats_away RENAME TO heartbeats")
    assert (await asyncio.wait_for(writer.submit(event(app.uuid)), 30)).status == "up"
    assert writer.failed_batches == 1


async def test_waiters_get_an_error_not_a_hang_when_the_pool_is_closed(pool, writer):
    app = await register(pool, "closed")
    await pool.close()
    results = await asyncio.wait_for(
        asyncio.gather(*(writer.submit(event(app.uuid)) for _ in range(5)), return_exceptions=True), 30
    )
    assert all(isinstance(r, DATABASE_ERRORS) for r in results)


async def test_one_event_the_database_refuses_does_not_fail_the_rest_of_its_batch(pool, writer):
    apps = [await register(pool, f"neighbour-{i}") for i in range(8)]
    events = [event(a.uuid, body="fine") for a in apps]
    events[3] = event(apps[3].uuid, body="NUL \x00 inside")
    results = await asyncio.gather(*(writer.submit(e) for e in events), return_exceptions=True)
    assert isinstance(results[3], HeartbeatRejected)
    assert all(isinstance(r, SubmitResult) and r.found for i, r in enumerate(results) if i != 3)
    assert await pool.fetchval("SELECT count(*) FROM heartbeats") == 7
    assert (await applications.get_application(pool, apps[3].id)).state == "new"


async def test_stop_commits_what_is_queued(pool):
    app = await register(pool, "draining")
    writer = HeartbeatWriter(pool, pipeline(pool), max_delay=0.05)
    await writer.start()
    pending = [asyncio.create_task(writer.submit(event(app.uuid))) for _ in range(10)]
    await asyncio.sleep(0)  # the submits are queued
    await writer.stop()
    assert all(task.result().found for task in pending)
    assert await pool.fetchval("SELECT count(*) FROM heartbeats") == 10


async def test_submit_after_stop_is_refused(pool):
    writer = HeartbeatWriter(pool, pipeline(pool))
    await writer.start()
    await writer.stop()
    with pytest.raises(WriterStopped):
        await writer.submit(event(uuid.uuid4()))


async def test_callbacks_report_batch_sizes_and_a_failure_wakes_the_incident_notifier(pool):
    app = await register(pool, "watched")
    sizes: list[int] = []
    woken: list[bool] = []
    writer = HeartbeatWriter(pool, pipeline(pool, on_change=lambda: woken.append(True)), on_batch=sizes.append)
    await writer.start()
    try:
        await writer.submit(event(app.uuid))
        assert woken == []
        await writer.submit(event(app.uuid, "fail"))
    finally:
        await writer.stop()
    assert sum(sizes) == 2
    assert woken == [True]
    assert writer.alerts_ingested == 1
    [incident] = await pool.fetch("SELECT source, title, status FROM incidents")
    assert dict(incident) == {"source": "heartbeat", "title": "watched reported failure", "status": "firing"}


async def test_a_failure_and_its_incident_commit_together_or_not_at_all(pool):
    app = await register(pool, "atomic")
    writer = HeartbeatWriter(pool, pipeline(pool))
    await writer.start()
    try:
        await writer.submit(event(app.uuid))
        # The incident cannot be written: the whole batch (the app going down included) is undone.
        await pool.execute("ALTER TABLE incidents ADD CONSTRAINT no_heartbeats CHECK (source <> 'heartbeat')")
        with pytest.raises(asyncpg.CheckViolationError):
            await writer.submit(event(app.uuid, "fail"))
    finally:
        await writer.stop()
    assert (await applications.get_application(pool, app.id)).state == "up"
    assert await pool.fetchval("SELECT count(*) FROM heartbeats") == 1


async def test_a_heartbeat_that_moves_a_deadline_notifies_the_watchers(pool, database_url, writer):
    app = await register(pool, "deadline")
    received: list[str] = []
    listener = await asyncpg.connect(database_url)
    try:
        await listener.add_listener(applications.DEADLINE_CHANNEL, lambda *args: received.append(args[3]))
        await writer.submit(event(app.uuid))
        deadline = (await applications.get_application(pool, app.id)).next_deadline
        await eventually(lambda: received, timeout=30)
    finally:
        await listener.close()
    assert received == [f"{deadline.timestamp():.3f}"]

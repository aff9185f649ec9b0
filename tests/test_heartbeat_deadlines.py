"""Every deadline is detected at once, however the app got it: a first heartbeat, a recovery after
any number of outages, a resume after a pause, an edit of its timing.

The real batching writer and the real watcher run on a real Postgres. The watcher's longest sleep
is 300 s, so an app detected within the ceilings below was detected because it was woken for that
deadline, not because it happened to poll. Heartbeats are submitted with a receipt time in the
past (the writer takes the server's receipt time as given), so a 10 s interval ends ~1 s from now.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import AsyncIterator

import asyncpg
import pytest

from alerts.applications import clock_after_edit, validate_application
from alerts.heartbeat_writer import HeartbeatEvent, HeartbeatWriter
from alerts.pipeline import AlertPipeline, PipelineSettings
from jobs.heartbeat_watcher import HeartbeatWatcher
from storage import applications
from storage.applications import Application
from storage.database import connect_listener
from tests.conftest import eventually

INTERVAL = 10  # the shortest interval an app may have
LONGEST_SLEEP = 300.0
# Far above "at once" on a loaded machine, far below the watcher's own poll.
DETECTED_WITHIN = 30.0


@pytest.fixture
async def watcher(pool: asyncpg.Pool, database_url: str) -> AsyncIterator[HeartbeatWatcher]:
    pipeline = AlertPipeline(pool, PipelineSettings(default_channel="#ops-alerts"))
    watcher = HeartbeatWatcher(pool, pipeline, max_sleep=LONGEST_SLEEP, listen=lambda: connect_listener(database_url))
    await watcher.start()
    await eventually(lambda: watcher.last_run is not None, timeout=30)
    yield watcher
    await watcher.stop()


async def register(pool: asyncpg.Pool, name: str) -> Application:
    spec = validate_application({"name": name, "expected_interval": INTERVAL, "grace_period": 0}, default_channel="#ops-alerts")
    return await applications.create_application(pool, spec, created_by="test")


async def beat(writer: HeartbeatWriter, app: Application, *, seconds_ago: float, kind: str = "success") -> None:
    received = datetime.now(timezone.utc) - timedelta(seconds=seconds_ago)
    await writer.submit(HeartbeatEvent(uuid=app.uuid, kind=kind, exit_code=None, received_at=received))


async def state_of(pool: asyncpg.Pool, app: Application) -> str:
    return (await applications.get_application(pool, app.id)).state


async def wait_for_state(pool: asyncpg.Pool, app: Application, state: str) -> None:
    async def reached():
        return await state_of(pool, app) == state

    await eventually(reached, timeout=DETECTED_WITHIN)


async def missed(pool: asyncpg.Pool, app: Application) -> int:
    """Missed-heartbeat alerts the app's incidents received (a miss after a recovery reopens the
    same incident: each miss is one firing occurrence of it)."""
    return await pool.fetchval(
        """
        SELECT count(*) FROM alert_occurrences o JOIN incidents i ON i.id = o.incident_id
         WHERE i.labels->>'heartbeat.app_id' = $1 AND o.status = 'firing' AND o.alert->'tags'->>'alertname' = 'HeartbeatMissed'
        """,
        str(app.id),
    )


async def test_a_first_deadline_is_detected_at_once(pool, writer, watcher):
    app = await register(pool, "first")
    await beat(writer, app, seconds_ago=INTERVAL - 1)
    await wait_for_state(pool, app, "down")
    assert await missed(pool, app) == 1


async def test_the_deadline_after_a_recovery_is_detected_at_once(pool, writer, watcher):
    app = await register(pool, "recovered-once")
    await beat(writer, app, seconds_ago=INTERVAL + 5)  # already overdue: down at the first look
    await wait_for_state(pool, app, "down")

    await beat(writer, app, seconds_ago=INTERVAL - 1)  # recovers; the next deadline is ~1 s away
    assert await state_of(pool, app) == "up"
    await wait_for_state(pool, app, "down")
    assert await missed(pool, app) == 2


async def test_every_deadline_after_many_recoveries_is_detected_at_once(pool, writer, watcher):
    app = await register(pool, "flapping")
    for outage in range(1, 4):
        await beat(writer, app, seconds_ago=INTERVAL - 1)
        await wait_for_state(pool, app, "down")
        assert await missed(pool, app) == outage


async def test_the_deadline_after_a_reported_failure_and_recovery_is_detected_at_once(pool, writer, watcher):
    app = await register(pool, "failed-then-ok")
    await beat(writer, app, seconds_ago=0, kind="fail")
    assert await state_of(pool, app) == "down"
    await beat(writer, app, seconds_ago=INTERVAL - 1)
    await wait_for_state(pool, app, "down")
    assert await missed(pool, app) == 1


async def test_the_deadline_after_a_pause_and_resume_is_detected_at_once(pool, writer, watcher):
    app = await register(pool, "paused")
    await beat(writer, app, seconds_ago=INTERVAL + 5)
    await wait_for_state(pool, app, "down")
    await applications.set_active(pool, app.id, False)
    await applications.set_active(pool, app.id, True)
    await beat(writer, app, seconds_ago=INTERVAL - 1)
    await wait_for_state(pool, app, "down")
    assert await missed(pool, app) == 2


async def test_an_edit_that_shortens_the_interval_is_detected_at_once(pool, writer, watcher):
    app = await register(pool, "edited")
    spec = validate_application({"name": "edited", "expected_interval": 3600, "grace_period": 0}, default_channel="#ops-alerts")
    app = await applications.update_application(pool, app.id, spec, clock_after_edit=clock_after_edit)
    await beat(writer, app, seconds_ago=INTERVAL - 1)  # due in an hour
    shorter = validate_application({"name": "edited", "expected_interval": INTERVAL, "grace_period": 0}, default_channel="#ops-alerts")
    await applications.update_application(pool, app.id, shorter, clock_after_edit=clock_after_edit)  # due ~1 s from now
    await wait_for_state(pool, app, "down")
    assert await missed(pool, app) == 1

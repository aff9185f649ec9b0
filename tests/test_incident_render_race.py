"""A message must always converge to its incident's latest state, whatever the interleaving of a
render finishing and a repeat committing. Driven step by step on a real Postgres: the repeat's
transaction is held open while the notifier records its render, so the race is hit every run."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from alerts.normalized import NormalizedAlert
from alerts.pipeline import AlertPipeline, PipelineSettings
from storage import incidents
from tests.conftest import eventually

LEASE = timedelta(seconds=60)
DEBOUNCE = timedelta(seconds=2)


def alert() -> NormalizedAlert:
    return NormalizedAlert(
        source="generic", source_event_id="e1", service="payments", env="production", severity="high",
        fingerprint="p1", title="Payments failing", description="", occurred_at=datetime.now(timezone.utc),
    )


async def waiting_on_a_lock(pool) -> bool:
    return bool(
        await pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
    )


async def a_message_being_rendered(pool):
    """An incident's first message, claimed by the notifier, and the incident as it renders it."""
    opened = await AlertPipeline(pool, PipelineSettings(default_channel="#ops-alerts")).ingest(alert())
    now = datetime.now(timezone.utc)
    [message] = await incidents.claim_due_messages(pool, now=now, limit=10, lease=LEASE)
    rendered = (await incidents.get_incidents(pool, [opened.incident_id]))[opened.incident_id]
    return opened, message, rendered, now


async def test_a_repeat_committed_while_a_render_is_recorded_is_rendered_next(pool):
    opened, message, rendered, now = await a_message_being_rendered(pool)

    # A repeat, as the pipeline writes it: the count and version, then the message's schedule
    # (which keeps the in-flight claim's time), in one transaction not yet committed.
    async with pool.acquire() as repeat:
        transaction = repeat.transaction()
        await transaction.start()
        await incidents.update_incident(repeat, opened.incident_id, {"count": 2}, now=now)
        await incidents.schedule_render(repeat, opened.incident_id, now=now, debounce=DEBOUNCE)

        recording = asyncio.create_task(
            incidents.message_rendered(
                pool, message["id"], version=rendered["version"], claimed_until=now + LEASE,
                channel="C1", ts="1.0", now=now, debounce=DEBOUNCE,
            )
        )
        await eventually(lambda: waiting_on_a_lock(pool), timeout=30)
        await transaction.commit()
        await asyncio.wait_for(recording, timeout=30)

    after = await incidents.get_message(pool, message["id"])
    assert after["slack_ts"] == "1.0"
    assert after["rendered_version"] == rendered["version"]
    assert after["render_due_at"] is not None, "the repeat's count would never reach Slack"
    assert after["render_due_at"] <= now + DEBOUNCE


async def test_a_render_recorded_with_no_change_since_clears_the_schedule(pool):
    opened, message, rendered, now = await a_message_being_rendered(pool)
    await incidents.message_rendered(
        pool, message["id"], version=rendered["version"], claimed_until=now + LEASE,
        channel="C1", ts="1.0", now=now, debounce=DEBOUNCE,
    )
    assert (await incidents.get_message(pool, message["id"]))["render_due_at"] is None

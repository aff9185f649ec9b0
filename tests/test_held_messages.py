"""Messages Slack refused for their channel wait for an invitation: releasing them on
`member_joined_channel` makes only those due, never one a notifier is posting right now."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from alerts.outbound.slack import CHANNEL_ERRORS
from alerts.normalized import NormalizedAlert
from alerts.pipeline import AlertPipeline, PipelineSettings
from storage import incidents

LEASE = timedelta(seconds=60)
ERRORS = sorted(CHANNEL_ERRORS)


async def claimed_message(pool) -> tuple[dict, datetime]:
    alert = NormalizedAlert(
        source="generic", source_event_id="e1", service="payments", env="production", severity="high",
        fingerprint="p1", title="Payments failing", description="", occurred_at=datetime.now(timezone.utc),
    )
    await AlertPipeline(pool, PipelineSettings(default_channel="C0PAY")).ingest(alert)
    now = datetime.now(timezone.utc)
    [message] = await incidents.claim_due_messages(pool, now=now, limit=10, lease=LEASE)
    return message, now


async def test_a_message_held_for_its_channel_is_due_at_once_when_pulser_is_invited(pool):
    message, now = await claimed_message(pool)
    await incidents.message_retry(
        pool, message["id"], error="slack: not_in_channel", retry_at=now + timedelta(minutes=5), count_attempt=False
    )
    assert await incidents.release_held_messages(pool, "C0PAY", ERRORS, now=now, lease=LEASE) == 1
    assert (await incidents.get_message(pool, message["id"]))["render_due_at"] == now


async def test_a_message_being_posted_right_now_is_not_released_again(pool):
    message, now = await claimed_message(pool)
    await incidents.message_retry(
        pool, message["id"], error="slack: not_in_channel", retry_at=now + timedelta(minutes=5), count_attempt=False
    )
    [again] = await incidents.claim_due_messages(pool, now=now + timedelta(minutes=5), limit=10, lease=LEASE)
    assert await incidents.release_held_messages(pool, "C0PAY", ERRORS, now=now + timedelta(minutes=5), lease=LEASE) == 0
    assert (await incidents.get_message(pool, again["id"]))["render_due_at"] == now + timedelta(minutes=5) + LEASE


async def test_only_messages_held_for_a_channel_error_are_released(pool):
    message, now = await claimed_message(pool)
    await incidents.message_retry(pool, message["id"], error="slack: internal_error", retry_at=now + timedelta(minutes=5))
    assert await incidents.release_held_messages(pool, "C0PAY", ERRORS, now=now, lease=LEASE) == 0

"""Delivers platform event messages: post once, then update in place as the event's chain grows
(a deployment's started → completed) or someone clicks Ack / Investigate.

Runs in every process that holds the Slack connection. Work comes from the database, never from
memory: `platform_events.render_due_at` is the outbox, claimed with SKIP LOCKED and a lease, so a
crash, a Slack outage or a 429 loses nothing — the row stays due and is retried with backoff (or
after Retry-After) until Slack takes it, or given up with `last_error` when no retry can help.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Awaitable, Callable

import asyncpg
import structlog

from alerts.outbound.slack import CHANNEL_ERRORS, DeliveryError, SlackDelivery, Throttled
from alerts.outbound.incidents import MAX_ATTEMPTS
from alerts.outbound.retry import backoff
from alerts.outbound.loop import OutboxLoop
from alerts.platform_events import event_view
from blocks.events import event_message
from storage import platform_events as store

log = structlog.get_logger(__name__)

LEASE = timedelta(seconds=60)


class EventNotifier(OutboxLoop):
    name = "event_notifier"

    def __init__(
        self,
        pool: asyncpg.Pool,
        delivery: SlackDelivery,
        *,
        default_channel: str,
        listen: Callable[[], Awaitable[asyncpg.Connection]] | None = None,
        concurrency: int = 8,
    ):
        super().__init__(listen)
        self.pool = pool
        self.delivery = delivery
        self.default_channel = default_channel
        self._limit = asyncio.Semaphore(concurrency)
        self._lock = asyncio.Lock()

    async def deliver_due(self, *, now: datetime | None = None, limit: int = 50) -> int:
        """One round: claim due event messages and render them concurrently; how many were claimed."""
        async with self._lock:
            now = now or datetime.now(timezone.utc)
            claimed = await store.claim_due(self.pool, now=now, limit=limit, lease=LEASE)
            await asyncio.gather(*(self._render(event, now + LEASE) for event in claimed))
            return len(claimed)

    async def _render(self, event: dict, claimed_until: datetime) -> None:
        bound = log.bind(event_id=event["id"], event_type=event["event_type"])
        chain = await store.chain_of(self.pool, event)
        if not any(e["id"] == event["id"] for e in chain):
            chain.append(event)
        # A chain's message may have been posted by an earlier event a moment ago.
        posted = next((e for e in reversed(chain) if e["slack_ts"]), None)
        if posted is not None and event["slack_ts"] is None:
            await store.adopt_message(self.pool, event["id"], channel=posted["slack_channel"], ts=posted["slack_ts"])
            event = {**event, "slack_channel": posted["slack_channel"], "slack_ts": posted["slack_ts"]}
        content = event_message(event_view(chain))
        async with self._limit:
            try:
                if event["slack_ts"] is None:
                    channel = event["slack_channel"] or self.default_channel
                    response = await self.delivery.call("chat.postMessage", channel=channel, **content)
                    channel, ts = response["channel"], response["ts"]
                else:
                    await self.delivery.call("chat.update", channel=event["slack_channel"], ts=event["slack_ts"], **content)
                    channel, ts = None, None
            except Throttled as exc:
                retry_at = datetime.now(timezone.utc) + timedelta(seconds=exc.retry_after)
                await store.event_retry(self.pool, event["id"], error=str(exc), retry_at=retry_at, count_attempt=False)
                bound.warning("event_message.throttled", retry_after=exc.retry_after)
                return
            except DeliveryError as exc:
                await self._failed(event, exc, bound)
                return
        await store.event_rendered(self.pool, event, claimed_until=claimed_until, channel=channel, ts=ts)
        if ts is not None:
            bound.info("event_message.posted", channel=channel, ts=ts)
        else:
            bound.info("event_message.updated")

    async def _failed(self, event: dict, exc: DeliveryError, bound) -> None:
        routed = event["slack_channel"]
        if exc.error in CHANNEL_ERRORS and event["slack_ts"] is None and routed and routed != self.default_channel:
            # Its route's channel will not take Pulser's messages (not invited, archived): the
            # event is told where Pulser can post rather than lost.
            await store.event_rerouted(
                self.pool, event["id"], channel=self.default_channel, error=f"slack: {exc.error} in {routed}",
                now=datetime.now(timezone.utc),
            )
            bound.warning("event_message.rerouted", error=exc.error, channel=routed, to=self.default_channel)
            return
        if exc.permanent or event["attempts"] >= MAX_ATTEMPTS:
            await store.event_failed(self.pool, event["id"], error=f"slack: {exc.error}")
            bound.error("event_message.failed", error=exc.error, channel=event["slack_channel"])
            return
        retry_at = datetime.now(timezone.utc) + backoff(event["attempts"])
        await store.event_retry(self.pool, event["id"], error=f"slack: {exc.error}", retry_at=retry_at)
        bound.warning("event_message.retrying", error=exc.error, retry_at=retry_at.isoformat())

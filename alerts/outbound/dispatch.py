"""Delivers the outbound outbox: pages to e-mail, Discord, Teams, webhooks, GitHub, Twilio and
PagerDuty, and Slack DMs to people being paged.

A delivery passes a few small stages, each its own function:
1. claim — due rows, most severe first, leased to this process (`storage.outbound.claim_due`);
2. compose — the incident as it stands now (an acknowledgement sent a minute late still says
   who acknowledged), as a `Page`;
3. send — through the channel kind's module (`alerts/outbound/channels/`) or Slack's paced client;
4. record — delivered (with what the service answered and, for GitHub and PagerDuty, the ref a
   later send needs), or tried again with backoff (a 429's Retry-After when it gave one), or
   failed: an error no retry fixes, or too many tries. Failures show in /health and /metrics and
   on the incident's timeline; the escalation policy does not wait for them.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Awaitable, Callable

import asyncpg
import httpx
import structlog

from alerts.incident_view import incident_view
from alerts.outbound import channels
from alerts.outbound.channels.base import DeliveryFailed, Page, SendResult
from alerts.outbound.loop import OutboxLoop
from alerts.outbound.retry import backoff
from alerts.outbound.slack import DeliveryError, SlackDelivery, Throttled
from alerts.tls import client_context
from blocks.incidents import incident_message
from blocks.pages import personal_page, trial_page
from storage import incidents, outbound

log = structlog.get_logger(__name__)

LEASE = timedelta(seconds=90)
TIMEOUT = httpx.Timeout(10.0, connect=5.0)


def page_of(delivery: dict, incident: dict | None) -> Page:
    """What the delivery says: its incident as it is now, or a test page."""
    if incident is None:
        return Page(
            action="test", dedup_key=f"pulser-test-{delivery['id']}", title="Test page from Pulser",
            severity="info", status="firing", source="pulser", description="If you can read this, this channel works.",
            recipient=_address(delivery), step=delivery["reason"],
        )
    status = incident["status"]
    if status == "firing" and incident["acked_at"] is not None:
        status = "acknowledged"
    return Page(
        action=delivery["action"], dedup_key=f"pulser-incident-{incident['id']}", title=incident["title"],
        severity=incident["severity"], status=status, service=incident["service"], env=incident["env"],
        source=incident["source"], description=incident["description"], link=incident["link"],
        incident_id=incident["id"], count=incident["count"], first_seen=incident["first_seen"],
        labels={str(k): str(v) for k, v in (incident["labels"] or {}).items()}, step=delivery["reason"],
        recipient=_address(delivery), acked_by=incident["acked_by"], resolved_by=incident["resolved_by"],
    )


def _address(delivery: dict) -> str | None:
    return delivery["recipient"] if delivery["method"] in ("sms", "email") else None


class OutboundDispatcher(OutboxLoop):
    name = "outbound_dispatcher"

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        slack: SlackDelivery | None = None,
        worker: str | None = None,
        listen: Callable[[], Awaitable[asyncpg.Connection]] | None = None,
        max_attempts: int = 6,
        backoff_base: float = 5.0,
        backoff_cap: float = 600.0,
        concurrency: int = 8,
        on_result: Callable[[str, str], None] | None = None,
    ):
        super().__init__(listen)
        self.pool = pool
        self.slack = slack
        self.worker = worker or "outbound"
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._limit = asyncio.Semaphore(concurrency)
        self._on_result = on_result or (lambda kind, outcome: None)
        self._http: httpx.AsyncClient | None = None
        self._lock = asyncio.Lock()

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(verify=client_context(), timeout=TIMEOUT, follow_redirects=False)
        return self._http

    async def stop(self) -> None:
        await super().stop()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def deliver_due(self, *, now: datetime | None = None, limit: int = 20) -> int:
        async with self._lock:
            now = now or datetime.now(timezone.utc)
            claimed = await outbound.claim_due(self.pool, now=now, worker=self.worker, lease=LEASE, limit=limit)
            if not claimed:
                return 0
            by_incident = await incidents.get_incidents(self.pool, {d["incident_id"] for d in claimed if d["incident_id"]})
            by_channel = await outbound.get_channels(self.pool, {d["channel_id"] for d in claimed if d["channel_id"]})
            await asyncio.gather(*(
                self._deliver(d, by_incident.get(d["incident_id"]), by_channel.get(d["channel_id"]), now) for d in claimed
            ))
            return len(claimed)

    async def _deliver(self, delivery: dict, incident: dict | None, channel: dict | None, now: datetime) -> None:
        kind = "slack_dm" if delivery["method"] == "slack_dm" else (channel["kind"] if channel else "unknown")
        bound = log.bind(delivery_id=delivery["id"], incident_id=delivery["incident_id"], kind=kind,
                         action=delivery["action"], attempt=delivery["attempts"])
        async with self._limit:
            try:
                if delivery["incident_id"] is not None and incident is None:
                    raise DeliveryFailed("the incident no longer exists", retryable=False)
                page = page_of(delivery, incident)
                if delivery["method"] == "slack_dm":
                    result = await self._send_dm(delivery, incident, page)
                else:
                    result = await self._send_channel(delivery, channel, page)
            except Throttled as exc:
                # Slack's budget or a 429: not an attempt of this page, only a later moment.
                at = datetime.now(timezone.utc) + timedelta(seconds=exc.retry_after)
                await outbound.retry(self.pool, delivery["id"], error=str(exc), at=at, count_attempt=False)
                self._on_result(kind, "paced")
                return
            except DeliveryFailed as exc:
                await self._failed_try(delivery, kind, exc, bound)
                return
            except Exception as exc:  # a bug in a channel module must not stop the outbox
                bound.exception("outbound.send_crashed")
                await self._failed_try(delivery, kind, DeliveryFailed(f"{type(exc).__name__} while sending", retryable=True), bound)
                return
        async with self.pool.acquire() as conn, conn.transaction():
            if result.ref and channel is not None and delivery["incident_id"] is not None:
                await outbound.set_ref(conn, channel["id"], delivery["incident_id"], result.ref)
            await outbound.delivered(conn, delivery["id"], detail=result.detail, now=datetime.now(timezone.utc))
        self._on_result(kind, "delivered")
        bound.info("outbound.delivered", detail=result.detail)

    async def _send_channel(self, delivery: dict, channel: dict | None, page: Page) -> SendResult:
        if channel is None:
            raise DeliveryFailed("the outbound channel was deleted", retryable=False)
        ref = None
        if delivery["incident_id"] is not None:
            ref = await outbound.get_ref(self.pool, channel["id"], delivery["incident_id"])
        try:
            return await channels.send(channel["kind"], channel["settings"], page, ref, self.http)
        except channels.ChannelConfigError as exc:
            fields = ", ".join(sorted(exc.errors))
            raise DeliveryFailed(f"the channel's settings are no longer valid ({fields}): edit the channel", retryable=False) from None

    async def _send_dm(self, delivery: dict, incident: dict | None, page: Page) -> SendResult:
        if self.slack is None:
            raise DeliveryFailed("this process has no Slack connection", retryable=True)
        user = delivery["recipient"]
        message = personal_page(incident_message(incident_view(incident)), page.step) if incident else trial_page(page.step)
        try:
            response = await self.slack.call("chat.postMessage", channel=user, incident_id=delivery["incident_id"], **message)
        except DeliveryError as exc:
            raise DeliveryFailed(f"Slack refused the DM to {user}: {exc.error}", retryable=not exc.permanent) from None
        return SendResult(detail=f"Slack DM to {user}", ref=str(response.get("ts") or "") or None)

    async def _failed_try(self, delivery: dict, kind: str, exc: DeliveryFailed, bound) -> None:
        now = datetime.now(timezone.utc)
        if exc.retryable and delivery["attempts"] < self.max_attempts:
            wait = exc.retry_after if exc.retry_after is not None else backoff(
                delivery["attempts"], base=timedelta(seconds=self.backoff_base), cap=timedelta(seconds=self.backoff_cap)
            ).total_seconds()
            await outbound.retry(self.pool, delivery["id"], error=exc.reason, at=now + timedelta(seconds=wait))
            self._on_result(kind, "retrying")
            bound.warning("outbound.retrying", reason=exc.reason, retry_in=round(wait, 1))
            return
        await outbound.failed(self.pool, delivery["id"], error=exc.reason, now=now)
        self._on_result(kind, "failed")
        bound.error("outbound.failed", reason=exc.reason)

"""Delivers incident messages (post once, then update in place) and incident thread replies.

Runs in every process that holds the Slack connection. Work comes from the database, never from
memory: `incident_messages.render_due_at` for messages and the notifications outbox (kinds
`incident_reply` / `incident_post`) for replies, so a crash, a Slack outage or a 429 loses nothing —
the row stays due and is retried with backoff (or after Retry-After) until Slack takes it.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from typing import Awaitable, Callable

import asyncpg
import structlog

from alerts.outbound.slack import CHANNEL_ERRORS, GONE_ERRORS, DeliveryError, SlackDelivery, Throttled
from alerts.incident_view import incident_view
from alerts.outbound.loop import OutboxLoop
from alerts.outbound.retry import backoff
from blocks.incidents import escalation_post, incident_message, status_reply
from blocks.kit import channel_ref
from blocks.storms import NAMED_PER_REPLY, digest_message, roll_call
from storage import incidents, notifications, storms
from storage.storms import StormPolicy

log = structlog.get_logger(__name__)

LEASE = timedelta(seconds=60)
# The metadata event type of Pulser's posts: how a retry finds a post an earlier try made.
MESSAGE_EVENT = "pulser_incident_message"
DIGEST_EVENT = "pulser_storm_digest"
# How soon a digest's next thread reply may name what folded since (the channel's budget paces it too).
ROLL_CALL_EVERY = timedelta(seconds=1)
# Transient failures back off (alerts.outbound.retry); a message is given up only after this many.
MAX_ATTEMPTS = 30
# A thread reply waits longer between tries: its parent message is usually what it waits for.
REPLY_BACKOFF_BASE = timedelta(seconds=5)


# A message held because Slack refuses its channel is tried again this often (and at once when the
# app is let into the channel).
HOLD_RETRY = timedelta(minutes=5)


def fallback_route(channel: str) -> dict:
    """A plain route to the default channel, for an incident whose own channel refuses us."""
    return {
        "rule_id": None, "channel": channel, "mention": None, "mention_min_severity": "high", "runbook_url": None,
        "escalate_after_minutes": None, "escalate_to": None, "escalation_levels": 0,
    }


def _content(incident: dict, message: dict, now: datetime) -> dict:
    """What a message of the incident says now: the routed message, or an escalation post."""
    view = incident_view(incident, message, now=now)
    if message["escalation_of"] is not None:
        return escalation_post(view, message["escalate_to"] or "", message["escalation_level"], None)
    return incident_message(view)


class IncidentNotifier(OutboxLoop):
    name = "incident_notifier"

    def __init__(
        self,
        pool: asyncpg.Pool,
        delivery: SlackDelivery,
        *,
        default_channel: str,
        debounce: timedelta = timedelta(seconds=2),
        concurrency: int = 8,
        listen: Callable[[], Awaitable[asyncpg.Connection]] | None = None,
        on_posted: Callable[[dict, datetime], None] | None = None,
        storm_policy: StormPolicy = StormPolicy(),
        worker: str | None = None,
    ):
        super().__init__(listen)
        self.storm_policy = storm_policy
        self.worker = worker  # named on the rows it claims, so they are taken over if it dies
        self.pool = pool
        self.delivery = delivery
        self.default_channel = default_channel
        self.debounce = debounce
        self._limit = asyncio.Semaphore(concurrency)
        self._on_posted = on_posted or (lambda incident, at: None)
        self._lock = asyncio.Lock()
        # channel → monotonic time of the last "Pulser cannot post there" ops message
        self._ops_warned: dict[str, float] = {}

    async def deliver_due(self, *, now: datetime | None = None, limit: int = 50) -> int:
        """One round: due messages (concurrently, up to `concurrency`), then due replies."""
        async with self._lock:
            now = now or datetime.now(timezone.utc)
            claimed = await incidents.claim_due_messages(self.pool, now=now, limit=limit, lease=LEASE, worker=self.worker)
            if claimed:
                by_id = await incidents.get_incidents(self.pool, [m["incident_id"] for m in claimed])
                await asyncio.gather(*(self._render(m, by_id.get(m["incident_id"]), now) for m in claimed))
            replies = await notifications.claim_due(
                self.pool, kinds=notifications.INCIDENT_KINDS, limit=limit, worker=self.worker
            )
            for row in replies:
                await self._send_reply(row)
            await storms.close_quiet(self.pool, now=now, quiet=self.storm_policy.quiet)
            digests = await storms.claim_due(self.pool, now=now, lease=LEASE, worker=self.worker)
            await asyncio.gather(*(self._render_digest(d, now) for d in digests))
            return len(claimed) + len(replies) + len(digests)

    async def _render_digest(self, digest: dict, now: datetime) -> None:
        """One round of a storm digest: post it, or rewrite it when it is behind and its last
        rewrite is `DIGEST_DEBOUNCE` old; then name, in its thread, up to NAMED_PER_REPLY
        incidents folded since. One reply per round, so the rewrites are never held up by a long
        roll call: every folded incident is named about a second after it folded, and the counts
        are at most a few seconds behind."""
        claimed_until = now + LEASE
        bound = log.bind(digest_id=digest["id"], channel=digest["channel"])
        channel, ts = digest["slack_channel"], digest["slack_ts"]
        rendered_at: datetime | None = None
        try:
            behind = digest["rendered_version"] < digest["version"]
            rested = digest["last_rendered_at"] is None or now - digest["last_rendered_at"] >= incidents.DIGEST_DEBOUNCE
            if ts is None or (behind and rested):
                content = digest_message(digest, await storms.summary(self.pool, digest["id"]), now=now)
                if ts is None and digest["attempts"] > 1:
                    found = await self.delivery.find_posted(
                        digest["channel"], event_type=DIGEST_EVENT, key="digest_id", value=digest["id"], since=digest["opened_at"]
                    )
                    if found is not None:
                        channel, ts = found
                if ts is None:
                    response = await self.delivery.call(
                        "chat.postMessage", channel=digest["channel"],
                        metadata={"event_type": DIGEST_EVENT, "event_payload": {"digest_id": digest["id"]}}, **content,
                    )
                    channel, ts = response["channel"], response["ts"]
                    bound.warning("storm.digest_posted", ts=ts)
                else:  # posted before (perhaps by a try that died before it could say so): update it
                    await self.delivery.call("chat.update", channel=channel, ts=ts, **content)
                rendered_at = now
            named = await storms.unnamed(self.pool, digest["id"], limit=NAMED_PER_REPLY)
            if named:
                try:
                    await self.delivery.call("chat.postMessage", channel=channel, thread_ts=ts, **roll_call(named))
                    await storms.mark_named(self.pool, [row["message_id"] for row in named], now=now)
                except Throttled:
                    pass  # the channel's budget is spent for now: the next round names them
                except DeliveryError as exc:  # the digest itself is fine: the next round tries again
                    bound.warning("storm.roll_call_failed", error=exc.error)
            waiting = bool(await storms.unnamed(self.pool, digest["id"], limit=1))
            await storms.after_round(
                self.pool, digest["id"], rendered_version=digest["version"] if rendered_at else 0, channel=channel,
                ts=ts, rendered_at=rendered_at, names_due=now + ROLL_CALL_EVERY if waiting else None,
                claimed_until=claimed_until, now=now, update_every=incidents.DIGEST_DEBOUNCE,
            )
        except Throttled as exc:
            retry_at = datetime.now(timezone.utc) + timedelta(seconds=exc.retry_after)
            await storms.retry(self.pool, digest["id"], error=str(exc), retry_at=retry_at, count_attempt=False)
        except DeliveryError as exc:
            retry_at = datetime.now(timezone.utc) + (HOLD_RETRY if exc.permanent else backoff(digest["attempts"]))
            await storms.retry(self.pool, digest["id"], error=f"slack: {exc.error}", retry_at=retry_at)
            bound.warning("storm.digest_failed", error=exc.error, retry_at=retry_at.isoformat())

    async def _render(self, message: dict, incident: dict | None, now: datetime) -> None:
        claimed_until = now + LEASE
        bound = log.bind(incident_id=message["incident_id"], message_id=message["id"], channel=message["channel"])
        folded = message["folded"] and message["slack_ts"] is None  # its storm digest shows it
        if incident is None or folded or (incident["suppressed_by"] is not None and message["slack_ts"] is None):
            await incidents.message_rendered(
                self.pool, message["id"], version=incident["version"] if incident else 0, claimed_until=claimed_until,
                channel=None, ts=None, now=now, debounce=self.debounce,
            )
            return
        if incident["group_key"].startswith("group:"):  # a group_by incident lists its alerts
            shown, total, firing = await incidents.members_of(self.pool, incident["id"])
            incident = {**incident, "members": shown, "members_total": total, "members_firing": firing}
        content = _content(incident, message, now)
        async with self._limit:
            found = None
            if message["slack_ts"] is None and message["attempts"] > 1:
                # An earlier try may have landed (a crash or a timeout after Slack took it): look
                # for it by its metadata before posting again.
                found = await self.delivery.find_posted(
                    message["channel"], event_type=MESSAGE_EVENT, key="message_id", value=message["id"],
                    since=message["created_at"],
                )
                if found is not None:
                    bound.warning("incident_message.found_earlier_post", ts=found[1])
                    message = {**message, "slack_channel": found[0], "slack_ts": found[1]}
            try:
                if message["slack_ts"] is None:
                    response = await self.delivery.call(
                        "chat.postMessage", channel=message["channel"], incident_id=incident["id"],
                        metadata={"event_type": MESSAGE_EVENT, "event_payload": {"message_id": message["id"], "incident_id": incident["id"]}},
                        **content,
                    )
                    channel, ts = response["channel"], response["ts"]
                else:
                    await self.delivery.call(
                        "chat.update",
                        channel=message["slack_channel"],
                        ts=message["slack_ts"],
                        incident_id=incident["id"],
                        **content,
                    )
                    channel, ts = found if found is not None else (None, None)
            except Throttled as exc:
                retry_at = datetime.now(timezone.utc) + timedelta(seconds=exc.retry_after)
                await incidents.message_retry(self.pool, message["id"], error=str(exc), retry_at=retry_at, count_attempt=False)
                bound.warning("incident_message.throttled", retry_after=exc.retry_after)
                return
            except DeliveryError as exc:
                if exc.error in GONE_ERRORS and message["slack_ts"] is not None:
                    # Someone deleted the message (or Slack no longer lets us edit it): the
                    # incident's state must still reach the channel, so it is posted anew.
                    await incidents.message_lost(self.pool, message["id"], error=f"slack: {exc.error}", now=now)
                    bound.warning("incident_message.lost", error=exc.error, ts=message["slack_ts"])
                    return
                await self._failed(message, incident, exc, bound)
                return
        await incidents.message_rendered(
            self.pool, message["id"], version=incident["version"], claimed_until=claimed_until,
            channel=channel, ts=ts, now=now, debounce=self.debounce,
        )
        if ts is not None and message["escalation_of"] is None:
            self._on_posted(incident, datetime.now(timezone.utc))
            bound.info("incident_message.posted", ts=ts)

    async def _failed(self, message: dict, incident: dict, exc: DeliveryError, bound) -> None:
        if exc.error in CHANNEL_ERRORS and message["slack_ts"] is None:
            await self._hold(message, incident, exc.error, bound)
            return
        if exc.permanent or message["attempts"] >= MAX_ATTEMPTS:
            await incidents.message_failed(self.pool, message["id"], error=f"slack: {exc.error}")
            bound.error("incident_message.failed", error=exc.error)
            await self._warn_ops(message, exc.error)
            return
        retry_at = datetime.now(timezone.utc) + backoff(message["attempts"])
        await incidents.message_retry(self.pool, message["id"], error=f"slack: {exc.error}", retry_at=retry_at)
        bound.warning("incident_message.retrying", error=exc.error, retry_at=retry_at.isoformat())

    async def _hold(self, message: dict, incident: dict, error: str, bound) -> None:
        """Slack will not let us post in the routed channel (not invited, gone, archived). Nothing a
        retry of this message fixes now, but an invitation will: hold it (tried again every
        HOLD_RETRY, and at once when the app joins the channel), and meanwhile post the incident
        itself to the default channel, with a note saying why and what to do."""
        retry_at = datetime.now(timezone.utc) + HOLD_RETRY
        await incidents.message_retry(
            self.pool, message["id"], error=f"slack: {error}", retry_at=retry_at, count_attempt=False
        )
        bound.warning("incident_message.held", error=error, retry_at=retry_at.isoformat())
        # The incident's own fallback (a heartbeat app's channel, Heroku's) unless that is the
        # channel refusing us; then SLACK_CHANNEL.
        fallback = next(
            (c for c in (incident.get("default_channel"), self.default_channel) if c and c != message["channel"]), None
        )
        if fallback is None:
            return
        async with self.pool.acquire() as conn, conn.transaction():
            added = await incidents.add_messages(
                conn, incident["id"], [fallback_route(fallback)], due_at=datetime.now(timezone.utc),
            )
            if added:
                await notifications.announce(conn)
        await self._warn_ops(message, error)

    async def _warn_ops(self, message: dict, error: str) -> None:
        """Tell people where Pulser can still post that a channel is unreachable (once an hour)."""
        channel = message["channel"]
        if error not in ("channel_not_found", "not_in_channel", "is_archived") or channel == self.default_channel:
            return
        last = self._ops_warned.get(channel)
        if last is not None and time.monotonic() - last < 3600:
            return
        self._ops_warned[channel] = time.monotonic()
        text = (
            f":warning: Pulser could not post incident #{message['incident_id']} to {channel_ref(channel)}: `{error}`. "
            "Invite the Pulser app to that channel or change the routing rule (`/pulser rules`)."
        )
        async with self.pool.acquire() as conn:
            await notifications.enqueue_notifications(
                conn,
                [notifications.NewNotification("incident_post", None, {"channel": self.default_channel, "message": status_reply(text)}, message["incident_id"])],
            )

    async def _send_reply(self, row: dict) -> None:
        payload = row["payload"]
        bound = log.bind(notification_id=row["id"], kind=row["kind"], incident_id=row["incident_id"])
        kwargs = dict(payload.get("message") or {})
        if row["kind"] == "incident_reply":
            parent = await incidents.get_message(self.pool, payload["message_id"])
            if parent is None:
                await notifications.mark_suppressed(self.pool, row["id"], "incident message deleted")
                return
            if parent["slack_ts"] is None:
                if parent["folded"]:
                    await notifications.mark_suppressed(self.pool, row["id"], "the incident is folded into a storm digest")
                    return
                if parent["failed"]:
                    await notifications.mark_failed(self.pool, row["id"], "the incident message was never posted")
                else:
                    await notifications.mark_retry(
                        self.pool, row["id"], "incident message not posted yet", max_attempts=MAX_ATTEMPTS,
                        wait=backoff(row["attempts"], base=REPLY_BACKOFF_BASE),
                    )
                return
            channel = parent["slack_channel"]
            kwargs["thread_ts"] = parent["slack_ts"]
        else:
            channel = payload["channel"]
        try:
            response = await self.delivery.call(
                "chat.postMessage", channel=channel, incident_id=row["incident_id"], notification_id=row["id"], **kwargs
            )
        except Throttled as exc:
            await notifications.mark_retry(
                self.pool, row["id"], str(exc), max_attempts=MAX_ATTEMPTS, wait=timedelta(seconds=exc.retry_after),
                count_attempt=False,
            )
            return
        except DeliveryError as exc:
            if exc.permanent:
                await notifications.mark_failed(self.pool, row["id"], f"slack: {exc.error}")
            else:
                await notifications.mark_retry(
                    self.pool, row["id"], f"slack: {exc.error}", max_attempts=MAX_ATTEMPTS,
                    wait=backoff(row["attempts"], base=REPLY_BACKOFF_BASE),
                )
            bound.warning("incident_reply.failed", error=exc.error, permanent=exc.permanent)
            return
        await notifications.mark_sent(self.pool, row["id"], channel=response["channel"], ts=response["ts"])

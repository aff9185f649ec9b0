"""Every Slack call the alert pipeline makes goes through here: logged, throttled, classified.

Why not the SDK's own retry handlers: they sleep inside the call, so one rate-limited channel would
stall every other channel's alerts. Here a 429 blocks only its channel until Retry-After has passed
and raises `Throttled` at once; the caller reschedules that message in the database and moves on.
Errors are sorted into the three kinds the caller must treat differently:

- `Throttled`: try again after `retry_after` seconds; not a failure.
- `DeliveryError(permanent=False)`: a 5xx, a timeout, a dropped connection — retry with backoff.
- `DeliveryError(permanent=True)`: the channel is gone, the blocks are invalid — no retry of this
  message will fix it. Channel problems are kept in `channel_problems` for /health and the ops
  message.

Slack refusing the token (`invalid_auth`, `token_revoked`, … while a token is rotated or a secret
failed to mount) is nobody's message's fault and must lose none of them: it holds *every* call,
like a 429 holds a channel, and raises `Throttled`. One call probes Slack after 2 s, then 4, 8 …
up to a minute between probes, so an outage costs a handful of refused calls, not one per alert;
the first success lifts the hold. The problem is kept in `auth_problem` for /health.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

import aiohttp
import asyncpg
import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from alerts.outbound.budget import OverBudget, waiting_at_most
from storage import deliveries
from storage.database import DATABASE_ERRORS

log = structlog.get_logger(__name__)

AUTH_ERRORS = frozenset({"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive", "missing_scope"})
CHANNEL_ERRORS = frozenset({"channel_not_found", "not_in_channel", "is_archived", "restricted_action"})
MESSAGE_ERRORS = frozenset({"invalid_blocks", "invalid_attachments", "msg_too_long", "no_text", "invalid_arguments"})
PERMANENT_ERRORS = CHANNEL_ERRORS | MESSAGE_ERRORS
# chat.update of a message someone deleted: nothing to update, and nothing a retry can fix.
GONE_ERRORS = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})


# Seconds between probes while Slack refuses the token: doubling from the first to the last.
AUTH_PROBE_FIRST = 2.0
AUTH_PROBE_LAST = 60.0


class Throttled(Exception):
    """Not now: Slack asked us to wait (429 on a channel) or refuses the token for the moment.
    Not a failure of the message; the caller tries again after `retry_after` seconds."""

    def __init__(self, channel: str, retry_after: float, reason: str | None = None):
        why = reason or f"Slack rate limit on {channel}"
        super().__init__(f"{why}: retry after {retry_after:.0f} s")
        self.channel = channel
        self.retry_after = retry_after


class DeliveryError(Exception):
    def __init__(self, error: str, *, permanent: bool):
        super().__init__(error)
        self.error = error
        self.permanent = permanent


@dataclass
class Problem:
    error: str
    since: datetime
    last: datetime


class SlackDelivery:
    def __init__(
        self,
        pool: asyncpg.Pool,
        client: AsyncWebClient,
        *,
        on_result: Callable[[str, str], None] | None = None,
        on_latency: Callable[[str, float, bool], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_budget_wait: float = 1.5,
    ):
        self.pool = pool
        # How long one call may wait for its slot in Pulser's Slack budget before its message is
        # rescheduled instead (see alerts.outbound.budget).
        self.max_budget_wait = max_budget_wait
        self.client = client
        self._on_result = on_result or (lambda method, outcome: None)
        # (method, seconds, ok) once per call, whatever its outcome (metrics: the latency histogram).
        self._on_latency = on_latency or (lambda method, seconds, ok: None)
        self._clock = clock
        self._blocked_until: dict[str, float] = {}
        self._auth_held_until = 0.0
        self._auth_probe_delay = AUTH_PROBE_FIRST
        self.auth_problem: Problem | None = None
        self.channel_problems: dict[str, Problem] = {}
        self.last_success: datetime | None = None

    def blocked_for(self, channel: str) -> float:
        """Seconds until Slack lets us write to `channel` again (0 when it does now)."""
        until = self._blocked_until.get(channel)
        if until is None:
            return 0.0
        remaining = until - self._clock()
        if remaining <= 0:
            del self._blocked_until[channel]
            return 0.0
        return remaining

    def throttled_channels(self) -> dict[str, float]:
        return {channel: round(left, 1) for channel in list(self._blocked_until) if (left := self.blocked_for(channel)) > 0}

    async def call(
        self,
        method: str,
        *,
        channel: str,
        incident_id: int | None = None,
        notification_id: int | None = None,
        **kwargs: Any,
    ) -> AsyncSlackResponse:
        """`method` is the Web API name ("chat.postMessage", "chat.update")."""
        held = self._auth_held_until - self._clock()
        if held > 0 and self.auth_problem is not None:
            raise Throttled(channel, held, reason=f"Slack refuses the token ({self.auth_problem.error})")
        wait = self.blocked_for(channel)
        if wait > 0:
            raise Throttled(channel, wait)
        started = time.perf_counter()
        error: str | None = None
        try:
            with waiting_at_most(self.max_budget_wait):
                response = await self.client.api_call(method, json={"channel": channel, **kwargs})
        except OverBudget as exc:
            # Not sent, not refused: the budget says later. The caller reschedules from the
            # database, so this channel's backlog never holds another channel's work.
            self._on_result(method, "paced")
            raise Throttled(channel, exc.retry_after, reason=str(exc)) from None
        except SlackApiError as exc:
            response = exc.response
            error = str(response.get("error") or f"http_{response.status_code}")
            if response.status_code == 429:
                retry_after = retry_after_seconds(response.headers)
                self._blocked_until[channel] = self._clock() + retry_after
                await self._log(method, channel, False, started, "ratelimited", incident_id, notification_id)
                self._on_result(method, "rate_limited")
                raise Throttled(channel, retry_after) from None
            self._note_problem(channel, error)
            if error in AUTH_ERRORS:
                delay = self._hold_for_auth()
                await self._log(method, channel, False, started, error, incident_id, notification_id)
                self._on_result(method, "held")
                raise Throttled(channel, delay, reason=f"Slack refuses the token ({error})") from None
            permanent = error in PERMANENT_ERRORS or error in GONE_ERRORS
            await self._log(method, channel, False, started, error, incident_id, notification_id)
            self._on_result(method, "failed" if permanent else "retrying")
            raise DeliveryError(error, permanent=permanent) from None
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            await self._log(method, channel, False, started, error, incident_id, notification_id)
            self._on_result(method, "retrying")
            raise DeliveryError(error, permanent=False) from None
        now = datetime.now(timezone.utc)
        self.last_success = now
        self.auth_problem = None
        self._auth_probe_delay = AUTH_PROBE_FIRST
        self.channel_problems.pop(channel, None)
        await self._log(method, channel, True, started, None, incident_id, notification_id)
        self._on_result(method, "ok")
        return response

    async def find_posted(self, channel: str, *, event_type: str, key: str, value: int, since: datetime) -> tuple[str, str] | None:
        """The (channel, ts) of a message Pulser posted to `channel` since `since` whose metadata
        says `key: value` — a post whose first attempt may have landed before the process died or
        the call timed out. None when there is none, or when Slack will not say (then the caller
        posts: a possible duplicate is better than a lost alert)."""
        oldest = f"{max(0.0, since.timestamp() - 5):.6f}"
        try:
            with waiting_at_most(self.max_budget_wait):
                response = await self.client.conversations_history(
                    channel=channel, oldest=oldest, limit=200, include_all_metadata=True
                )
        except (SlackApiError, OverBudget, aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            log.warning("slack.history_lookup_failed", channel=channel, error=f"{type(exc).__name__}: {exc}")
            return None
        for message in response.get("messages") or []:
            metadata = message.get("metadata") or {}
            if metadata.get("event_type") == event_type and (metadata.get("event_payload") or {}).get(key) == value:
                return response.get("channel") or channel, message["ts"]
        return None

    def _hold_for_auth(self) -> float:
        """Hold every call until the next probe; each refusal doubles the wait, up to a minute."""
        delay = self._auth_probe_delay
        self._auth_probe_delay = min(AUTH_PROBE_LAST, delay * 2)
        self._auth_held_until = self._clock() + delay
        return delay

    def _note_problem(self, channel: str, error: str) -> None:
        now = datetime.now(timezone.utc)
        if error in AUTH_ERRORS:
            since = self.auth_problem.since if self.auth_problem and self.auth_problem.error == error else now
            self.auth_problem = Problem(error, since, now)
            log.error("slack.auth_problem", error=error, hint="check SLACK_BOT_TOKEN and the app's scopes")
        elif error in CHANNEL_ERRORS:
            earlier = self.channel_problems.get(channel)
            self.channel_problems[channel] = Problem(error, earlier.since if earlier else now, now)
            log.error("slack.channel_problem", channel=channel, error=error)

    async def _log(
        self,
        method: str,
        channel: str,
        ok: bool,
        started: float,
        error: str | None,
        incident_id: int | None,
        notification_id: int | None,
    ) -> None:
        seconds = time.perf_counter() - started
        self._on_latency(method, seconds, ok)
        latency_ms = seconds * 1000
        try:
            await deliveries.record_delivery(
                self.pool,
                method=method,
                channel=channel,
                ok=ok,
                latency_ms=latency_ms,
                error=error,
                incident_id=incident_id,
                notification_id=notification_id,
            )
        except DATABASE_ERRORS as exc:  # the log must never turn a delivered message into a retry
            log.warning("slack.delivery_log_failed", error=f"{type(exc).__name__}: {exc}")


def retry_after_seconds(headers: Any) -> float:
    """Slack's Retry-After as seconds to wait: at least 1, and 1 when it is missing or unreadable."""
    try:
        value = headers.get("Retry-After") or headers.get("retry-after")
        return max(1.0, float(value))
    except (TypeError, ValueError, AttributeError):
        return 1.0

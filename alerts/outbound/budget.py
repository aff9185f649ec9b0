"""Slack's rate limits, spent before each call instead of discovered by 429s.

Why proactive: Slack answers a call beyond its limits with 429 and may disable an app that keeps
calling through them. Waiting for the 429 means every storm costs refused calls and retries; here
each call first takes a slot from the budgets it uses, and waits (or is rescheduled by its
caller) until there is one.

Why in Postgres: Pulser may run as several processes on one database (two `pulser run`
replicas, a `pulser bot` beside a `pulser sidecar`). Slack's limits are per workspace, not per
process, so the budgets live in one table (`slack_budgets`) that every process spends from, one
statement per call (`slack_spend`, a GCRA: each budget is a time that runs ahead of the clock by
one step per call, and a call may go while it is at most a burst ahead). If the database cannot be
reached, the same algorithm runs in memory, so Slack calls never wait for Postgres to come back.

The figures are ours, a little below Slack's published ones (Slack's "Rate limits" page), so a
budget never meets a 429 even with a clock a little off between processes:

* chat.postMessage: 1 per second per channel (bursts of 3), 240 a minute per workspace;
* Tier 3 methods (chat.update, chat.delete, conversations.history, …): 45 a minute;
* Tier 4 methods (views.*, chat.postEphemeral, users.info): 90 a minute.

A 429 that comes anyway (another app on the same token, a workspace with lower limits) moves the
budget it hit past Retry-After, for every process: `penalize`.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import asyncpg
import structlog

from storage.database import DATABASE_ERRORS

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Rate:
    """`per_minute` calls a minute on average, up to `burst` at once."""

    per_minute: float
    burst: int

    @property
    def step(self) -> float:
        return 60.0 / self.per_minute

    @property
    def tolerance(self) -> float:
        return self.step * (self.burst - 1)


POST_PER_CHANNEL = Rate(per_minute=60, burst=3)
POST_PER_WORKSPACE = Rate(per_minute=240, burst=30)
TIER_3 = Rate(per_minute=45, burst=8)
TIER_4 = Rate(per_minute=90, burst=15)

POST_MESSAGE = "chat.postMessage"
METHOD_RATES: dict[str, Rate] = {
    "chat.update": TIER_3,
    "chat.delete": TIER_3,
    "conversations.history": TIER_3,
    "conversations.info": TIER_3,
    "conversations.open": TIER_3,
    "chat.postEphemeral": TIER_4,
    "views.open": TIER_4,
    "views.push": TIER_4,
    "views.update": TIER_4,
    "views.publish": TIER_4,
    "users.info": TIER_4,
}

# How long a call may wait for its slot before the caller is told to come back later. Interactive
# work (a click's reply, a modal) waits; outbox senders set a short wait with `waiting_at_most` and
# reschedule from the database instead, so one busy channel never holds their other work.
DEFAULT_MAX_WAIT = 10.0
_max_wait: contextvars.ContextVar[float] = contextvars.ContextVar("slack_budget_max_wait", default=DEFAULT_MAX_WAIT)


@contextmanager
def waiting_at_most(seconds: float) -> Iterator[None]:
    """Calls made inside wait at most `seconds` for their budget, then raise `OverBudget`."""
    token = _max_wait.set(seconds)
    try:
        yield
    finally:
        _max_wait.reset(token)


class OverBudget(Exception):
    """No slot within the caller's wait: try again after `retry_after` seconds."""

    def __init__(self, method: str, channel: str | None, retry_after: float):
        where = f" in {channel}" if channel else ""
        super().__init__(f"{method}{where} is over Pulser's Slack budget: next slot in {retry_after:.1f} s")
        self.method = method
        self.channel = channel
        self.retry_after = retry_after


def budgets_for(method: str, channel: str | None) -> list[tuple[str, Rate]]:
    """The budgets one call spends from (none for methods Slack does not limit tightly)."""
    if method == POST_MESSAGE:
        spent = [(POST_MESSAGE, POST_PER_WORKSPACE)]
        if channel:
            spent.append((f"{POST_MESSAGE} {channel}", POST_PER_CHANNEL))
        return spent
    rate = METHOD_RATES.get(method)
    return [(method, rate)] if rate is not None else []


class SlackBudget:
    """Spends calls from the shared budgets; `pool=None` keeps them in memory only (one process).
    `enabled=False` lets every call through at once: only for a Slack stand-in that enforces no
    limits, where what is measured is Pulser's own speed."""

    def __init__(self, pool: asyncpg.Pool | None, *, enabled: bool = True, clock=time.time):
        self.pool = pool
        self.enabled = enabled
        self._clock = clock
        self._local: dict[str, float] = {}  # scope → theoretical arrival time, when Postgres is away
        self.waited_seconds = 0.0  # for /metrics and the benchmarks: how long calls waited in total
        self.calls = 0
        # "#ops-alerts" → "C0123": Slack limits a channel, whatever name a call gives it, so a post
        # by name and one by ID spend from one budget once Slack has said which ID a name is.
        self.channel_ids: dict[str, str] = {}

    def learn_channel(self, given: str | None, channel_id: object) -> None:
        if given and isinstance(channel_id, str) and channel_id and given != channel_id:
            self.channel_ids[given] = channel_id

    async def spend(self, method: str, channel: str | None = None) -> None:
        """Take one slot for `method` (in `channel`), waiting for it up to the caller's limit."""
        channel = self.channel_ids.get(channel, channel) if channel else channel
        budgets = budgets_for(method, channel) if self.enabled else []
        if not budgets:
            return
        limit = _max_wait.get()
        waited = 0.0
        while True:
            wait = await self._try(budgets)
            if wait <= 0:
                self.calls += 1
                self.waited_seconds += waited
                return
            if waited + wait > limit:
                raise OverBudget(method, channel, wait)
            await asyncio.sleep(wait)
            waited += wait

    async def penalize(self, method: str, channel: str | None, retry_after: float) -> None:
        """Slack said 429 anyway: nobody spends from that budget until Retry-After has passed."""
        channel = self.channel_ids.get(channel, channel) if channel else channel
        budgets = budgets_for(method, channel)
        # The channel's budget when there is one (Slack's per-channel limit), else the method's.
        scope, rate = budgets[-1] if budgets else (method, TIER_3)
        until = self._clock() + retry_after + rate.tolerance
        self._local[scope] = max(self._local.get(scope, 0.0), until)
        if self.pool is None:
            return
        try:
            await self.pool.execute(
                """
                INSERT INTO slack_budgets (scope, tat) VALUES ($1, to_timestamp($2))
                ON CONFLICT (scope) DO UPDATE SET tat = greatest(slack_budgets.tat, excluded.tat)
                """,
                scope,
                until,
            )
        except DATABASE_ERRORS as exc:
            log.warning("slack_budget.penalty_not_shared", scope=scope, error=f"{type(exc).__name__}: {exc}")

    async def _try(self, budgets: list[tuple[str, Rate]]) -> float:
        if self.pool is not None:
            try:
                return await self.pool.fetchval(
                    "SELECT slack_spend($1::text[], $2::float8[], $3::float8[])",
                    [scope for scope, _ in budgets],
                    [rate.step for _, rate in budgets],
                    [rate.tolerance for _, rate in budgets],
                )
            except DATABASE_ERRORS as exc:
                log.warning("slack_budget.local", error=f"{type(exc).__name__}: {exc}")
        return self._try_locally(budgets)

    def _try_locally(self, budgets: list[tuple[str, Rate]]) -> float:
        now = self._clock()
        wait = max(max(self._local.get(scope, now), now) - now - rate.tolerance for scope, rate in budgets)
        if wait > 0:
            return wait
        for scope, rate in budgets:
            self._local[scope] = max(self._local.get(scope, now), now) + rate.step
        return 0.0

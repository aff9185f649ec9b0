"""Slack's published Web API rate limits, enforced by the sandbox as token buckets.

Why: a bot that only ever met an unlimited emulator can post faster than Slack allows and never
find out until production answers 429. The sandbox refuses what Slack would refuse, the way Slack
refuses it (HTTP 429, ``{"ok": false, "error": "ratelimited"}``, ``Retry-After``), so every test
and every local try-out runs under the same limits as a real workspace.

Where the figures come from (Slack's "Rate limits" guide, https://docs.slack.dev/apis/web-api/rate-limits,
and each method's reference page under https://docs.slack.dev/reference/methods/):

* Limits apply per method, per app, per workspace. The sandbox is one workspace with one app, so
  a bucket per method (and, for ``chat.postMessage``, per channel) is exactly that.
* Tiers: Tier 1 "1+ per minute", Tier 2 "20+ per minute", Tier 3 "50+ per minute", Tier 4
  "100+ per minute". Each allows some burst ("a small amount", "occasional bursts", "sporadic
  bursts", "generous burst behavior"); Slack publishes no burst sizes, so the ``burst`` figures
  below are ours: enough for what one click or one start-up does at once, small next to the rate.
* ``chat.postMessage`` (Special tier): "generally allows posting one message per second per
  channel, while also maintaining a workspace-wide limit"; short bursts above 1/s are tolerated.
  The method's page puts the workspace-wide limit at "several hundred messages per minute".
  Modelled as one bucket per channel (burst 4, 1 per second) and one across all channels
  (burst 50, 300 per minute); a post needs a token from both.
* Method tiers, from the reference pages: ``chat.update``, ``chat.delete``,
  ``conversations.info``, ``conversations.open`` Tier 3; ``chat.postEphemeral``, ``views.open``,
  ``views.push``, ``views.update``, ``views.publish``, ``users.info`` Tier 4;
  ``conversations.list`` Tier 2; ``chat.getPermalink`` and ``auth.test`` Special (Slack calls
  both generous): Tier 4's rate with a larger burst. ``api.test`` is not limited.
* ``apps.connections.open`` is Tier 1 for Socket Mode. Taken literally (one a minute) it would
  make every reconnect after a dropped socket wait a minute, which is not what Slack does: an app
  may hold up to 10 Socket Mode connections at once, and Slack itself asks clients to reconnect
  on ``disconnect`` frames and refreshes. So: burst 10 (one per connection an app may hold), then
  one every 5 seconds — a reconnecting client is never starved, a reconnect loop still is.

Methods the table does not name are not limited (the sandbox answers ``unknown_method`` for
methods it does not implement anyway).

The clock is injectable, so tests move time instead of sleeping.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Limit:
    """A token bucket: up to ``burst`` calls at once, refilled at ``per_minute`` calls a minute."""

    per_minute: float
    burst: int


TIER_1 = Limit(per_minute=1, burst=2)
TIER_2 = Limit(per_minute=20, burst=5)
TIER_3 = Limit(per_minute=50, burst=10)
TIER_4 = Limit(per_minute=100, burst=20)
SPECIAL_GENEROUS = Limit(per_minute=100, burst=100)  # chat.getPermalink, auth.test
SOCKET_MODE_CONNECT = Limit(per_minute=12, burst=10)  # apps.connections.open, see the docstring

POST_MESSAGE = "chat.postMessage"
POST_MESSAGE_PER_CHANNEL = Limit(per_minute=60, burst=4)
POST_MESSAGE_PER_WORKSPACE = Limit(per_minute=300, burst=50)

#: Per-method, per-workspace limits; None = not limited. chat.postMessage is handled apart.
METHOD_LIMITS: Mapping[str, Limit | None] = {
    "api.test": None,
    "auth.test": SPECIAL_GENEROUS,
    "apps.connections.open": SOCKET_MODE_CONNECT,
    "chat.update": TIER_3,
    "conversations.history": TIER_3,
    "chat.delete": TIER_3,
    "chat.postEphemeral": TIER_4,
    "chat.getPermalink": SPECIAL_GENEROUS,
    "views.open": TIER_4,
    "views.push": TIER_4,
    "views.update": TIER_4,
    "views.publish": TIER_4,
    "users.info": TIER_4,
    "conversations.info": TIER_3,
    "conversations.list": TIER_2,
    "conversations.open": TIER_3,
}


class _Bucket:
    """Tokens left and when they were last counted; full when created."""

    __slots__ = ("limit", "tokens", "updated")

    def __init__(self, limit: Limit, now: float) -> None:
        self.limit = limit
        self.tokens = float(limit.burst)
        self.updated = now

    def wait(self, now: float) -> float:
        """Seconds until one token is there (0.0 when one is there now); refills first."""
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(float(self.limit.burst), self.tokens + elapsed * self.limit.per_minute / 60.0)
        self.updated = now
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) * 60.0 / self.limit.per_minute

    def take(self) -> None:
        self.tokens -= 1.0


class RateLimiter:
    """Charges each Web API call to its buckets and counts what it refused.

    ``check`` is called once per authenticated call, after any ``fail_next`` injection (which
    wins and costs no token). A refused call takes no token, as a 429 from Slack does not.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        methods: Mapping[str, Limit | None] = METHOD_LIMITS,
        per_channel: Limit = POST_MESSAGE_PER_CHANNEL,
        workspace: Limit = POST_MESSAGE_PER_WORKSPACE,
    ) -> None:
        self.clock = clock
        self.methods = dict(methods)
        self.per_channel = per_channel
        self.workspace = workspace
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        #: Refused calls per method, and chat.postMessage's per channel.
        self.refused: Counter[str] = Counter()
        self.refused_by_channel: Counter[str] = Counter()

    def check(self, method: str, channel: str | None = None) -> int:
        """Charge one call of ``method`` (``channel`` for chat.postMessage). Returns 0 when it may
        run, else the ``Retry-After`` to answer: whole seconds until a token is there, at least 1."""
        now = self.clock()
        if method == POST_MESSAGE:
            buckets = [
                self._bucket(("channel", channel or ""), self.per_channel, now),
                self._bucket(("workspace", POST_MESSAGE), self.workspace, now),
            ]
        else:
            limit = self.methods.get(method)
            if limit is None:
                return 0
            buckets = [self._bucket(("method", method), limit, now)]
        wait = max(bucket.wait(now) for bucket in buckets)
        if wait > 0:
            self.refused[method] += 1
            if method == POST_MESSAGE:
                self.refused_by_channel[channel or ""] += 1
            return max(1, math.ceil(round(wait, 6)))  # 3.0000000001 s of float noise is 3 s
        for bucket in buckets:
            bucket.take()
        return 0

    def _bucket(self, key: tuple[str, str], limit: Limit, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(limit, now)
        return bucket

    @property
    def refused_total(self) -> int:
        return sum(self.refused.values())

    def snapshot(self) -> dict[str, Any]:
        """The refusal counts as JSON-able data (the sandbox's /sandbox/state and page)."""
        return {
            "enabled": True,
            "refused_total": self.refused_total,
            "refused": dict(sorted(self.refused.items())),
            "refused_by_channel": dict(sorted(self.refused_by_channel.items())),
        }


def disabled_snapshot() -> dict[str, Any]:
    """What the snapshot shows for a sandbox started with ``rate_limits=False``."""
    return {"enabled": False, "refused_total": 0, "refused": {}, "refused_by_channel": {}}

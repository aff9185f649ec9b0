"""Per-key token buckets (one per heartbeat UUID), in process memory.

A bucket holds up to `capacity` tokens and regains `rate` per second; each request takes one. The
defaults (20, 2/s) let a job send a burst of start/success/fail signals and retries, and keep a
runaway loop from writing thousands of history rows a second for one app.

Only keys that exist keep a bucket. A request is charged before it is served (so concurrent
requests cannot overrun the burst), and the caller `forget()`s the key once the lookup says it is
unknown: a flood of made-up UUIDs holds a bucket only for the moment each is looked up.

Memory is bounded without ever resetting a limit. A bucket that has refilled to `capacity` is
exactly as if it did not exist, so it is dropped; that is the only eviction. At the `max_keys` cap
with no full bucket to drop, a new key waits (429) until the oldest is full, rather than pushing
out a bucket that still counts — evicting a throttled key would hand it a fresh burst. Buckets are
in least-recently-updated order, so the first is the likeliest to be full. Each process limits on
its own; N sidecars allow up to N times the rate.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from typing import Callable, Hashable


class RateLimiter:
    def __init__(
        self,
        *,
        capacity: float = 20,
        rate: float = 2.0,
        max_keys: int = 200_000,
        clock: Callable[[], float] = time.monotonic,
    ):
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self.capacity = capacity
        self.rate = rate
        self.max_keys = max_keys
        self.clock = clock  # replaceable: tests stop time to make limits exact
        # key → (tokens, time of last update); least recently used first.
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()

    def acquire(self, key: Hashable) -> float:
        """Take a token for `key`: 0.0 when allowed, else the seconds until one is available."""
        now = self.clock()
        self._drop_full(now)
        state = self._buckets.get(key)
        if state is None:
            if len(self._buckets) >= self.max_keys:
                return self._until_room(now)
            tokens = self.capacity
        else:
            tokens = self._tokens(state, now)
            self._buckets.move_to_end(key)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1 - tokens) / self.rate

    def forget(self, key: Hashable) -> None:
        """Drop `key`'s bucket: the key turned out not to exist (an unknown UUID), so it must not
        hold memory, nor count toward the cap that protects the buckets of keys that do."""
        self._buckets.pop(key, None)

    def retry_after(self, wait: float) -> int:
        """A Retry-After header value: whole seconds, at least 1."""
        return max(1, math.ceil(wait))

    def __len__(self) -> int:
        return len(self._buckets)

    def _tokens(self, state: tuple[float, float], now: float) -> float:
        tokens, updated = state
        return min(self.capacity, tokens + (now - updated) * self.rate)

    def _drop_full(self, now: float) -> None:
        """Drop buckets that have refilled, oldest first, stopping at the first that has not."""
        buckets = self._buckets
        while buckets:
            key, state = next(iter(buckets.items()))
            if self._tokens(state, now) < self.capacity:
                return
            del buckets[key]

    def _until_room(self, now: float) -> float:
        """Seconds until the oldest bucket is full again and can make room for a new key (more
        than 0: a full one would have been dropped already)."""
        oldest = next(iter(self._buckets.values()))
        return (self.capacity - self._tokens(oldest, now)) / self.rate

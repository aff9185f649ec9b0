"""Per-key token buckets (one per heartbeat UUID), in process memory.

A bucket holds up to `capacity` tokens and regains `rate` per second; each request takes one. The
defaults (20, 2/s) let a job send a burst of start/success/fail signals and retries, and keep a
runaway loop from writing thousands of history rows a second for one app.

Buckets live in an LRU-ordered dict: a bucket idle for `capacity / rate` seconds is full again,
exactly as if it did not exist, so it is dropped, and a hard cap bounds memory even when someone
sends random UUIDs. Each process limits on its own; N sidecars allow up to N times the rate.
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
        self.capacity = capacity
        self.rate = rate
        self.max_keys = max_keys
        self._clock = clock
        self._idle_after = capacity / rate
        # key → (tokens, time of last update); least recently used first.
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()

    def acquire(self, key: Hashable) -> float:
        """Take a token for `key`: 0.0 when allowed, else the seconds until one is available."""
        now = self._clock()
        self._drop_idle(now)
        state = self._buckets.get(key)
        if state is None:
            tokens = self.capacity
        else:
            tokens = min(self.capacity, state[0] + (now - state[1]) * self.rate)
            self._buckets.move_to_end(key)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1 - tokens) / self.rate

    def retry_after(self, wait: float) -> int:
        """A Retry-After header value: whole seconds, at least 1."""
        return max(1, math.ceil(wait))

    def __len__(self) -> int:
        return len(self._buckets)

    def _drop_idle(self, now: float) -> None:
        buckets = self._buckets
        while buckets:
            key, (_, updated) = next(iter(buckets.items()))
            if now - updated < self._idle_after and len(buckets) < self.max_keys:
                return
            del buckets[key]

"""How long a send that failed waits before its next try: the same rule for every outbox (incident
messages, storm digests, thread replies, platform-event messages, pages beyond Slack).

Doubling from `base` up to `cap`, ±20 % so that rows which failed together (a Slack or SMTP outage)
do not all come back in the same second, nor replicas in step. A wait the service asked for (a
429's Retry-After) is not a failure of the row and is used as given, without this on top.
"""

from __future__ import annotations

import random
from datetime import timedelta

JITTER = 0.2


def backoff(attempts: int, *, base: timedelta = timedelta(seconds=2), cap: timedelta = timedelta(minutes=5)) -> timedelta:
    """The wait after the `attempts`-th failed try (1 = the first)."""
    wait = min(cap, base * 2 ** min(max(0, attempts - 1), 30))
    return wait * random.uniform(1 - JITTER, 1 + JITTER)

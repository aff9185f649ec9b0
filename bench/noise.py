"""A noisy alert stream on simulated time → how many Slack messages people actually get.

Replays 1,000 alerts from 10 underlying problems over 2 hours of simulated time through the real
pipeline (`AlertPipeline.ingest`) and the real notifier (`IncidentNotifier.deliver_due`) posting to
the Slack sandbox, on a fresh migrated database (embedded Postgres in a temp dir, or a fresh
database on the server DATABASE_URL names). The stream is deterministic for a `--seed`: flapping
problems that fire and resolve every few minutes, steady repeats, a storm of hundreds of alerts
within one minute, critical problems, and problems that resolve.

Simulated time advances one second per step: the step's alerts are ingested with `now` = their
own time, then the notifier delivers what is due at the end of the step (as the real notifier,
woken by each change, would), and every simulated minute the incident sweep runs. Routing is the
default (no rules: everything to #ops-alerts, no escalation), so thread replies can only come from
the sweep. Counted at the sandbox: top-level chat.postMessage, thread replies, chat.update.

    .venv/bin/python bench/noise.py [--seed 7]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import shlex
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from slack_sdk.web.async_client import AsyncWebClient  # noqa: E402

from alerts.outbound.slack import SlackDelivery  # noqa: E402
from alerts.incident_actions import IncidentActions  # noqa: E402
from alerts.outbound.incidents import IncidentNotifier  # noqa: E402
from alerts.normalized import NormalizedAlert  # noqa: E402
from alerts.pipeline import AlertPipeline, PipelineSettings  # noqa: E402
from bench.pipeline import fresh_database  # noqa: E402
from bot.logging import configure_logging  # noqa: E402
from jobs.incident_sweep import IncidentSweep  # noqa: E402
from sandbox import SlackSandbox  # noqa: E402
from sandbox.state import ApiCall  # noqa: E402
from storage import database  # noqa: E402
from storage.migrations import apply_migrations  # noqa: E402

TOTAL_ALERTS = 1000
SIMULATED = timedelta(hours=2)
SETTLE = timedelta(minutes=5)  # simulated time after the last alert, for debounced updates and sweeps
T0 = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)
CHANNEL = "#ops-alerts"
TARGET_POSTS = 10
TARGET_REDUCTION = 99.0


@dataclass
class Problem:
    """One underlying problem and every alert it sends: (seconds after T0, status, severity)."""

    title: str
    kind: str
    service: str
    severity: str
    env: str = "production"
    events: list[tuple[float, str, str]] = field(default_factory=list)

    def fire(self, at: float, severity: str | None = None) -> None:
        self.events.append((at, "firing", severity or self.severity))

    def resolve(self, at: float) -> None:
        self.events.append((at, "resolved", self.severity))

    @property
    def critical_alerts(self) -> int:
        return sum(1 for _, status, severity in self.events if status == "firing" and severity == "critical")

    @property
    def final_status(self) -> str:
        return max(self.events)[1]


def minutes(m: float) -> float:
    return m * 60.0


def noisy_stream(seed: int) -> list[Problem]:
    """Ten problems; the storm takes whatever is left of the 1,000 alerts (hundreds)."""
    rng = random.Random(seed)
    end = SIMULATED.total_seconds()

    def every(problem: Problem, start: float, stop: float, interval: float, jitter: float, severity: str | None = None) -> None:
        t = start
        while t < stop:
            problem.fire(t + rng.uniform(0, jitter), severity)
            t += interval

    flapping = Problem("api-gateway health check failing", "flapping", "api-gateway", "high")
    t = minutes(2)
    while t < end - minutes(5):
        flapping.fire(t)
        down = rng.uniform(60, 150)
        flapping.resolve(t + down)
        t += down + rng.uniform(90, 240)  # fires/resolves every few minutes

    queue = Problem("Queue depth above 10k on jobs-queue", "flapping + repeats", "jobs-queue", "medium")
    t = minutes(5)
    while t < end - minutes(10):
        burst = rng.uniform(minutes(2), minutes(4))
        every(queue, t, t + burst, 30, 5)
        queue.resolve(t + burst + 1)
        t += burst + rng.uniform(minutes(4), minutes(7))

    backup = Problem("Backup job failed on billing-db", "steady repeats", "billing-db", "low")
    every(backup, minutes(1), end, 60, 3)

    payments = Problem("Payments 5xx rate above 2 percent", "critical, resolved", "payments", "critical")
    every(payments, minutes(10), minutes(70), 30, 4)
    payments.resolve(minutes(71))

    certificate = Problem("TLS certificate for shop.example.com expires in 3 days", "critical, single alert", "shop-web", "critical")
    certificate.fire(minutes(50) + rng.uniform(0, 30))

    database_down = Problem("Primary database unreachable", "critical burst, resolved", "orders-db", "critical")
    every(database_down, minutes(80), minutes(85), 15, 2)
    database_down.resolve(minutes(86))

    memory = Problem("Worker memory above 90 percent", "resolved", "workers", "medium", env="staging")
    every(memory, minutes(20), minutes(40), 120, 10)
    memory.resolve(minutes(41))

    drift = Problem("Config drift detected on edge nodes", "low-level noise", "edge", "info")
    every(drift, minutes(3), end, 300, 20)

    search = Problem("Search latency p99 above 2s", "late, turns critical", "search", "high")
    every(search, minutes(100), minutes(110), 20, 2)
    every(search, minutes(110), end, 20, 2, severity="critical")

    storm = Problem("Orders consumer lag growing", "storm, resolved", "orders-consumer", "high")
    problems = [flapping, queue, backup, payments, certificate, database_down, memory, drift, search, storm]
    remaining = TOTAL_ALERTS - sum(len(p.events) for p in problems) - 1  # one slot for the resolve
    assert remaining >= 200, f"the other problems leave only {remaining} alerts for the storm"
    for _ in range(remaining):
        storm.fire(minutes(30) + rng.uniform(0, 60))  # hundreds within one minute
    storm.resolve(minutes(45))
    return problems


def alerts_in_order(problems: list[Problem]) -> list[tuple[float, Problem, NormalizedAlert]]:
    timeline = []
    for index, problem in enumerate(problems):
        for n, (at, status, severity) in enumerate(sorted(problem.events)):
            timeline.append((at, problem, NormalizedAlert(
                source="generic",
                source_event_id=f"noise-{index}-{n}",
                service=problem.service,
                env=problem.env,
                severity=severity,
                fingerprint=f"noise-{index}",
                title=problem.title,
                description=f"{problem.kind} problem from bench/noise.py",
                occurred_at=T0 + timedelta(seconds=at),
                status=status,
            )))
    timeline.sort(key=lambda item: item[0])
    return timeline


async def replay(pool, sb: SlackSandbox, problems: list[Problem]) -> float:
    """Feed the stream second by second of simulated time; returns the wall time it took."""
    pipeline = AlertPipeline(pool, PipelineSettings(default_channel=CHANNEL))
    delivery = SlackDelivery(pool, AsyncWebClient(token=SlackSandbox.BOT_TOKEN, base_url=sb.api_url))
    notifier = IncidentNotifier(pool, delivery, default_channel=CHANNEL)
    sweep = IncidentSweep(IncidentActions(pool), pipeline)  # IncidentActions.sweep + release of held-back incidents
    timeline = alerts_in_order(problems)
    started = time.perf_counter()
    cursor = 0
    for second in range(int((SIMULATED + SETTLE).total_seconds())):
        while cursor < len(timeline) and timeline[cursor][0] < second + 1:
            at, _, alert = timeline[cursor]
            await pipeline.ingest(alert, now=T0 + timedelta(seconds=at))
            cursor += 1
        sim_now = T0 + timedelta(seconds=second + 1)
        for _ in range(20):  # what is due now, until nothing is (bounded: a bug must not hang the bench)
            if await notifier.deliver_due(now=sim_now) == 0:
                break
        if (second + 1) % 60 == 0:
            await sweep.run_once(now=sim_now)
    return time.perf_counter() - started


@dataclass
class Counted:
    posts: int = 0
    replies: int = 0
    updates: int = 0
    last_text: str = ""


def count_calls(calls: list[ApiCall], problems: list[Problem]) -> tuple[dict[str, Counted], Counted]:
    """Per problem (matched by its title in the message text) and for anything unmatched."""
    per = {p.title: Counted() for p in problems}
    other = Counted()
    for call in calls:
        if call.method not in ("chat.postMessage", "chat.update"):
            continue
        text = str(call.params.get("text") or "")
        counted = next((per[title] for title in per if title in text), other)
        if call.method == "chat.update":
            counted.updates += 1
        elif call.params.get("thread_ts"):
            counted.replies += 1
        else:
            counted.posts += 1
        counted.last_text = text
    return per, other


def shown_state(text: str) -> str:
    state = "resolved" if text.startswith(":white_check_mark: Resolved") else "firing"
    severity = text.split("[", 1)[1].split("]", 1)[0].lower() if "[" in text else "?"
    return f"{state} [{severity}]"


def verdict(ok: bool) -> str:
    return "meets" if ok else "MISSES"


async def main(seed: int) -> None:
    problems = noisy_stream(seed)
    # No rate limits: two hours of simulated time are replayed in seconds of wall time, and Slack's
    # limits are per wall-clock minute; what this counts (posts, edits) does not depend on pacing.
    sb = SlackSandbox(port=0, rate_limits=False)
    sb.add_channel("C0ALERTS", CHANNEL.lstrip("#"))
    await sb.start()
    try:
        async with fresh_database("pulser-bench-noise") as dsn:
            pool = await database.create_pool(dsn, max_size=4)
            try:
                await apply_migrations(pool)
                wall = await replay(pool, sb, problems)
            finally:
                await pool.close()
        per, other = count_calls(sb.calls, problems)
    finally:
        await sb.stop()

    alerts = sum(len(p.events) for p in problems)
    posts = sum(c.posts for c in per.values()) + other.posts
    replies = sum(c.replies for c in per.values()) + other.replies
    updates = sum(c.updates for c in per.values()) + other.updates
    messages = posts + replies
    reduction = 100.0 * (1 - messages / alerts)
    critical_unposted = sum(p.critical_alerts for p in problems if per[p.title].posts == 0)
    where = "DATABASE_URL server (fresh database)" if os.environ.get("DATABASE_URL") else "embedded Postgres in a temp dir"

    print(f"# noise: {alerts:,} alerts from {len(problems)} problems over {SIMULATED.total_seconds() / 3600:.0f} h of "
          f"simulated time → Slack sandbox (seed {seed}); default routing, group window 60 min, update debounce 2 s")
    print(f"# real AlertPipeline.ingest + IncidentNotifier.deliver_due each simulated second + incident sweep each "
          f"simulated minute; {where}; {platform.python_implementation()} {platform.python_version()}")
    print(f"# command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"{'problem':<56} {'kind':<24} {'alerts':>6} {'crit':>5} {'posts':>5} {'replies':>7} {'updates':>7}  "
          f"{'final (sent → shown)'}")
    for p in problems:
        c = per[p.title]
        shown = shown_state(c.last_text) if c.last_text else "never shown"
        print(f"{p.title:<56} {p.kind:<24} {len(p.events):>6} {p.critical_alerts:>5} {c.posts:>5} {c.replies:>7} "
              f"{c.updates:>7}  {p.final_status} → {shown}")
    if other.posts or other.replies or other.updates:
        print(f"{'(messages naming no problem)':<56} {'':<24} {'':>6} {'':>5} {other.posts:>5} {other.replies:>7} {other.updates:>7}")
    print(f"{'total':<56} {'':<24} {alerts:>6} {sum(p.critical_alerts for p in problems):>5} {posts:>5} {replies:>7} {updates:>7}")
    print()
    print(f"{'figure':<44} {'value':>10}  target")
    print(f"{'top-level posts (chat.postMessage)':<44} {posts:>10}  ≤ {TARGET_POSTS}: {verdict(posts <= TARGET_POSTS)}")
    print(f"{'thread replies':<44} {replies:>10}")
    print(f"{'messages (posts + replies) vs alerts':<44} {f'{messages} / {alerts}':>10}")
    print(f"{'fewer messages than alerts':<44} {f'{reduction:.1f} %':>10}  ≥ {TARGET_REDUCTION:.0f} %: "
          f"{verdict(reduction >= TARGET_REDUCTION)}")
    print(f"{'critical alerts unposted':<44} {critical_unposted:>10}  0: {verdict(critical_unposted == 0)}")
    print(f"{'chat.update (edits in place, no new message)':<44} {updates:>10}")
    print(f"{'replay wall time':<44} {f'{wall:.1f} s':>10}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7, help="seed of the stream's randomness (default 7)")
    args = parser.parse_args()
    configure_logging("error")  # per-alert info lines and spike warnings would bury the table
    asyncio.run(main(args.seed))

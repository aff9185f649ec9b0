"""Alert storms under Slack's rate limits: how many posts, how many 429s, how soon everything is named.

Unlike bench/pipeline.py (which measures raw throughput with the limits off and storms disabled),
this runs everything as it runs in production: the Slack sandbox enforces Slack's published rate
limits (sandbox/rate_limits.py) and `pulser run` keeps its defaults (its own pacing, and storm
digests from the fifth new incident a minute in a channel). Each scenario gets a fresh database
(an embedded Postgres in a temp dir, or a new database on the server DATABASE_URL names), a fresh
sandbox (so fresh rate-limit buckets) and fresh Pulser processes, and sends open-loop
(bench/pipeline.py's sender: request i goes at t0 + i/rate whatever earlier ones do). Nothing is
sent to warm Pulser up first: a warm-up burst would itself open a storm.

Scenarios:

* distinct: `--alerts` generic alerts (default 300) over `--seconds` (default 10), one channel,
  every tenth critical, the rest high or medium, each its own title and fingerprint.
* distinct-large: the same with 2,000 alerts over 60 s (only with `--large`: it takes longer).
* heartbeats: 200 heartbeat apps in one channel whose deadlines fall over 20 s (interval 60 s,
  grace 5 s; registered in Postgres after Pulser is up — with the channel's ID, as registration
  through Slack or the API stores it — the watcher woken by the NOTIFY a deadline change sends).
  Each miss is an incident like any other, so these fold into the channel's storm digest.
* replicas: two `pulser run` processes on one Postgres and one sandbox, the distinct scenario's
  alerts sent round-robin to their two sidecars.

Where an incident (or app) is "named": any Web API call Slack accepted whose parameters contain
its title (app name) — its own chat.postMessage, the storm digest's post or chat.update, a thread
reply under the digest. Calls the sandbox refused with 429 are recorded by the sandbox too; they
are told apart here (see `RefusalMarks`) and never count as naming anything or as a post.

Printed per scenario, each beside its target: 429s (total and by method), top-level posts
(chat.postMessage without thread_ts), time until every critical is in Slack (per critical: first
naming − its send; p50 and max), time from the last alert's send until every incident is named
(and how many never were within `--drain` seconds), chat.update calls, double posts (replicas:
titles in more than one top-level post that is not a storm digest), and Pulser's CPU seconds and
peak RSS. It asserts nothing: figures are for reading, on a quiet machine.

    .venv/bin/python bench/storm.py [--scenario distinct] [--scenario heartbeats] [--large] [--drain 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from alerts.applications import validate_application  # noqa: E402
from bench.measure import free_port, memory_kib, percentile  # noqa: E402
from bench.pipeline import (  # noqa: E402
    ALERT_CHANNEL,
    TITLE_RE,
    CpuMeter,
    Delivery,
    fresh_database,
    local_postmaster,
    send_open_loop,
    wait_until_quiet,
)
from bot.logging import configure_logging  # noqa: E402

from sandbox import SlackSandbox  # noqa: E402
from sandbox.rate_limits import RateLimiter  # noqa: E402
from sandbox.state import ApiCall  # noqa: E402
from storage import applications, database  # noqa: E402
from tests import webhook_senders  # noqa: E402

SCENARIOS = ("distinct", "distinct-large", "heartbeats", "replicas")
ALERT_CHANNEL_ID = "C0ALERTS"
DIGEST_PREFIX = "Alert storm"
SEVERITY_CYCLE = ("high", "medium")  # the nine non-critical alerts of every ten alternate
QUIET_AFTER = 5.0  # seconds without a Web API call: the last digest update has landed

# Targets (what "good" means for a storm; printed beside the figures, never asserted).
TARGET_POSTS = 10
TARGET_CRITICAL_S = 5.0
TARGET_ALL_NAMED_S = 15.0
TARGET_HEARTBEAT_POSTS = 5
TARGET_HEARTBEAT_S = 5.0

HEARTBEAT_APPS = 200
HEARTBEAT_SPREAD = 20.0  # seconds over which their deadlines fall
HEARTBEAT_LEAD = 5.0  # seconds from registering to the first deadline
HEARTBEAT_INTERVAL = 60
HEARTBEAT_GRACE = 5


class RefusalMarks(RateLimiter):
    """Slack's limits, as the sandbox enforces them, noting *which* recorded calls were refused.

    The sandbox records a call before it checks the limits (a refused call is in `sb.calls` like
    an accepted one) and runs no await in between, so the call being checked is the last one
    recorded. `refused` (the Counter by method) stays as the sandbox keeps it."""

    def __init__(self) -> None:
        super().__init__()
        self.latest: Callable[[], ApiCall | None] = lambda: None
        self.refused_calls: set[int] = set()  # id() of refused ApiCall objects (the list keeps them alive)

    def check(self, method: str, channel: str | None = None) -> int:
        retry_after = super().check(method, channel)
        call = self.latest()
        if retry_after and call is not None and call.method == method:
            self.refused_calls.add(id(call))
        return retry_after

    def accepted(self, calls: list[ApiCall]) -> list[ApiCall]:
        return [c for c in calls if id(c) not in self.refused_calls]


async def start_sandbox() -> tuple[SlackSandbox, RefusalMarks]:
    limiter = RefusalMarks()
    sb = SlackSandbox(port=0, rate_limits=limiter)
    limiter.latest = lambda: sb.calls[-1] if sb.calls else None
    sb.add_channel(ALERT_CHANNEL_ID, ALERT_CHANNEL)
    await sb.start()
    return sb, limiter


def pulser_env(sb: SlackSandbox, dsn: str, http_port: int, **extra: str) -> dict[str, str]:
    """bench/pipeline.py's environment minus its PULSER_SLACK_PACING=0 / PULSER_STORM_THRESHOLD=0:
    pacing and storms are what is measured here, at their defaults."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("SLACK_", "PULSER_", "HTTP", "ALL_PROXY"))}
    env.update(webhook_senders.SECRETS_ENV)
    env.update(
        SLACK_BOT_TOKEN=SlackSandbox.BOT_TOKEN, SLACK_APP_TOKEN=SlackSandbox.APP_TOKEN, SLACK_API_URL=sb.api_url,
        SLACK_CHANNEL=f"#{ALERT_CHANNEL}", DATABASE_URL=dsn, PULSER_HTTP_PORT=str(http_port),
        LOG_LEVEL="warning", LOG_FORMAT="json", PYTHONPATH=str(REPO), **extra,
    )
    return env


async def start_pulsers(sb: SlackSandbox, dsn: str, count: int) -> tuple[list[subprocess.Popen], list[int]]:
    """`count` `pulser run` processes on one database, started one after the other (the first
    applies the migrations), each healthy and holding its own Socket Mode connection."""
    processes: list[subprocess.Popen] = []
    ports: list[int] = []
    try:
        for n in range(count):
            port = free_port()
            process = subprocess.Popen([sys.executable, "-m", "bot.cli", "run"], env=pulser_env(sb, dsn, port), cwd=REPO)
            processes.append(process)
            ports.append(port)
            await wait_healthy(process, port)
            await sb.state.changed.wait_until(lambda: len(sb.hub.usable_connections()) > n, 120)
    except BaseException:
        stop_pulsers(processes)
        raise
    return processes, ports


async def wait_healthy(process: subprocess.Popen, port: int) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(1200):
            if process.poll() is not None:
                raise RuntimeError(f"pulser exited with {process.returncode}")
            try:
                async with http.get(f"http://127.0.0.1:{port}/health") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError("pulser did not become healthy")


def stop_pulsers(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- what Slack was shown ----------------------------------------------------------------------


def is_top_level_post(call: ApiCall) -> bool:
    return call.method == "chat.postMessage" and not call.params.get("thread_ts")


def is_digest(call: ApiCall) -> bool:
    text = call.params.get("text")
    return isinstance(text, str) and text.startswith(DIGEST_PREFIX)


def incident_keys(call: ApiCall, run_id: str) -> set[str]:
    """Every incident of this run the call names, anywhere in its parameters (blocks and
    attachments arrive as JSON strings; a title has no character JSON would escape)."""
    return {f"{m.group(2)}{int(m.group(3))}" for m in TITLE_RE.finditer(json.dumps(call.params)) if m.group(1) == run_id}


def first_named(calls: list[ApiCall], names: Callable[[ApiCall], set[str]]) -> dict[str, float]:
    """key → the time of the first (accepted) call naming it."""
    first: dict[str, float] = {}
    for call in calls:
        for key in names(call):
            first.setdefault(key, call.at)
    return first


async def wait_until_named(
    sb: SlackSandbox, limiter: RefusalMarks, expected: set[str], names: Callable[[ApiCall], set[str]], until: float
) -> None:
    """Until every expected key is named by an accepted call, or time.time() passes `until`."""
    seen: set[str] = set()
    cursor = 0
    while time.time() < until:
        # The sandbox shares this event loop and checks a call's limits in the same step that
        # records it, so every call listed here has been accepted or refused already.
        calls = sb.calls
        for call in limiter.accepted(calls[cursor:]):
            seen |= names(call) & expected
        cursor = len(calls)
        if expected <= seen:
            return
        await asyncio.sleep(0.1)


# --- reporting ----------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "meets" if ok else "MISSES"


def line(label: str, measured: str, target: str = "", ok: bool | None = None) -> str:
    judged = "" if ok is None else verdict(ok)
    return f"  {label:<52} {measured:>18}   {target:<16} {judged}"


def seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} s"


def refusals(limiter: RefusalMarks, before: Counter[str]) -> tuple[int, str]:
    """429s since `before` (a copy of `limiter.refused` taken when the scenario began)."""
    during = limiter.refused - before
    by_method = ", ".join(f"{method} {n}" for method, n in sorted(during.items())) or "none"
    return sum(during.values()), by_method


@dataclass
class StormFigures:
    """What one incident scenario produced, ready to print."""

    name: str
    alerts: int
    criticals: int
    seconds: float
    deliveries: list[Delivery]
    calls: list[ApiCall]  # accepted calls only
    refused_total: int
    refused_by_method: str
    cpu: list[CpuMeter]
    peak_rss_mib: list[float]
    run_id: str
    severities: dict[str, str] = field(default_factory=dict)


def report_storm(f: StormFigures, *, replicas: bool) -> None:
    sent = {d.key: d.sent_at for d in f.deliveries}
    last_sent = max(sent.values())
    named = first_named(f.calls, lambda c: incident_keys(c, f.run_id))
    top = [c for c in f.calls if is_top_level_post(c)]
    digests = [c for c in top if is_digest(c)]
    own = [c for c in top if not is_digest(c)]
    replies = [c for c in f.calls if c.method == "chat.postMessage" and c.params.get("thread_ts")]
    updates = [c for c in f.calls if c.method == "chat.update"]
    criticals = [k for k, s in f.severities.items() if s == "critical"]
    critical_delays = [named[k] - sent[k] for k in criticals if k in named]
    criticals_missing = len(criticals) - len(critical_delays)
    never = [k for k in sent if k not in named]
    all_named_after = (max(named[k] for k in sent if k in named) - last_sent) if len(never) < len(sent) else None
    own_critical = sum(1 for c in own for k in incident_keys(c, f.run_id) if f.severities.get(k) == "critical")
    non_202 = sum(1 for d in f.deliveries if d.status != 202)
    span = last_sent - min(sent.values())

    print(f"## {f.name}: {f.alerts} distinct alerts over {f.seconds:.0f} s ({f.criticals} critical), "
          f"one channel{', round-robin to two `pulser run` replicas' if replicas else ''}")
    print(f"  sent in {span:.1f} s; answers other than 202: {non_202}")
    print(line("", "measured", "target"))
    print(line("429s received", str(f.refused_total), "0", f.refused_total == 0))
    print(line("  by method", f.refused_by_method))
    print(line("top-level posts (chat.postMessage, no thread_ts)", str(len(top)), f"≤ {TARGET_POSTS}",
               len(top) <= TARGET_POSTS))
    print(line("  of which storm digests / own posts", f"{len(digests)} / {len(own)}"))
    print(line("  own posts of critical incidents", str(own_critical)))
    print(line("thread replies", str(len(replies))))
    print(line("chat.update calls (accepted)", str(len(updates))))
    worst = max(critical_delays) if critical_delays and not criticals_missing else None
    print(line("every critical in Slack: max (first naming − send)", seconds(worst), f"≤ {TARGET_CRITICAL_S:.0f} s",
               worst is not None and worst <= TARGET_CRITICAL_S))
    print(line("  p50 / max over the criticals named",
               f"{statistics.median(critical_delays):.2f} / {max(critical_delays):.2f} s" if critical_delays else "—"))
    print(line("  criticals never named", str(criticals_missing)))
    every = all_named_after if not never else None
    print(line("every incident named, after the last alert's send", seconds(every), f"≤ {TARGET_ALL_NAMED_S:.0f} s",
               every is not None and every <= TARGET_ALL_NAMED_S))
    if never:
        print(line("  last one named (of those that were)", seconds(all_named_after)))
    print(line("  incidents never named within the drain", str(len(never)), "0", not never))
    if replicas:
        doubles = double_posts(own, f.run_id)
        print(line("double posts (a title in > 1 own top-level post)", str(doubles), "0", doubles == 0))
    for n, (meter, rss) in enumerate(zip(f.cpu, f.peak_rss_mib)):
        who = f"pulser #{n + 1}" if len(f.cpu) > 1 else "pulser"
        print(line(f"{who}: CPU seconds / peak RSS", f"{meter.used['pulser']:.1f} s / {rss:.0f} MiB"))
    # The machine view counts one Pulser as "pulser"; with replicas, the other is in "everything else".
    print("  " + ("(pulser = #1) " if len(f.cpu) > 1 else "") + f.cpu[0].summary(f.alerts))


def double_posts(own: list[ApiCall], run_id: str) -> int:
    """Titles that appear in more than one top-level post that is not a storm digest."""
    count: dict[str, int] = {}
    for call in own:
        for key in incident_keys(call, run_id):
            count[key] = count.get(key, 0) + 1
    return sum(1 for n in count.values() if n > 1)


# --- incident scenarios -------------------------------------------------------------------------


def storm_alerts(run_id: str, total: int) -> tuple[list[Delivery], dict[str, str]]:
    """`total` distinct generic alerts, every tenth critical, the others high and medium in turn."""
    deliveries: list[Delivery] = []
    severities: dict[str, str] = {}
    for i in range(total):
        key = f"a{i}"
        severity = "critical" if i % 10 == 0 else SEVERITY_CYCLE[i % 2]
        payload = {
            "title": f"bench {run_id} {key}",
            "fingerprint": f"bench-{run_id}-{key}",
            "service": "bench",
            "env": "production",
            "severity": severity,
            "description": "synthetic alert from bench/storm.py",
            "event_id": f"bench-{run_id}-{i}",
        }
        headers, body = webhook_senders.generic(payload)
        deliveries.append(Delivery(key, headers, body))
        severities[key] = severity
    return deliveries, severities


async def send_round_robin(urls: list[str], deliveries: list[Delivery], rate: float) -> None:
    """Delivery i to urls[i % n] at about t0 + i/rate: one open-loop sender per URL, each at
    rate/n, started 1/rate apart so their requests interleave."""
    n = len(urls)

    async def sender(k: int) -> None:
        await asyncio.sleep(k / rate)
        await send_open_loop(urls[k], deliveries[k::n], rate / n)

    await asyncio.gather(*(sender(k) for k in range(n)))


async def run_storm(name: str, total: int, span: float, drain: float, *, replicas: int = 1) -> None:
    run_id = uuid.uuid4().hex[:8]
    deliveries, severities = storm_alerts(run_id, total)
    rate = total / span
    sb, limiter = await start_sandbox()
    try:
        async with fresh_database("pulser-bench-storm") as dsn:
            processes, ports = await start_pulsers(sb, dsn, replicas)
            try:
                postmaster = await local_postmaster(dsn)
                meters = [CpuMeter(p.pid, postmaster) for p in processes]
                sb.reset()  # start-up calls (auth.test, connections) are not the storm's
                before = Counter(limiter.refused)
                for meter in meters:
                    meter.start()
                await send_round_robin([f"http://127.0.0.1:{port}/webhooks/generic" for port in ports], deliveries, rate)
                last_sent = max(d.sent_at for d in deliveries)
                await wait_until_named(sb, limiter, set(severities), lambda c: incident_keys(c, run_id), last_sent + drain)
                # The digest keeps being updated after the last incident is named: count those too.
                await wait_until_quiet(sb, quiet=QUIET_AFTER, limit=max(QUIET_AFTER, last_sent + drain - time.time()))
                for meter in meters:
                    meter.stop()
                peaks = [memory_kib(p.pid)["VmHWM"] / 1024 for p in processes]
            finally:
                stop_pulsers(processes)
    finally:
        await sb.stop()
    total_refused, by_method = refusals(limiter, before)
    report_storm(
        StormFigures(
            name=name, alerts=total, criticals=sum(1 for s in severities.values() if s == "critical"), seconds=span,
            deliveries=deliveries, calls=limiter.accepted(list(sb.calls)), refused_total=total_refused,
            refused_by_method=by_method, cpu=meters, peak_rss_mib=peaks, run_id=run_id, severities=severities,
        ),
        replicas=replicas > 1,
    )


# --- heartbeats ---------------------------------------------------------------------------------


async def register_missing_apps(dsn: str, run_id: str) -> dict[str, float]:
    """HEARTBEAT_APPS apps whose last heartbeat was long enough ago that their deadlines fall
    over the next HEARTBEAT_SPREAD seconds; returns name → deadline (epoch seconds).

    Registered as the API does (validate_application, create_application), then each clock set
    as the heartbeat writer would have left it after a heartbeat at deadline − interval − grace,
    and the watcher woken with the NOTIFY a moved deadline sends."""
    pool = await database.create_pool(dsn, max_size=2)
    try:
        names = [f"hb-{run_id}-{i:03d}" for i in range(HEARTBEAT_APPS)]  # equal lengths: no name is in another
        ids = []
        for name in names:
            spec = validate_application(
                {"name": name, "expected_interval": HEARTBEAT_INTERVAL, "grace_period": HEARTBEAT_GRACE,
                 "channel": ALERT_CHANNEL_ID},
                default_channel=ALERT_CHANNEL_ID,
            )
            ids.append((await applications.create_application(pool, spec, created_by="bench")).id)
        first = datetime.now(timezone.utc) + timedelta(seconds=HEARTBEAT_LEAD)
        deadlines = [first + timedelta(seconds=HEARTBEAT_SPREAD * i / HEARTBEAT_APPS) for i in range(HEARTBEAT_APPS)]
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """
                UPDATE applications AS a
                   SET last_heartbeat = u.deadline - make_interval(secs => $3::float8 + $4::float8),
                       due_at = u.deadline - make_interval(secs => $4::float8),
                       next_deadline = u.deadline, state = 'up', updated_at = now()
                  FROM unnest($1::bigint[], $2::timestamptz[]) AS u(id, deadline)
                 WHERE a.id = u.id
                """,
                ids, deadlines, float(HEARTBEAT_INTERVAL), float(HEARTBEAT_GRACE),
            )
            await applications.notify_deadline(conn, first)
    finally:
        await pool.close()
    return {name: deadline.timestamp() for name, deadline in zip(names, deadlines)}


def app_names(call: ApiCall, run_id: str) -> set[str]:
    return set(re.findall(rf"hb-{run_id}-\d{{3}}", json.dumps(call.params)))


async def run_heartbeats(drain: float) -> None:
    run_id = uuid.uuid4().hex[:8]
    sb, limiter = await start_sandbox()
    try:
        async with fresh_database("pulser-bench-storm") as dsn:
            processes, _ = await start_pulsers(sb, dsn, 1)
            try:
                meter = CpuMeter(processes[0].pid, await local_postmaster(dsn))
                sb.reset()
                before = Counter(limiter.refused)
                meter.start()
                deadlines = await register_missing_apps(dsn, run_id)
                last_deadline = max(deadlines.values())
                await wait_until_named(sb, limiter, set(deadlines), lambda c: app_names(c, run_id), last_deadline + drain)
                await wait_until_quiet(sb, quiet=QUIET_AFTER, limit=max(QUIET_AFTER, last_deadline + drain - time.time()))
                meter.stop()
                peak = memory_kib(processes[0].pid)["VmHWM"] / 1024
            finally:
                stop_pulsers(processes)
    finally:
        await sb.stop()
    calls = limiter.accepted(list(sb.calls))
    named = first_named(calls, lambda c: app_names(c, run_id))
    delays = [named[n] - d for n, d in deadlines.items() if n in named]
    never = len(deadlines) - len(delays)
    top = [c for c in calls if is_top_level_post(c)]
    replies = [c for c in calls if c.method == "chat.postMessage" and c.params.get("thread_ts")]
    updates = [c for c in calls if c.method == "chat.update"]
    total_refused, by_method = refusals(limiter, before)
    worst = max(delays) if delays and not never else None

    print(f"## heartbeats: {HEARTBEAT_APPS} apps in one channel, deadlines over {HEARTBEAT_SPREAD:.0f} s "
          f"(interval {HEARTBEAT_INTERVAL} s, grace {HEARTBEAT_GRACE} s)")
    print(line("", "measured", "target"))
    print(line("429s received", str(total_refused), "0", total_refused == 0))
    print(line("  by method", by_method))
    print(line("top-level posts (chat.postMessage, no thread_ts)", str(len(top)), f"≤ {TARGET_HEARTBEAT_POSTS}",
               len(top) <= TARGET_HEARTBEAT_POSTS))
    print(line("thread replies", str(len(replies))))
    print(line("chat.update calls (accepted)", str(len(updates))))
    print(line("every app named: max (first naming − its deadline)", seconds(worst), f"≤ {TARGET_HEARTBEAT_S:.0f} s",
               worst is not None and worst <= TARGET_HEARTBEAT_S))
    if delays:
        print(line("  p50 / p90 / max over the apps named",
                   f"{statistics.median(delays):.2f} / {percentile(delays, 90):.2f} / {max(delays):.2f} s"))
    print(line("  apps never named within the drain", str(never), "0", never == 0))
    print(line("pulser: CPU seconds / peak RSS", f"{meter.used['pulser']:.1f} s / {peak:.0f} MiB"))
    print("  " + meter.summary(HEARTBEAT_APPS))


# --- main ---------------------------------------------------------------------------------------


async def main(scenarios: list[str], alerts: int, span: float, drain: float) -> None:
    print(f"# alert storms with Slack's rate limits on (sandbox) and Pulser's defaults; drain {drain:.0f} s")
    where = "a fresh database on the DATABASE_URL server" if os.environ.get("DATABASE_URL") else "embedded Postgres"
    print(f"# {platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores shared by "
          f"Pulser (`pulser run`, own process), {where}, and this process (sandbox + load generator)")
    print(f"# command: {shlex.join([sys.executable, *sys.argv])}")
    for scenario in scenarios:
        if scenario == "distinct":
            await run_storm("distinct", alerts, span, drain)
        elif scenario == "distinct-large":
            await run_storm("distinct-large", 2000, 60.0, drain)
        elif scenario == "heartbeats":
            await run_heartbeats(drain)
        elif scenario == "replicas":
            await run_storm("replicas", alerts, span, drain, replicas=2)
        sys.stdout.flush()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", action="append", choices=SCENARIOS,
                        help="run this scenario (repeatable; default: all but distinct-large)")
    parser.add_argument("--large", action="store_true", help="include distinct-large (2,000 alerts over 60 s)")
    parser.add_argument("--alerts", type=int, default=300, help="alerts in distinct and replicas (default 300)")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds they are sent over (default 10)")
    parser.add_argument("--drain", type=float, default=60.0,
                        help="seconds after the last send (deadline) to wait for everything to be named (default 60)")
    args = parser.parse_args()
    chosen = list(args.scenario or [s for s in SCENARIOS if s != "distinct-large"])
    if args.large and "distinct-large" not in chosen:
        chosen.insert(1 if "distinct" in chosen else 0, "distinct-large")
    configure_logging("warning")
    asyncio.run(main(chosen, args.alerts, args.seconds, args.drain))

"""Webhook received → Slack message: latency of the alert pipeline at a sustained rate.

Starts the Slack sandbox and a Postgres here (embedded in a temp dir, or a fresh database on the
server DATABASE_URL names), and runs `pulser run` as its own process against both, so Pulser's
event loop is not shared with the load generator (the figures are Pulser's, not this script's).
The machine's cores are shared, though: sandbox, load generator, Pulser and Postgres all run here.

Scenario "unique": `--rate` generic webhooks a second for `--seconds`, each with its own title and
fingerprint (so each opens an incident and costs one chat.postMessage), sent open-loop (at
t0 + i/rate, never waiting for earlier answers). Latency per alert = the time the sandbox recorded
the chat.postMessage carrying its title minus the time its request was sent. Also printed: the
202 latency, the achieved send rate, alerts never posted within `--drain` seconds, the CPU each
party used (Pulser, our Postgres, this process, and everyone else on the machine — the cores are
shared, so a busy neighbour shows), and where the time went, per stage, from the timestamps Pulser
wrote in Postgres.

Scenario "repeats": the same rate, spread over `--repeats` problems (0 skips it): one post per
problem, and debounced chat.update calls in place of a message per repeat.

    .venv/bin/python bench/pipeline.py [--rate 200] [--seconds 30] [--repeats 20] [--drain 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from alerts.pipeline import MAX_DEBOUNCE  # noqa: E402
from bench.measure import free_port, memory_kib, percentile  # noqa: E402
from bot.logging import configure_logging  # noqa: E402

from sandbox import SlackSandbox  # noqa: E402
from sandbox.state import ApiCall  # noqa: E402
from storage.embedded import EmbeddedPostgres  # noqa: E402
from tests import webhook_senders  # noqa: E402

TARGET_P99_MS = 250.0
TARGET_RATE = 200.0
ALERT_CHANNEL = "ops-alerts"
# "bench <run> a<index>" in a unique alert's title, "bench <run> p<problem>" in a repeat's.
TITLE_RE = re.compile(r"bench ([0-9a-f]{8}) ([ap])(\d+)")
COUNT_RE = re.compile(r"^\*Count\*\n×([\d,]+)$")


@asynccontextmanager
async def fresh_database(prefix: str) -> AsyncIterator[str]:
    """DSN of an empty database: on the server DATABASE_URL names (created here, dropped after),
    else on an embedded server in a temp dir."""
    server_dsn = os.environ.get("DATABASE_URL")
    if not server_dsn:
        with tempfile.TemporaryDirectory(prefix=f"{prefix}-") as tmp:
            server = EmbeddedPostgres(Path(tmp))
            dsn = await server.start()
            try:
                yield dsn
            finally:
                await server.stop()
        return
    name = f"{prefix.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    parts = urlsplit(server_dsn)
    try:
        yield urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))
    finally:
        admin = await asyncpg.connect(server_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@dataclass
class Delivery:
    """One webhook request: what goes on the wire, when it was due, when it went and came back."""

    key: str  # "a17" for unique alert 17, "p3" for a repeat of problem 3
    headers: dict
    body: bytes
    due: float = 0.0  # perf_counter
    sent_at: float = 0.0  # time.time(), the sandbox's clock
    lag: float = 0.0  # sent − due, seconds: how far the load generator fell behind
    answered_ms: float | None = None
    status: int | None = None


@dataclass
class Run:
    deliveries: list[Delivery]
    elapsed: float = 0.0  # first send → last send
    calls: list[ApiCall] = field(default_factory=list)


def generic_delivery(run_id: str, key: str, event: int, env: str = "production") -> Delivery:
    payload = {
        "title": f"bench {run_id} {key}",
        "fingerprint": f"bench-{run_id}-{key}",
        "service": "bench",
        "env": env,
        "severity": "high",
        "description": "synthetic alert from bench/pipeline.py",
        "event_id": f"bench-{run_id}-{event}",  # each delivery its own, so none is a duplicate
    }
    headers, body = webhook_senders.generic(payload)
    return Delivery(key, headers, body)


async def send_open_loop(url: str, deliveries: list[Delivery], rate: float) -> float:
    """Send delivery i at t0 + i/rate whatever earlier ones are doing; returns the send span."""
    connector = aiohttp.TCPConnector(limit=1024, limit_per_host=1024)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:

        async def post(d: Delivery) -> None:
            d.sent_at = time.time()
            d.lag = time.perf_counter() - d.due
            started = time.perf_counter()
            try:
                async with http.post(url, data=d.body, headers=d.headers) as response:
                    await response.read()
                    d.status = response.status
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                d.status = None
                print(f"# request failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            d.answered_ms = (time.perf_counter() - started) * 1000

        t0 = time.perf_counter() + 0.05
        tasks = []
        for i, d in enumerate(deliveries):
            d.due = t0 + i / rate
            wait = d.due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            tasks.append(asyncio.create_task(post(d)))
        await asyncio.gather(*tasks)
    sent = [d.sent_at for d in deliveries]
    return max(sent) - min(sent)


def title_key(call: ApiCall, run_id: str) -> str | None:
    text = call.params.get("text")
    match = TITLE_RE.search(text) if isinstance(text, str) else None
    if match is None or match.group(1) != run_id:
        return None
    return f"{match.group(2)}{int(match.group(3))}"


async def wait_for_posts(sb: SlackSandbox, run_id: str, expected: set[str], drain: float) -> None:
    """Until every expected key has its chat.postMessage, or `drain` seconds pass."""
    deadline = time.monotonic() + drain
    seen: set[str] = set()
    cursor = 0
    while time.monotonic() < deadline:
        calls = sb.calls
        for call in calls[cursor:]:
            if call.method == "chat.postMessage" and (key := title_key(call, run_id)) is not None:
                seen.add(key)
        cursor = len(calls)
        if expected <= seen:
            return
        await asyncio.sleep(0.1)


async def wait_until_quiet(sb: SlackSandbox, quiet: float, limit: float) -> None:
    """Until no chat.* call arrived for `quiet` seconds (debounced updates have landed), at most `limit`."""
    deadline = time.monotonic() + limit
    last_count, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = len(sb.calls)
        if count != last_count:
            last_count, last_change = count, time.monotonic()
        elif time.monotonic() - last_change >= quiet:
            return
        await asyncio.sleep(0.1)


def shown_count(params: dict) -> int | None:
    """The "Count ×N" fact of an incident message as Slack would show it."""
    attachments = params.get("attachments")
    if isinstance(attachments, str):
        attachments = json.loads(attachments)
    for attachment in attachments or []:
        for block in attachment.get("blocks", []):
            for fld in block.get("fields", []) or []:
                match = COUNT_RE.match(fld.get("text", ""))
                if match:
                    return int(match.group(1).replace(",", ""))
    return None


async def stage_breakdown(
    dsn: str, run_id: str, deliveries: list[Delivery], calls: list[ApiCall]
) -> list[tuple[str, list[float]]]:
    """Per alert, from what Pulser wrote in Postgres: where between send and post the time went.

    envelopes.received_at and incidents.created_at are now() of their transactions (start time);
    incident_messages.last_rendered_at is the notifier round's start; slack_deliveries.at − latency
    is when the chat.postMessage left Pulser."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            """
            SELECT i.title,
                   extract(epoch FROM e.received_at) AS received,
                   extract(epoch FROM i.created_at) AS ingested,
                   extract(epoch FROM m.last_rendered_at) AS round_started,
                   extract(epoch FROM d.at) - d.latency_ms / 1000.0 AS call_started,
                   d.latency_ms
              FROM envelopes e
              JOIN incidents i ON i.title = e.payload->>'title'
              JOIN incident_messages m ON m.incident_id = i.id
              JOIN slack_deliveries d ON d.incident_id = i.id AND d.method = 'chat.postMessage' AND d.ok
             WHERE e.source = 'generic' AND e.payload->>'title' LIKE $1
            """,
            f"bench {run_id} a%",
        )
    finally:
        await conn.close()
    sent = {f"bench {run_id} {d.key}": d.sent_at for d in deliveries}
    recorded: dict[str, float] = {}
    for call in calls:
        key = title_key(call, run_id)
        if call.method == "chat.postMessage" and key is not None:
            recorded.setdefault(f"bench {run_id} {key}", call.at)
    stages: dict[str, list[float]] = {name: [] for name in STAGES}
    for r in rows:
        if r["title"] not in sent or r["title"] not in recorded:
            continue
        received, ingested, round_started, call_started = (
            float(r["received"]), float(r["ingested"]), float(r["round_started"]), float(r["call_started"]),
        )
        stages[STAGES[0]].append((received - sent[r["title"]]) * 1000)
        stages[STAGES[1]].append((ingested - received) * 1000)
        stages[STAGES[2]].append((round_started - ingested) * 1000)
        stages[STAGES[3]].append((call_started - round_started) * 1000)
        stages[STAGES[4]].append(float(r["latency_ms"]))
        stages[STAGES[5]].append((recorded[r["title"]] - sent[r["title"]]) * 1000)
    return list(stages.items())


class CpuMeter:
    """CPU seconds used between `start()` and `stop()` by Pulser, by our Postgres server (when it
    runs on this machine), by this process (sandbox + load generator) and by the whole machine:
    the cores are shared, so a reader needs to know who had them."""

    def __init__(self, pulser_pid: int, postmaster_pid: int | None):
        self.pulser_pid = pulser_pid
        self.postmaster_pid = postmaster_pid
        self.used: dict[str, float] = {}
        self.wall = 0.0

    def _sample(self) -> dict[str, float]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        tick = os.sysconf("SC_CLK_TCK")
        sample = {
            "pulser": _process_cpu(self.pulser_pid),
            "this process": usage.ru_utime + usage.ru_stime,
            "machine": (sum(fields) - fields[3] - fields[4]) / tick,  # all but idle and iowait
            "wall": time.monotonic(),
        }
        if self.postmaster_pid is not None:
            sample["postgres"] = _postgres_cpu(self.postmaster_pid)
        return sample

    def start(self) -> None:
        self._begin = self._sample()

    def stop(self) -> None:
        end = self._sample()
        self.wall = end.pop("wall") - self._begin["wall"]
        self.used = {k: v - self._begin[k] for k, v in end.items()}

    def summary(self, alerts: int) -> str:
        """Seconds, cores and ms per alert for each party; per alert is what survives a busy neighbour."""
        cores = os.cpu_count() or 1
        ours = {k: v for k, v in self.used.items() if k != "machine"}
        parts = [f"{k} {v:.1f} s ({v / self.wall:.2f} cores, {1000 * v / alerts:.1f} ms/alert)" for k, v in ours.items()]
        others = max(0.0, self.used["machine"] - sum(ours.values()))
        return (f"CPU over {self.wall:.1f} s: " + ", ".join(parts)
                + f", everything else on the machine {others:.1f} s ({others / self.wall:.2f} cores) | machine "
                f"{100 * self.used['machine'] / (self.wall * cores):.0f}% busy of {cores} cores")


def _process_cpu(pid: int) -> float:
    """User + system CPU seconds of one process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _postgres_cpu(postmaster: int) -> float:
    """The postmaster and every process it started (backends, WAL writer, checkpointer)."""
    total = _process_cpu(postmaster)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == postmaster:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


async def local_postmaster(dsn: str) -> int | None:
    """PID of the Postgres server behind `dsn` if it runs on this machine (a backend's parent)."""
    conn = await asyncpg.connect(dsn)
    try:
        backend = await conn.fetchval("SELECT pg_backend_pid()")
        return int(Path(f"/proc/{backend}/stat").read_text().rpartition(")")[2].split()[1])
    except OSError:
        return None
    finally:
        await conn.close()


STAGES = (
    "send → ledger row (HTTP handler)",
    "ledger row → pipeline tx start (queue)",
    "pipeline tx → notifier round (ingest+wake)",
    "notifier round → post sent (claim/render)",
    "chat.postMessage call (Pulser side)",
    "total: send → sandbox recorded post",
)


async def start_pulser(sb: SlackSandbox, dsn: str, http_port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("SLACK_", "PULSER_", "HTTP", "ALL_PROXY"))}
    env.update(webhook_senders.SECRETS_ENV)
    env.update(
        SLACK_BOT_TOKEN=SlackSandbox.BOT_TOKEN, SLACK_APP_TOKEN=SlackSandbox.APP_TOKEN, SLACK_API_URL=sb.api_url,
        SLACK_CHANNEL=f"#{ALERT_CHANNEL}", DATABASE_URL=dsn, PULSER_HTTP_PORT=str(http_port),
        LOG_LEVEL="warning", LOG_FORMAT="json", PYTHONPATH=str(REPO),
        # What is measured is Pulser's own speed, one message per alert: the sandbox enforces no
        # limits here, so Pulser need not pace itself, and no burst may fold into a storm digest
        # (bench/storm.py measures storms, with the limits on).
        PULSER_SLACK_PACING="0", PULSER_STORM_THRESHOLD="0",
    )
    process = subprocess.Popen([sys.executable, "-m", "bot.cli", "run"], env=env, cwd=REPO)
    await sb.wait_for_connection(timeout=120)
    async with aiohttp.ClientSession() as http:
        for _ in range(600):
            if process.poll() is not None:
                raise RuntimeError(f"pulser exited with {process.returncode}")
            try:
                async with http.get(f"http://127.0.0.1:{http_port}/health") as response:
                    if response.status == 200:
                        return process
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError("pulser did not become healthy")


async def run_unique(
    sb: SlackSandbox, url: str, run_id: str, rate: float, seconds: float, drain: float, cpu: CpuMeter
) -> Run:
    deliveries = [generic_delivery(run_id, f"a{i}", i) for i in range(int(rate * seconds))]
    sb.reset()
    cpu.start()
    elapsed = await send_open_loop(url, deliveries, rate)
    await wait_for_posts(sb, run_id, {d.key for d in deliveries}, drain)
    cpu.stop()
    return Run(deliveries, elapsed, list(sb.calls))


async def run_repeats(
    sb: SlackSandbox, url: str, run_id: str, rate: float, seconds: float, problems: int, drain: float
) -> Run:
    total = int(rate * seconds)
    deliveries = [generic_delivery(run_id, f"p{i % problems}", 10_000_000 + i) for i in range(total)]
    sb.reset()
    elapsed = await send_open_loop(url, deliveries, rate)
    await wait_for_posts(sb, run_id, {d.key for d in deliveries}, drain)
    # Quiet for longer than the longest update debounce, or the last update is not in yet.
    await wait_until_quiet(sb, quiet=MAX_DEBOUNCE.total_seconds() + 2, limit=drain)
    return Run(deliveries, elapsed, list(sb.calls))


def post_latencies(run: Run, run_id: str) -> dict[str, float]:
    """key → ms from its first delivery's send to its first chat.postMessage at the sandbox."""
    first_sent: dict[str, float] = {}
    for d in run.deliveries:
        first_sent.setdefault(d.key, d.sent_at)
    latency: dict[str, float] = {}
    for call in run.calls:
        key = title_key(call, run_id)
        if call.method == "chat.postMessage" and key in first_sent and key not in latency:
            latency[key] = (call.at - first_sent[key]) * 1000
    return latency


def windowed_p99(run: Run, latency: dict[str, float], window: float) -> list[float]:
    first = min(d.sent_at for d in run.deliveries)
    buckets: dict[int, list[float]] = {}
    for d in run.deliveries:
        if d.key in latency:
            buckets.setdefault(int((d.sent_at - first) // window), []).append(latency[d.key])
    return [percentile(buckets[b], 99) for b in sorted(buckets)]


def row(label: str, values: list[float], target: str = "") -> str:
    if not values:
        return f"{label:<44} {'—':>8} {'—':>8} {'—':>8} {'—':>8}  {target}"
    return (f"{label:<44} {statistics.median(values):>8.1f} {percentile(values, 90):>8.1f} "
            f"{percentile(values, 99):>8.1f} {max(values):>8.1f}  {target}")


def header() -> str:
    return f"{'':<44} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}"


def report_unique(run: Run, run_id: str, rate: float, stages: list[tuple[str, list[float]]], cpu: CpuMeter) -> None:
    latency = post_latencies(run, run_id)
    answered = [d.answered_ms for d in run.deliveries if d.status == 202 and d.answered_ms is not None]
    refused = len(run.deliveries) - len(answered)
    lost = len(run.deliveries) - len(latency)
    posts = sum(1 for c in run.calls if c.method == "chat.postMessage")
    achieved = (len(run.deliveries) - 1) / run.elapsed if run.elapsed > 0 else float("nan")
    lags = [d.lag * 1000 for d in run.deliveries]
    p99 = percentile(list(latency.values()), 99) if latency else float("inf")
    if rate < TARGET_RATE:
        verdict = f"not judged, this run sends {rate:.0f}/s"
    else:
        verdict = "meets" if p99 <= TARGET_P99_MS and lost == 0 else "MISSES"
    print(f"## unique alerts: {len(run.deliveries)} webhooks, each its own incident")
    print(header())
    print(row("webhook sent → chat.postMessage at sandbox", list(latency.values()),
              f"target p99 ≤ {TARGET_P99_MS:.0f} ms at {TARGET_RATE:.0f}/s: {verdict}"))
    print(row("webhook sent → 202 answered", answered))
    print(row("load generator lag (sent − scheduled)", lags))
    first_sent = min(d.sent_at for d in run.deliveries)
    posted_at = [c.at for c in run.calls if c.method == "chat.postMessage" and title_key(c, run_id)]
    throughput = len(latency) / (max(posted_at) - first_sent) if posted_at else 0.0
    print(f"send rate: {achieved:.1f}/s achieved of {rate:.0f}/s asked | non-202 answers: {refused} | "
          f"alerts lost (not posted within the drain): {lost} | chat.postMessage calls: {posts} | "
          f"posted {throughput:.1f} alerts/s (first send → last post)")
    print(cpu.summary(len(run.deliveries)))
    print("p99 ms by 5 s of sending (a backlog grows and drains, a hiccup is one window): "
          + " ".join(f"{v:.0f}" for v in windowed_p99(run, latency, 5.0)))
    print("### where the time went (per alert, from Pulser's own timestamps in Postgres)")
    print(header())
    for name, values in stages:
        print(row(name, values))


def report_repeats(run: Run, run_id: str, problems: int, rate: float) -> None:
    latency = post_latencies(run, run_id)
    answered = [d.answered_ms for d in run.deliveries if d.status == 202 and d.answered_ms is not None]
    sent_per_problem: dict[str, int] = {}
    for d in run.deliveries:
        sent_per_problem[d.key] = sent_per_problem.get(d.key, 0) + 1
    posts = [c for c in run.calls if c.method == "chat.postMessage" and title_key(c, run_id)]
    updates = [c for c in run.calls if c.method == "chat.update" and title_key(c, run_id)]
    last_shown: dict[str, int | None] = {}
    for call in posts + sorted(updates, key=lambda c: c.at):
        last_shown[title_key(call, run_id)] = shown_count(call.params)  # type: ignore[index]
    exact = sum(1 for key, sent in sent_per_problem.items() if last_shown.get(key) == sent)
    last_sent = max(d.sent_at for d in run.deliveries)
    settled = (max(c.at for c in updates) - last_sent) if updates else float("nan")
    achieved = (len(run.deliveries) - 1) / run.elapsed if run.elapsed > 0 else float("nan")
    print(f"## repeats: {len(run.deliveries)} webhooks for {problems} problems "
          f"({len(run.deliveries) // problems} repeats each)")
    print(header())
    print(row("first alert sent → chat.postMessage", list(latency.values())))
    print(row("webhook sent → 202 answered", answered))
    print(f"send rate: {achieved:.1f}/s achieved of {rate:.0f}/s asked | chat.postMessage: {len(posts)} "
          f"(one per problem: {problems}) | chat.update: {len(updates)} "
          f"({len(updates) / max(1, problems):.1f} per problem, instead of {len(run.deliveries) - problems} "
          f"messages without grouping)")
    print(f"messages showing the final count: {exact}/{problems} | last chat.update {settled:.2f} s after the "
          f"last alert was sent")


async def main(rate: float, seconds: float, repeats: int, drain: float) -> None:
    run_id = uuid.uuid4().hex[:8]
    # No rate limits: this measures the pipeline's own throughput and latency at 200 new incidents
    # a second, far beyond what Slack lets one channel take (about one post a second).
    sb = SlackSandbox(port=0, rate_limits=False)
    sb.add_channel("C0ALERTS", ALERT_CHANNEL)
    await sb.start()
    http_port = free_port()
    url = f"http://127.0.0.1:{http_port}/webhooks/generic"
    try:
        async with fresh_database("pulser-bench-pipeline") as dsn:
            process = await start_pulser(sb, dsn, http_port)
            try:
                cpu = CpuMeter(process.pid, await local_postmaster(dsn))
                # Warm-up: pool connections, the first auth.test, code paths; not measured.
                warm = [generic_delivery(run_id, f"a{900_000_000 + i}", 900_000_000 + i) for i in range(40)]
                await send_open_loop(url, warm, 20)
                await wait_for_posts(sb, run_id, {d.key for d in warm}, 30)
                unique = await run_unique(sb, url, run_id, rate, seconds, drain, cpu)
                stages = await stage_breakdown(dsn, run_id, unique.deliveries, unique.calls)
                repeated = await run_repeats(sb, url, run_id, rate, seconds, repeats, drain) if repeats > 0 else None
                kib = memory_kib(process.pid)
            finally:
                process.terminate()
                process.wait(timeout=30)
    finally:
        await sb.stop()

    where = "DATABASE_URL server (fresh database)" if os.environ.get("DATABASE_URL") else "embedded Postgres in a temp dir"
    print(f"# alert pipeline: POST /webhooks/generic → chat.postMessage at the Slack sandbox, "
          f"{rate:.0f} alerts/s for {seconds:.0f} s, open loop")
    print(f"# {platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores shared by "
          f"Pulser (`pulser run`, its own process), {where}, and this process (sandbox + load generator)")
    print(f"# command: {shlex.join([sys.executable, *sys.argv])}")
    report_unique(unique, run_id, rate, stages, cpu)
    if repeated is not None:
        report_repeats(repeated, run_id, repeats, rate)
    print(f"RSS of the pulser process after the runs: {kib['VmRSS'] / 1024:.0f} MiB (peak {kib['VmHWM'] / 1024:.0f} MiB)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="webhooks per second (default 200)")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long each scenario sends (default 30)")
    parser.add_argument("--repeats", type=int, default=20, help="problems in the repeats scenario; 0 skips it (default 20)")
    parser.add_argument("--drain", type=float, default=30.0, help="seconds to wait for posts after the last send (default 30)")
    args = parser.parse_args()
    configure_logging("warning")
    asyncio.run(main(args.rate, args.seconds, args.repeats, args.drain))

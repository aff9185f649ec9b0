"""Paging beyond Slack: how soon a critical alert reaches Discord, PagerDuty and a signed webhook,
and how soon an acknowledgement reaches PagerDuty.

Runs as production does: the Slack sandbox enforces Slack's rate limits (bench/storm.py's
`start_sandbox`), `pulser run` keeps its defaults and runs as its own process (or two, on one
Postgres, with `--replicas 2`), and every outbound page goes through the outbox dispatcher to local
stand-ins for the services (tests/outbound_standins.py: the services' own paths, status codes and
body shapes), which run in this process and note when each request arrived.

Set up over the API, as a user would (bearer PULSER_ADMIN_TOKEN): a Discord channel, a PagerDuty
channel and a signed-webhook channel pointing at the stand-ins; one escalation policy whose first
steps send to all three (`{"kind": "outbound", "channel": …}` ×3) and — unless `--wait-minutes 0`
— after a wait the same three again (an `escalate`); a routing rule for the generic source that
names the policy. Then `--alerts` distinct critical generic webhooks (default 500) go out open-loop
at `--rate` a second (default 50; bench/pipeline.py's sender: request i at t0 + i/rate whatever
earlier ones do), round-robin to the replicas' sidecars.

Once every page is in (or `--drain` seconds passed), every incident is acknowledged through
`POST /api/incidents/{id}/ack`, open-loop at `--ack-rate` a second. The bench then watches until
the second level would have been due for the last incident (its first page + the wait + 5 s):
an acknowledgement must have stopped it.

Printed, per channel kind: pages delivered / expected, latency from the webhook's send to the
stand-in's receipt of its page (p50/p90/p99/max), 429s and 5xx the stand-in answered (none: they
impose no limits), and duplicates (the same incident, action and escalation step received twice).
Then, for the acknowledgements: their answers, the latency from each ack request to PagerDuty's
`acknowledge` (and the webhook's `acknowledge` event; Discord has no acknowledge), and pages that
arrived after an incident's acknowledgement (must be 0). Also: the outbox's own counts from
/metrics (delivered, retrying, paced, failed), Slack's 429s, each Pulser's CPU seconds and peak RSS,
and the command line. It asserts nothing: figures are for reading, on a quiet machine.
`--skip-acks` acknowledges nothing, to show what the watch after the acknowledgements would catch.

    .venv/bin/python bench/paging.py [--alerts 500] [--rate 50] [--replicas 2] [--wait-minutes 1]
"""

from __future__ import annotations

import argparse
import asyncio
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
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.measure import free_port, memory_kib, percentile  # noqa: E402
from bench.pipeline import CpuMeter, Delivery, fresh_database, local_postmaster  # noqa: E402
from bench.storm import (  # noqa: E402
    ALERT_CHANNEL_ID,
    pulser_env,
    refusals,
    send_round_robin,
    start_sandbox,
    stop_pulsers,
    wait_healthy,
)
from bot.logging import configure_logging  # noqa: E402

from sandbox import SlackSandbox  # noqa: E402
from tests import webhook_senders  # noqa: E402
from tests.outbound_standins import OutboundStandins, Received  # noqa: E402

ADMIN_TOKEN = "bench-paging-admin-token"
KINDS = ("discord", "pagerduty", "webhook")  # the channel kinds paged, each named after its kind
TITLE_RE = re.compile(r"bench ([0-9a-f]{8}) a(\d+)")
DEDUP_RE = re.compile(r"pulser-incident-(\d+)")
# Discord says what a message is in its embed's title: "Firing: …", "Escalated (…): …", "Resolved: …".
DISCORD_VERBS = {"Firing": "trigger", "Escalated": "escalate", "Acknowledged": "acknowledge", "Resolved": "resolve",
                 "Test": "test"}
WATCH_MARGIN = 5.0  # seconds past the moment the second level would have been due
METRIC_RE = re.compile(r'^pulser_outbound_sends_total\{kind="([^"]+)",outcome="([^"]+)"\} ([0-9.e+]+)$', re.M)


# --- Pulser -------------------------------------------------------------------------------------


async def start_pulsers(sb: SlackSandbox, dsn: str, count: int) -> tuple[list[subprocess.Popen], list[int]]:
    """bench/storm.py's start-up (one after the other, each healthy and connected), with the
    admin API on: the set-up and the acknowledgements go through it."""
    processes: list[subprocess.Popen] = []
    ports: list[int] = []
    try:
        for n in range(count):
            port = free_port()
            env = pulser_env(sb, dsn, port, PULSER_ADMIN_TOKEN=ADMIN_TOKEN)
            processes.append(subprocess.Popen([sys.executable, "-m", "bot.cli", "run"], env=env, cwd=REPO))
            ports.append(port)
            await wait_healthy(processes[-1], port)
            await sb.state.changed.wait_until(lambda: len(sb.hub.usable_connections()) > n, 120)
    except BaseException:
        stop_pulsers(processes)
        raise
    return processes, ports


async def api_call(http: aiohttp.ClientSession, method: str, url: str, body: dict | None = None) -> dict:
    async with http.request(method, url, json=body, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as response:
        answer = await response.json(content_type=None)
        if response.status >= 300:
            raise RuntimeError(f"{method} {url} answered {response.status}: {answer}")
        return answer


async def set_up_paging(api: str, standins: OutboundStandins, wait_minutes: int) -> None:
    """Three channels at the stand-ins, one policy that pages all three, one rule that names it."""
    settings = {
        "discord": {"webhook_url": standins.discord_url},
        "pagerduty": {"routing_key": standins.pagerduty_key, "events_url": standins.pagerduty_url},
        "webhook": {"url": standins.webhook_url("pulser-bench"), "signing_secret": standins.webhook_secret},
    }
    level = [{"kind": "outbound", "channel": kind} for kind in KINDS]
    steps = level + ([{"kind": "wait", "wait_minutes": wait_minutes}, *level] if wait_minutes else [])
    async with aiohttp.ClientSession() as http:
        for kind in KINDS:
            await api_call(http, "POST", f"{api}/api/outbound-channels",
                           {"name": kind, "kind": kind, "settings": settings[kind]})
        policy = await api_call(http, "POST", f"{api}/api/escalation-policies", {"name": "bench paging", "steps": steps})
        await api_call(http, "POST", f"{api}/api/rules", {
            "name": "bench generic", "sources": ["generic"], "channel": ALERT_CHANNEL_ID,
            "escalation_policy_id": policy["id"],
        })


async def incident_ids(api: str, run_id: str) -> dict[str, int]:
    """key ("a17") → incident id, from the incidents API (every page of it)."""
    found: dict[str, int] = {}
    cursor = None
    async with aiohttp.ClientSession() as http:
        while True:
            query = "service=bench&status=open&limit=200" + (f"&cursor={cursor}" if cursor else "")
            answer = await api_call(http, "GET", f"{api}/api/incidents?{query}")
            for incident in answer["incidents"]:
                match = TITLE_RE.search(incident["title"])
                if match and match.group(1) == run_id:
                    found[f"a{int(match.group(2))}"] = incident["id"]
            cursor = answer.get("next_cursor")
            if not cursor or not answer["incidents"]:
                return found


async def outbox_counts(ports: list[int]) -> list[Counter[tuple[str, str]]]:
    """pulser_outbound_sends_total by (kind, outcome), one Counter per process."""
    per_process = []
    async with aiohttp.ClientSession() as http:
        for port in ports:
            counts: Counter[tuple[str, str]] = Counter()
            async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                for kind, outcome, value in METRIC_RE.findall(await response.text()):
                    counts[(kind, outcome)] += int(float(value))
            per_process.append(counts)
    return per_process


# --- the acknowledgements -----------------------------------------------------------------------


@dataclass
class Ack:
    key: str
    incident_id: int
    sent_at: float = 0.0  # time.time(), the stand-ins' clock
    status: int | None = None
    answered_ms: float | None = None


async def ack_open_loop(apis: list[str], acks: list[Ack], rate: float) -> None:
    """Ack i to apis[i % n] at t0 + i/rate, never waiting for earlier answers."""
    connector = aiohttp.TCPConnector(limit=1024, limit_per_host=1024)
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as http:

        async def post(i: int, ack: Ack) -> None:
            ack.sent_at = time.time()
            started = time.perf_counter()
            try:
                async with http.post(f"{apis[i % len(apis)]}/api/incidents/{ack.incident_id}/ack", headers=headers) as r:
                    await r.read()
                    ack.status = r.status
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                print(f"# ack failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            ack.answered_ms = (time.perf_counter() - started) * 1000

        t0 = time.perf_counter() + 0.05
        tasks = []
        for i, ack in enumerate(acks):
            wait = t0 + i / rate - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            tasks.append(asyncio.create_task(post(i, ack)))
        await asyncio.gather(*tasks)


# --- what the stand-ins received ----------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """One accepted request at a stand-in, read back: which incident, which action, which step."""

    kind: str
    key: str | None  # "a17", when the body names the title (acknowledge events do not)
    incident_id: int | None  # when the body names the dedup key
    action: str
    step: str | None
    at: float


def read_page(kind: str, r: Received, run_id: str) -> Page:
    text = r.body.decode(errors="replace")
    match = TITLE_RE.search(text)
    key = f"a{int(match.group(2))}" if match and match.group(1) == run_id else None
    dedup = DEDUP_RE.search(text)
    incident_id = int(dedup.group(1)) if dedup else None
    body = r.json
    if kind == "pagerduty":
        action = body["event_action"]
        step = ((body.get("payload") or {}).get("custom_details") or {}).get("escalation_step")
    elif kind == "webhook":
        action, step = body["action"], body["incident"].get("step")
    else:
        embed = (body.get("embeds") or [{}])[0]
        verb = re.split(r"[ :]", embed.get("title", ""), maxsplit=1)[0]
        action = DISCORD_VERBS.get(verb, verb.lower())
        step = next((f["value"] for f in embed.get("fields", []) if f.get("name") == "Escalation step"), None)
    return Page(kind, key, incident_id, action, step, r.at)


class Collector:
    """The pages the stand-ins accepted, read once each as they come (polled every 0.1 s: parsing
    every body again each time would cost this process — which shares the cores — more than Pulser).

    A stand-in keeps a request before it has answered it (`answer` 0 until then), so reading stops
    at the first unanswered one of a kind and takes it up on the next call."""

    def __init__(self, standins: OutboundStandins, run_id: str, since: float):
        self.standins = standins
        self.run_id = run_id
        self.since = since
        self.found: list[Page] = []
        self._cursor = {kind: 0 for kind in KINDS}

    def update(self) -> list[Page]:
        for kind in KINDS:
            attempts = self.standins.attempts(kind)
            cursor = self._cursor[kind]
            while cursor < len(attempts) and attempts[cursor].answer:
                r = attempts[cursor]
                if 200 <= r.answer < 300 and r.at >= self.since:
                    self.found.append(read_page(kind, r, self.run_id))
                cursor += 1
            self._cursor[kind] = cursor
        return self.found


def first_triggers(found: list[Page], kind: str) -> dict[str, float]:
    """key → arrival of its first trigger page at `kind`'s stand-in."""
    first: dict[str, float] = {}
    for p in sorted(found, key=lambda p: p.at):
        if p.kind == kind and p.action == "trigger" and p.key is not None:
            first.setdefault(p.key, p.at)
    return first


def acknowledged(found: list[Page], kind: str) -> dict[int, float]:
    """incident id → arrival of its first acknowledge at `kind`'s stand-in."""
    first: dict[int, float] = {}
    for p in sorted(found, key=lambda p: p.at):
        if p.kind == kind and p.action == "acknowledge" and p.incident_id is not None:
            first.setdefault(p.incident_id, p.at)
    return first


def duplicates(found: list[Page]) -> Counter[str]:
    """Per kind: pages whose (incident, action, step) another page of that kind already had."""
    seen: Counter[tuple] = Counter()
    for p in found:
        seen[(p.kind, p.incident_id if p.incident_id is not None else p.key, p.action, p.step)] += 1
    extra: Counter[str] = Counter()
    for (kind, *_), n in seen.items():
        extra[kind] += n - 1
    return extra


def refused(standins: OutboundStandins, kind: str, since: float) -> tuple[int, int]:
    """(429s, 5xx) the stand-in answered since `since`."""
    answers = [r.answer for r in standins.attempts(kind) if r.at >= since]
    return sum(1 for a in answers if a == 429), sum(1 for a in answers if a >= 500)


async def wait_for(predicate, until: float) -> bool:
    while time.time() < until:
        if predicate():
            return True
        await asyncio.sleep(0.1)
    return predicate()


# --- the scenario -------------------------------------------------------------------------------


@dataclass
class Figures:
    run_id: str
    alerts: int
    rate: float
    ack_rate: float
    replicas: int
    wait_minutes: int
    deliveries: list[Delivery]
    acks: list[Ack]
    found: list[Page]
    attempts: dict[str, tuple[int, int]]
    slack_refused: tuple[int, str]
    outbox: list[Counter[tuple[str, str]]]  # one per process
    cpu: list[CpuMeter]
    peak_rss_mib: list[float]
    watched_until: float
    phases: dict[str, float] = field(default_factory=dict)


def critical_alerts(run_id: str, total: int) -> list[Delivery]:
    deliveries = []
    for i in range(total):
        key = f"a{i}"
        headers, body = webhook_senders.generic({
            "title": f"bench {run_id} {key}",
            "fingerprint": f"bench-{run_id}-{key}",
            "service": "bench",
            "env": "production",
            "severity": "critical",
            "description": "synthetic alert from bench/paging.py",
            "event_id": f"bench-{run_id}-{i}",
        })
        deliveries.append(Delivery(key, headers, body))
    return deliveries


async def run(alerts: int, rate: float, ack_rate: float, replicas: int, wait_minutes: int, drain: float,
              skip_acks: bool) -> Figures:
    run_id = uuid.uuid4().hex[:8]
    deliveries = critical_alerts(run_id, alerts)
    keys = {d.key for d in deliveries}
    standins = OutboundStandins()
    await standins.start()
    sb, limiter = await start_sandbox()
    phases: dict[str, float] = {}
    try:
        async with fresh_database("pulser-bench-paging") as dsn:
            processes, ports = await start_pulsers(sb, dsn, replicas)
            apis = [f"http://127.0.0.1:{port}" for port in ports]
            try:
                await set_up_paging(apis[0], standins, wait_minutes)
                postmaster = await local_postmaster(dsn)
                meters = [CpuMeter(p.pid, postmaster) for p in processes]
                sb.reset()
                slack_before = Counter(limiter.refused)
                began = time.time()
                for meter in meters:
                    meter.start()

                await send_round_robin([f"{api}/webhooks/generic" for api in apis], deliveries, rate)
                last_sent = max(d.sent_at for d in deliveries)
                phases["sent"] = last_sent - min(d.sent_at for d in deliveries)

                collector = Collector(standins, run_id, began)

                def all_paged() -> bool:
                    found = collector.update()
                    return all(keys <= first_triggers(found, kind).keys() for kind in KINDS)

                complete = await wait_for(all_paged, last_sent + drain)
                phases["paged"] = time.time() - last_sent
                phases["paged_complete"] = float(complete)

                ids = await incident_ids(apis[0], run_id)
                acks = [] if skip_acks else [Ack(d.key, ids[d.key]) for d in deliveries if d.key in ids]
                await ack_open_loop(apis, acks, ack_rate)
                last_ack = max((a.sent_at for a in acks), default=time.time())

                def all_acknowledged() -> bool:
                    found = collector.update()
                    wanted = {a.incident_id for a in acks}
                    return all(wanted <= acknowledged(found, kind).keys() for kind in ("pagerduty", "webhook"))

                complete = await wait_for(all_acknowledged, last_ack + drain)
                phases["acknowledged"] = time.time() - last_ack
                phases["acknowledged_complete"] = float(complete)

                # The second level is due `wait_minutes` after the first: watch until it would have
                # come for the last incident, so an acknowledgement that did not stop it shows.
                firsts = [t for kind in KINDS for t in first_triggers(collector.update(), kind).values()]
                if wait_minutes and firsts:
                    watch_until = max(firsts) + wait_minutes * 60 + WATCH_MARGIN
                else:
                    watch_until = time.time() + WATCH_MARGIN
                while time.time() < watch_until:
                    await asyncio.sleep(0.2)

                for meter in meters:
                    meter.stop()
                peaks = [memory_kib(p.pid)["VmHWM"] / 1024 for p in processes]
                outbox = await outbox_counts(ports)
            finally:
                stop_pulsers(processes)
    finally:
        await sb.stop()
        await standins.stop()
    return Figures(
        run_id=run_id, alerts=alerts, rate=rate, ack_rate=ack_rate, replicas=replicas, wait_minutes=wait_minutes,
        deliveries=deliveries, acks=acks, found=collector.update(),
        attempts={kind: refused(standins, kind, began) for kind in KINDS},
        slack_refused=refusals(limiter, slack_before), outbox=outbox, cpu=meters, peak_rss_mib=peaks,
        watched_until=watch_until, phases=phases,
    )


# --- reporting ----------------------------------------------------------------------------------


def ms_row(label: str, values_s: list[float], *, p90: bool = True) -> str:
    if not values_s:
        return f"  {label:<46} {'—':>8}"
    v = [x * 1000 for x in values_s]
    cells = [statistics.median(v)] + ([percentile(v, 90)] if p90 else []) + [percentile(v, 99), max(v)]
    return f"  {label:<46} " + " ".join(f"{c:>8.0f}" for c in cells)


def report(f: Figures) -> None:
    sent = {d.key: d.sent_at for d in f.deliveries}
    non_202 = sum(1 for d in f.deliveries if d.status != 202)

    print(f"## {f.alerts} distinct critical generic webhooks at {f.rate:.0f}/s (sent in {f.phases['sent']:.1f} s), "
          f"{'round-robin to ' + str(f.replicas) + ' `pulser run` replicas on one Postgres' if f.replicas > 1 else 'one `pulser run`'}")
    second = f"then after {f.wait_minutes} min the same three again (escalate)" if f.wait_minutes else "no second level"
    print(f"  policy: Discord, PagerDuty, signed webhook at once; {second} | answers other than 202: {non_202} | "
          + (f"every page in {f.phases['paged']:.1f} s after the last send" if f.phases["paged_complete"]
             else f"NOT every page within the {f.phases['paged']:.0f} s drain"))
    print(f"  {'trigger pages (webhook sent → stand-in received)':<46} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}"
          f"   delivered/expected   429s  5xx  duplicates")
    dups = duplicates(f.found)
    firsts = {kind: first_triggers(f.found, kind) for kind in KINDS}
    for kind in KINDS:
        latencies = [firsts[kind][k] - sent[k] for k in sent if k in firsts[kind]]
        too_many, server_errors = f.attempts[kind]
        print(ms_row(kind, latencies) + f"   {len(latencies):>8} / {f.alerts:<8} {too_many:>6} {server_errors:>4}  {dups[kind]:>10}")
    everywhere = [max(firsts[kind][k] for kind in KINDS) - sent[k] for k in sent if all(k in firsts[kind] for kind in KINDS)]
    print(ms_row("all three (the last of an alert's pages)", everywhere) + f"   {len(everywhere):>8} / {f.alerts:<8}")

    if f.acks:
        report_acks(f)
    else:
        beyond = Counter(p.kind for p in f.found) - Counter({kind: len(first_triggers(f.found, kind)) for kind in KINDS})
        print("  nothing acknowledged (--skip-acks); pages beyond each incident's first trigger (the second level): "
              + ", ".join(f"{kind} {beyond[kind]}" for kind in KINDS))
    if f.replicas > 1:
        total = sum(dups.values())
        print(f"  duplicate pages (same incident, channel, action and step received twice): {total}   (expected 0)")

    outbox = sum(f.outbox, Counter())
    outcomes = sorted({o for _, o in outbox})
    print("  outbox sends (/metrics, all processes): "
          + "; ".join(f"{kind} " + ", ".join(f"{o} {outbox[(kind, o)]}" for o in outcomes if outbox[(kind, o)])
                      for kind in KINDS))
    if len(f.outbox) > 1:
        print("  delivered by each process: " + " / ".join(
            f"#{n + 1} " + str(sum(v for (_, o), v in counts.items() if o == "delivered")) for n, counts in enumerate(f.outbox)))
    slack_total, slack_by = f.slack_refused
    print(f"  Slack sandbox 429s (its limits on): {slack_total} ({slack_by})")
    for n, (meter, rss) in enumerate(zip(f.cpu, f.peak_rss_mib)):
        who = f"pulser #{n + 1}" if len(f.cpu) > 1 else "pulser"
        print(f"  {who}: CPU {meter.used['pulser']:.1f} s over {meter.wall:.0f} s, peak RSS {rss:.0f} MiB")
    print("  " + ("(pulser = #1) " if len(f.cpu) > 1 else "") + f.cpu[0].summary(f.alerts))


def report_acks(f: Figures) -> None:
    """The acknowledgements' answers, how soon each reached PagerDuty and the webhook, and what
    came after them (nothing may, but the acknowledge events)."""
    ack_sent = {a.incident_id: a.sent_at for a in f.acks}
    ack_answers = Counter(a.status for a in f.acks)
    answered = [a.answered_ms / 1000 for a in f.acks if a.status == 200 and a.answered_ms is not None]
    print(f"  acknowledgements: {len(f.acks)} incidents found through the API, acked at {f.ack_rate:.0f}/s; answers "
          + ", ".join(f"{s}: {n}" for s, n in sorted(ack_answers.items(), key=lambda x: str(x[0])))
          + (f"; every acknowledge in {f.phases['acknowledged']:.1f} s after the last ack" if f.phases["acknowledged_complete"]
             else f"; NOT every acknowledge within the {f.phases['acknowledged']:.0f} s drain"))
    print(f"  {'ack (POST /api/incidents/{id}/ack sent → …)':<46} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}"
          f"   received/expected")
    print(ms_row("… its 200 answer", answered) + f"   {len(answered):>8} / {len(f.acks):<8}")
    for kind in ("pagerduty", "webhook"):
        got = acknowledged(f.found, kind)
        latencies = [got[i] - ack_sent[i] for i in ack_sent if i in got]
        print(ms_row(f"… {kind} stand-in received `acknowledge`", latencies) + f"   {len(latencies):>8} / {len(f.acks):<8}")
    print("  (Discord has no acknowledge: a Discord channel hears of an incident again only when it resolves)")

    id_of = {a.key: a.incident_id for a in f.acks}
    after_ack: Counter[str] = Counter()
    for p in f.found:
        incident = p.incident_id if p.incident_id is not None else id_of.get(p.key)
        if incident in ack_sent and p.at > ack_sent[incident] and p.action != "acknowledge":
            after_ack[p.kind] += 1
    watched = f.watched_until - max(ack_sent.values())
    print(f"  pages other than `acknowledge` after an incident's ack (watched {watched:.0f} s past the last ack"
          + (f", {WATCH_MARGIN:.0f} s past the last second level's due time" if f.wait_minutes else "") + "): "
          + ", ".join(f"{kind} {after_ack[kind]}" for kind in KINDS) + "   (expected 0)")


async def main(args: argparse.Namespace) -> None:
    where = "a fresh database on the DATABASE_URL server" if os.environ.get("DATABASE_URL") else "embedded Postgres"
    print("# paging beyond Slack: critical webhooks → Discord, PagerDuty and signed-webhook stand-ins; "
          "acks → PagerDuty `acknowledge`; Slack's rate limits on (sandbox), Pulser's defaults")
    print(f"# {platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores shared by "
          f"Pulser (`pulser run`, own process{'es' if args.replicas > 1 else ''}), {where}, and this process "
          "(sandbox + stand-ins + load generator)")
    print(f"# command: {shlex.join([sys.executable, *sys.argv])}")
    figures = await run(args.alerts, args.rate, args.ack_rate or args.rate, args.replicas, args.wait_minutes, args.drain,
                        args.skip_acks)
    report(figures)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=500, help="distinct critical webhooks (default 500)")
    parser.add_argument("--rate", type=float, default=50.0, help="webhooks a second, open loop (default 50)")
    parser.add_argument("--ack-rate", type=float, default=0.0, help="acks a second, open loop (default: --rate)")
    parser.add_argument("--replicas", type=int, default=1, choices=(1, 2), help="`pulser run` processes on one Postgres")
    parser.add_argument("--wait-minutes", type=int, default=1,
                        help="the policy's wait before its second level (0: no second level; default 1)")
    parser.add_argument("--drain", type=float, default=60.0,
                        help="seconds after the last send (ack) to wait for every page (acknowledge) (default 60)")
    parser.add_argument("--skip-acks", action="store_true",
                        help="acknowledge nothing: shows what the after-ack watch would catch (the second level)")
    args = parser.parse_args()
    configure_logging("warning")
    asyncio.run(main(args))

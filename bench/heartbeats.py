"""Sustained durable heartbeats/s and latency of `POST /heartbeat/{uuid}`, and the sidecar's memory.

Starts an embedded PostgreSQL here, runs `pulser sidecar` as a separate process against it,
registers N applications (10,000 by default) directly in SQL, then for each concurrency C keeps C
clients sending `POST /heartbeat/{uuid}` to random apps for a fixed time, and prints per run:
requests, durable heartbeats/s (rows the heartbeats table gained, i.e. committed before the 200),
p50/p90/p99/max latency, non-200 answers by status, and the sidecar's resident memory (VmRSS now,
VmHWM peak). The load generator runs in this process and shares the machine's cores with the
sidecar and Postgres, so the figures are a floor for a sidecar with the machine to itself. Run:

    .venv/bin/python bench/heartbeats.py [--seconds 15] [--apps 10000] [--concurrency 64,256] [--baseline]

--baseline also drives a do-nothing aiohttp server (one route, a constant JSON 200, no database)
with the same load generator: the ceiling this machine and client put on any aiohttp server.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import asyncio
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp
import asyncpg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.measure import free_port, memory_kib, percentile  # noqa: E402

from storage.embedded import EmbeddedPostgres  # noqa: E402

WARM_UP_SECONDS = 2.0
NO_OP_SERVER = """
import sys
from aiohttp import web
async def heartbeat(request):
    return web.json_response({"ok": True, "status": "up"})
app = web.Application()
app.router.add_post("/heartbeat/{uuid}", heartbeat)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""






def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds(pgdata: Path) -> float:
    """CPU time of our embedded server: its postmaster and every process it started (backends,
    WAL writer, autovacuum). Other Postgres servers on the machine are not counted."""
    postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(stat.parent.name) == postmaster or int(fields[1]) == postmaster:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime




async def wait_healthy(base_url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the sidecar exited with {process.returncode}")
            try:
                async with http.get(f"{base_url}/health") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError("the sidecar did not become healthy")


async def register_apps(dsn: str, count: int) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            """
            INSERT INTO applications (uuid, name, expected_interval, grace_period, channel)
            SELECT gen_random_uuid(), 'bench-' || i, 300, 60, '#bench' FROM generate_series(1, $1) AS i
            """,
            count,
        )
        # Statistics, as autovacuum would have them in a running system: on a freshly bulk-loaded
        # table the planner has none and locks heartbeat rows through a scan of the name index.
        await conn.execute("ANALYZE applications")
        return [str(r["uuid"]) for r in await conn.fetch("SELECT uuid FROM applications WHERE deleted_at IS NULL")]
    finally:
        await conn.close()


async def heartbeat_rows(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval("SELECT count(*) FROM heartbeats")
    finally:
        await conn.close()


async def batch_stats(base_url: str) -> tuple[float, float]:
    """(batches, events) the sidecar's writer has committed, from its /metrics."""
    values = {"count": 0.0, "sum": 0.0}
    async with aiohttp.ClientSession() as http, http.get(f"{base_url}/metrics") as response:
        for line in (await response.text()).splitlines():
            for key in values:
                if line.startswith(f"pulser_heartbeat_batch_size_{key} "):
                    values[key] = float(line.split()[1])
    return values["count"], values["sum"]


async def drive(base_url: str, uuids: list[str], concurrency: int, seconds: float) -> tuple[list[float], Counter, float]:
    """C clients, each sending one heartbeat after another to random apps until time is up."""
    latencies: list[float] = []
    statuses: Counter = Counter()
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        stop_at = time.monotonic() + seconds

        async def client() -> None:
            choice, perf = random.choice, time.perf_counter
            while time.monotonic() < stop_at:
                url = f"{base_url}/heartbeat/{choice(uuids)}"
                started = perf()
                try:
                    async with http.post(url) as response:
                        await response.read()
                        statuses[response.status] += 1
                except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                    statuses[type(exc).__name__] += 1
                    continue
                latencies.append((perf() - started) * 1000)

        started = time.monotonic()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.monotonic() - started
    return latencies, statuses, elapsed


WRK_SCRIPT = """
local uuids = {}
for line in io.lines(os.getenv("PULSER_BENCH_UUIDS")) do uuids[#uuids + 1] = line end
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
request = function()
  return wrk.format("POST", "/heartbeat/" .. uuids[math.random(#uuids)])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRKRESULT %d %d %d %d %.1f %.1f %.1f %.1f\\n", summary.requests, e.status,
    e.connect + e.read + e.write + e.timeout, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
"""


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def drive_wrk(base_url: str, uuids: list[str], concurrency: int, seconds: float) -> tuple[dict, Counter, float]:
    """The same load from wrk (C, two threads): far less CPU per request than a Python client,
    so more of the two cores is left to the sidecar and Postgres."""
    with tempfile.TemporaryDirectory(prefix="pulser-wrk-") as tmp:
        script, uuid_file = Path(tmp) / "heartbeats.lua", Path(tmp) / "uuids.txt"
        script.write_text(WRK_SCRIPT)
        uuid_file.write_text("\n".join(uuids) + "\n")
        command = ["wrk", "-t2", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--timeout", "10s", "-s", str(script), base_url]
        process = await asyncio.create_subprocess_exec(
            *command, env={**os.environ, "PULSER_BENCH_UUIDS": str(uuid_file)}, stdout=asyncio.subprocess.PIPE
        )
        out, _ = await process.communicate()
    line = next(l for l in out.decode().splitlines() if l.startswith("WRKRESULT"))
    requests, non_2xx, socket_errors, duration_us, p50, p90, p99, high = line.split()[1:]
    statuses = Counter({200: int(requests) - int(non_2xx)})
    if int(non_2xx):
        statuses["non-2xx"] = int(non_2xx)
    if int(socket_errors):
        statuses["socket errors"] = int(socket_errors)
    stats = {"p50": float(p50) / 1000, "p90": float(p90) / 1000, "p99": float(p99) / 1000, "max": float(high) / 1000}
    return stats, statuses, int(duration_us) / 1e6


async def wait_until_listening(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise TimeoutError("the server did not start listening")


async def measure_pulser(
    seconds: float, apps: int, concurrencies: list[int], client: str = "python", sidecars: int = 1
) -> tuple[list[dict], dict, list[str]]:
    """Run the sidecar against a fresh embedded Postgres; one result per concurrency."""
    with tempfile.TemporaryDirectory(prefix="pulser-bench-hb-") as tmp:
        database = EmbeddedPostgres(Path(tmp) / "pg")
        dsn = await database.start()
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PULSER_", "HTTP", "DATABASE_"))}
        env.update(
            DATABASE_URL=dsn, PULSER_DATA_DIR=str(Path(tmp) / "data"), PULSER_HTTP_PORT=str(port),
            LOG_LEVEL="warning", LOG_FORMAT="json", PYTHONPATH=str(REPO),
        )
        # Several sidecars share the port (SO_REUSEPORT); the kernel spreads the connections.
        processes = [subprocess.Popen([sys.executable, "-m", "bot.cli", "sidecar"], env=env, cwd=REPO) for _ in range(sidecars)]
        process = processes[0]
        results = []
        try:
            await wait_healthy(base_url, process)
            uuids = await register_apps(dsn, apps)
            idle = memory_kib(process.pid)
            await drive(base_url, uuids, max(concurrencies), WARM_UP_SECONDS)  # pool connections, code paths

            def cpu() -> tuple[float, float, float]:
                load = children_cpu_seconds() if client == "wrk" else own_cpu_seconds()
                return sum(cpu_seconds(p.pid) for p in processes), postgres_cpu_seconds(database.pgdata), load

            for concurrency in concurrencies:
                rows_before, cpu_before, batches_before = await heartbeat_rows(dsn), cpu(), await batch_stats(base_url)
                run = drive_wrk if client == "wrk" else drive
                latencies, statuses, elapsed = await run(base_url, uuids, concurrency, seconds)
                results.append({
                    "concurrency": concurrency, "latencies": latencies, "statuses": statuses, "elapsed": elapsed,
                    "cpu": [after - b for after, b in zip(cpu(), cpu_before)],
                    "batches": [after - b for after, b in zip(await batch_stats(base_url), batches_before)],
                    "durable": await heartbeat_rows(dsn) - rows_before,
                    "memory": memory_kib(process.pid),
                })
        finally:
            for p in processes:
                p.terminate()
            for p in processes:
                p.wait(timeout=30)
            await database.stop()
    return results, idle, uuids


async def measure_no_op(seconds: float, uuids: list[str], concurrencies: list[int]) -> list[dict]:
    """The same load against a do-nothing aiohttp server: the ceiling of this machine and client."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", NO_OP_SERVER, str(port)])
    results = []
    try:
        await wait_until_listening(port, process)
        await drive(f"http://127.0.0.1:{port}", uuids, max(concurrencies), WARM_UP_SECONDS)
        for concurrency in concurrencies:
            cpu_before = (cpu_seconds(process.pid), own_cpu_seconds())
            latencies, statuses, elapsed = await drive(f"http://127.0.0.1:{port}", uuids, concurrency, seconds)
            cpu = [after - b for after, b in zip((cpu_seconds(process.pid), own_cpu_seconds()), cpu_before)]
            results.append({"concurrency": concurrency, "latencies": latencies, "statuses": statuses, "elapsed": elapsed, "cpu": cpu})
    finally:
        process.terminate()
        process.wait(timeout=30)
    return results


def latency_columns(r: dict) -> str:
    lat = r["latencies"]
    if isinstance(lat, dict):  # wrk reports its own percentiles
        p50, p90, p99, high = lat["p50"], lat["p90"], lat["p99"], lat["max"]
        answered = r["statuses"][200]
    else:
        p50, p90, p99, high = statistics.median(lat), percentile(lat, 90), percentile(lat, 99), max(lat)
        answered = len(lat)
    return (f"{r['concurrency']:>7} {sum(r['statuses'].values()):>9,} {answered / r['elapsed']:>7,.0f} "
            f"{p50:>7.1f} {p90:>7.1f} {p99:>7.1f} {high:>7.1f}")


def report(seconds: float, apps: int, results: list[dict], idle: dict, no_op: list[dict]) -> None:
    cores = os.cpu_count() or 1
    print(f"# POST /heartbeat/{{uuid}} — {apps:,} apps, {seconds:.0f} s per run, a random app per request")
    print(f"# {platform.python_implementation()} {platform.python_version()}, {cores} cores shared by the load "
          f"generator, the sidecar process(es) and the embedded Postgres")
    print(f"{'clients':>7} {'requests':>9} {'req/s':>7} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'max ms':>7} "
          f"{'durable/s':>9} {'RSS MiB':>7}  non-200")
    for r in results:
        errors = ", ".join(f"{k}: {v}" for k, v in sorted(r["statuses"].items(), key=str) if k != 200) or "none"
        print(f"{latency_columns(r)} {r['durable'] / r['elapsed']:>9,.0f} {r['memory']['VmRSS'] / 1024:>7.0f}  {errors}")
    print(f"sidecar RSS: idle with {apps:,} apps {idle['VmRSS'] / 1024:.0f} MiB, "
          f"peak {max(r['memory']['VmHWM'] for r in results) / 1024:.0f} MiB (Postgres is a separate process)")
    print(f"CPU µs per request (share of all {cores} cores); write transactions:")
    for r in results:
        requests = max(1, sum(r["statuses"].values()))
        shares = ", ".join(
            f"{name} {used / requests * 1e6:.0f} ({used / r['elapsed'] / cores:.0%})"
            for name, used in zip(("sidecar", "postgres", "load generator"), r["cpu"])
        )
        batches, events = r["batches"]
        print(f"{r['concurrency']:>7}  {shares}; {batches / r['elapsed']:,.0f}/s, {events / max(1, batches):.0f} heartbeats each")
    if no_op:
        print("No-op aiohttp server (no database, constant JSON 200), same load generator:")
        for r in no_op:
            requests = max(1, sum(r["statuses"].values()))
            server, client = (used / requests * 1e6 for used in r["cpu"])
            print(f"{latency_columns(r)}  CPU µs/request: server {server:.0f}, load generator {client:.0f}")


async def main(seconds: float, apps: int, concurrencies: list[int], baseline: bool, client: str, sidecars: int) -> None:
    results, idle, uuids = await measure_pulser(seconds, apps, concurrencies, client, sidecars)
    print(f"# load generator: {'wrk (C, 2 threads)' if client == 'wrk' else 'aiohttp client in this process'}; "
          f"{sidecars} sidecar process(es) on one port (figures for memory are per process)")
    no_op = await measure_no_op(seconds, uuids, concurrencies) if baseline else []
    report(seconds, apps, results, idle, no_op)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--apps", type=int, default=10_000)
    parser.add_argument("--concurrency", default="64,256", help="comma-separated client counts, one run each")
    parser.add_argument("--baseline", action="store_true", help="also measure a do-nothing aiohttp server")
    parser.add_argument(
        "--client", choices=("wrk", "python"), default="wrk" if shutil.which("wrk") else "python",
        help="load generator: wrk (Debian package `wrk`; default when installed) or a Python aiohttp client",
    )
    parser.add_argument("--sidecars", type=int, default=1, help="`pulser sidecar` processes sharing the port")
    args = parser.parse_args()
    asyncio.run(main(
        args.seconds, args.apps, [int(c) for c in args.concurrency.split(",")], args.baseline, args.client, args.sidecars
    ))

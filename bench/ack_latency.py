"""Slash-command ack latency through the sandbox, and the Pulser process's memory.

Starts the Slack sandbox here, runs `pulser run` as a separate process pointed at it (tokens set,
SLACK_API_URL = the sandbox, embedded Postgres in a temp dir unless DATABASE_URL is set), sends
`/pulser help` N times one at a time and N times with C in flight, and prints p50/p90/p99/max ack
latency (envelope sent → ack received, which includes the ledger INSERT and UPDATE) and the
process's resident memory (VmRSS now, VmHWM peak). Run:

    .venv/bin/python bench/ack_latency.py [--commands 1000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.measure import free_port, memory_kib, percentile  # noqa: E402

from sandbox import SlackSandbox  # noqa: E402








async def send_many(sb: SlackSandbox, count: int, concurrency: int) -> tuple[list[float], float]:
    latencies: list[float] = []
    semaphore = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with semaphore:
            started = time.perf_counter()
            ack = await sb.send_slash_command(command="/pulser", text="help", timeout=5.0)
            latencies.append((time.perf_counter() - started) * 1000)
            assert ack.get("payload"), "every command must be answered in its ack"

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(count)))
    return latencies, time.perf_counter() - started


async def main(commands: int, concurrency: int) -> None:
    sb = SlackSandbox(port=0)
    await sb.start()
    http_port = free_port()
    with tempfile.TemporaryDirectory(prefix="pulser-bench-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PULSER_", "HTTP"))}
        env.update(
            SLACK_BOT_TOKEN="xoxb-bench", SLACK_APP_TOKEN="xapp-bench", SLACK_API_URL=sb.api_url,
            PULSER_DATA_DIR=tmp, PULSER_HTTP_PORT=str(http_port), LOG_LEVEL="warning", LOG_FORMAT="json",
            PYTHONPATH=str(REPO),
        )
        process = subprocess.Popen([sys.executable, "-m", "bot.cli", "run"], env=env, cwd=REPO)
        try:
            await sb.wait_for_connection(timeout=60)
            async with httpx.AsyncClient() as http:
                for _ in range(300):
                    if (await http.get(f"http://127.0.0.1:{http_port}/health")).status_code == 200:
                        break
                    await asyncio.sleep(0.1)
            idle = memory_kib(process.pid)
            await send_many(sb, 50, 1)  # warm-up: first auth.test, pool connections, code paths
            rows = []
            for label, inflight in (("sequential", 1), (f"{concurrency} in flight", concurrency)):
                latencies, elapsed = await send_many(sb, commands, inflight)
                rows.append((label, latencies, elapsed))
            loaded = memory_kib(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=30)
    await sb.stop()

    print(f"# /pulser help ack latency through the sandbox — {commands} commands per run")
    print(f"# {platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores, "
          f"Pulser in its own process, embedded Postgres")
    print(f"{'run':<16} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'cmds/s':>8}")
    for label, latencies, elapsed in rows:
        print(f"{label:<16} {statistics.median(latencies):>8.1f} {percentile(latencies, 90):>8.1f} "
              f"{percentile(latencies, 99):>8.1f} {max(latencies):>8.1f} {len(latencies) / elapsed:>8.0f}")
    print(f"RSS of the pulser process: idle {idle['VmRSS'] / 1024:.0f} MiB, after load {loaded['VmRSS'] / 1024:.0f} MiB, "
          f"peak {loaded['VmHWM'] / 1024:.0f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    asyncio.run(main(args.commands, args.concurrency))

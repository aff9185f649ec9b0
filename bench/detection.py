"""How fast a missed heartbeat becomes a Slack message, with many registered apps.

Runs `pulser run` as its own process against the Slack sandbox (started here) and an embedded
Postgres (started here too, so the apps can be bulk-inserted before Pulser starts). A missed
heartbeat is an incident: the watcher marks the app down and opens it through the alert pipeline
in one transaction, and the incident notifier posts it. Two scenarios per app count:

1. staggered: `--due` apps have deadlines spread over the next `--spread` seconds, the rest are
   due far in the future; each incident's delay = time of its chat.postMessage at the sandbox minus
   its app's deadline. Prints p50/p90/p99/max.
2. at once: `--burst` apps (default 10,000) share one deadline; prints how long until all are
   marked down (their incidents opened) in Postgres and until every incident was in Slack — its
   own message, or counted by its channel's storm digest (the first few get messages of their
   own, the rest fold into the digest and are named in its thread, 50 per reply).

    .venv/bin/python bench/detection.py [--apps 10000,100000] [--due 200] [--spread 20] [--burst 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.measure import free_port, memory_kib, percentile  # noqa: E402

from sandbox import SlackSandbox  # noqa: E402
from storage import database  # noqa: E402
from storage.embedded import EmbeddedPostgres  # noqa: E402
from storage.migrations import apply_migrations  # noqa: E402

# An incident message's fallback text: ":large_orange_circle: [HIGH] app-17 missed its heartbeat — app-17".
MISSED = re.compile(r"\] (app-\d+) missed its heartbeat")
# Due apps whose incident is in Slack: posted on its own, or folded into a posted digest rendered
# after it folded.
DELIVERED = """
SELECT count(*) FROM incident_messages m LEFT JOIN storm_digests d ON d.id = m.digest_id
 WHERE m.escalation_of IS NULL AND m.render_due_at IS NULL
   AND (m.slack_ts IS NOT NULL OR (m.folded AND d.slack_ts IS NOT NULL AND d.last_rendered_at >= m.created_at))
"""








async def insert_apps(pool: asyncpg.Pool, *, total: int, due: int, due_in: float, spread: float) -> None:
    """`total` apps, `due` of them with deadlines spread over [due_in, due_in + spread) seconds."""
    await pool.execute(
        "TRUNCATE applications, notifications, heartbeats, incidents, storm_digests, slack_budgets RESTART IDENTITY CASCADE"
    )
    await pool.execute(
        """
        INSERT INTO applications (uuid, name, expected_interval, grace_period, channel, state,
                                  last_heartbeat, due_at, next_deadline)
        SELECT gen_random_uuid(), 'app-' || g, 3600, 0, '#ops-alerts', 'up',
               now(), now() + interval '1 hour',
               CASE WHEN g <= $2 THEN now() + make_interval(secs => $3 + $4 * (g - 1) / greatest($2, 1))
                    ELSE now() + interval '1 day' END
          FROM generate_series(1, $1) AS g
        """,
        total,
        due,
        due_in,
        spread,
    )
    await pool.execute("ANALYZE applications")


async def run_scenario(
    dsn: str, pool: asyncpg.Pool, *, total: int, due: int, due_in: float, spread: float, fold: bool
) -> dict:
    # No rate limits: this measures how soon Pulser notices a missed deadline, and 200 deadlines in
    # 20 s to one channel is ten times what Slack lets a channel take; with limits on, the figures
    # would be Slack's 1-post-a-second pacing, not Pulser's detection.
    sb = SlackSandbox(port=0, rate_limits=False)
    await sb.start()
    await insert_apps(pool, total=total, due=due, due_in=due_in, spread=spread)
    deadlines = {
        r["name"]: r["next_deadline"].timestamp()
        for r in await pool.fetch("SELECT name, next_deadline FROM applications WHERE next_deadline < now() + interval '1 hour'")
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PULSER_", "HTTP"))}
    env.update(
        SLACK_BOT_TOKEN="xoxb-bench", SLACK_APP_TOKEN="xapp-bench", SLACK_API_URL=sb.api_url, DATABASE_URL=dsn,
        PULSER_HTTP_PORT=str(free_port()), LOG_LEVEL="warning", LOG_FORMAT="json", PYTHONPATH=str(REPO),
        HEARTBEAT_CHECK_INTERVAL="30",
        # The sandbox enforces no limits here, so Pulser need not pace itself. The staggered
        # scenario measures detection → a message per app, so nothing folds into a storm digest
        # (bench/storm.py measures storms); the at-once scenario keeps Pulser's storm default.
        PULSER_SLACK_PACING="0",
        **({} if fold else {"PULSER_STORM_THRESHOLD": "0"}),
    )
    process = subprocess.Popen([sys.executable, "-m", "bot.cli", "run"], env=env, cwd=REPO)
    try:
        # Done when every due app's incident is in Slack: its message posted, or folded into a
        # storm digest that is posted and shows it (rendered after the last fold).
        deadline_at, last_deadline = min(deadlines.values()), max(deadlines.values())
        while time.time() < last_deadline + 600:
            if await pool.fetchval(DELIVERED) >= due:
                break
            if process.poll() is not None:
                raise RuntimeError("pulser exited")
            await asyncio.sleep(0.05)
        all_down_at = await pool.fetchval("SELECT max(updated_at) FROM applications WHERE state = 'down'")
        all_sent_at = await pool.fetchval(
            "SELECT greatest((SELECT max(last_rendered_at) FROM incident_messages WHERE slack_ts IS NOT NULL),"
            " (SELECT max(last_rendered_at) FROM storm_digests))"
        )
        kib = memory_kib(process.pid)
        memory = (kib["VmRSS"] / 1024, kib["VmHWM"] / 1024)
    finally:
        process.terminate()
        process.wait(timeout=30)
    posts = sb.calls_to("chat.postMessage")
    delays = []
    for call in posts:
        if (found := MISSED.search(call.params.get("text") or "")) and found.group(1) in deadlines:
            delays.append((call.at - deadlines[found.group(1)]) * 1000)
    await sb.stop()
    return {
        "posted": len(posts),
        "delays": delays,
        "all_down_s": (all_down_at.timestamp() - deadline_at) if all_down_at else None,
        "all_sent_s": (all_sent_at.timestamp() - deadline_at) if all_sent_at else None,
        "rss": memory,
    }


async def main(app_counts: list[int], due: int, spread: float, burst: int) -> None:
    with tempfile.TemporaryDirectory(prefix="pulser-bench-") as tmp:
        server = EmbeddedPostgres(Path(tmp))
        dsn = await server.start()
        pool = await database.create_pool(dsn, max_size=4)
        await apply_migrations(pool)
        try:
            print("# missed-heartbeat detection: deadline → chat.postMessage at the sandbox")
            print(f"# Pulser in its own process, embedded Postgres, {os.cpu_count()} cores shared with the sandbox")
            print(f"{'apps':>8} {'scenario':<22} {'alerts':>7} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'RSS MiB':>8}")
            for total in app_counts:
                result = await run_scenario(dsn, pool, total=total, due=due, due_in=8.0, spread=spread, fold=False)
                d = result["delays"]
                print(f"{total:>8} {f'{due} staggered over {spread:.0f}s':<22} {result['posted']:>7} "
                      f"{statistics.median(d):>8.0f} {percentile(d, 90):>8.0f} {percentile(d, 99):>8.0f} {max(d):>8.0f} "
                      f"{result['rss'][1]:>8.0f}")
            for total in app_counts:
                n = min(burst, total)
                result = await run_scenario(dsn, pool, total=total, due=n, due_in=8.0, spread=0.0, fold=True)
                print(f"{total:>8} {f'{n} due at once':<22} {result['posted']:>7}   all marked down "
                      f"{result['all_down_s']:.3f} s after the deadline, every incident in Slack after "
                      f"{result['all_sent_s']:.2f} s in {result['posted']} chat.postMessage calls (own messages, "
                      f"the storm digest and its roll call) (peak RSS {result['rss'][1]:.0f} MiB)")
        finally:
            await pool.close()
            await server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", default="10000,100000")
    parser.add_argument("--due", type=int, default=200)
    parser.add_argument("--spread", type=float, default=20.0)
    parser.add_argument("--burst", type=int, default=10000)
    args = parser.parse_args()
    asyncio.run(main([int(a) for a in args.apps.split(",")], args.due, args.spread, args.burst))

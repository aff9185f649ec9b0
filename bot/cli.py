"""The `pulser` command: run | bot | sidecar | migrate, and --version.

Exit codes: 0 on a clean stop, 2 for bad settings or usage (one line on stderr naming what to fix),
1 when start-up fails for another reason.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

import structlog

from bot import __version__
from bot.logging import configure_logging
from bot.settings import Settings, SettingsError, load_settings

log = structlog.get_logger("pulser")

COMMANDS = {
    "run": "run everything in one process: Socket Mode bot, HTTP sidecar, scheduler",
    "bot": "run only the Socket Mode bot and the scheduler",
    "sidecar": "run only the HTTP sidecar (heartbeats, webhooks, API, /health, /metrics) and the scheduler",
    "migrate": "apply database migrations and exit",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pulser", description="Pulser, the Slack ops bot. Configuration comes from the environment (see README)."
    )
    parser.add_argument("--version", action="version", version=f"pulser {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        sub.add_parser(name, help=help_text, description=help_text)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command is None:
        build_parser().print_help(sys.stderr)
        return 2
    try:
        settings = load_settings(os.environ)
    except SettingsError as exc:
        print(f"pulser: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format, settings.secrets())
    try:
        if args.command == "migrate":
            return asyncio.run(_migrate(settings))
        return asyncio.run(_serve(settings, args.command))
    except KeyboardInterrupt:
        return 0


async def _migrate(settings: Settings) -> int:
    from storage import database
    from storage.embedded import EmbeddedPostgres
    from storage.migrations import apply_migrations

    embedded = EmbeddedPostgres(settings.data_dir) if settings.database_url is None else None
    dsn = await embedded.start() if embedded else settings.database_url
    assert dsn is not None
    try:
        pool = await database.create_pool(dsn, max_size=2)
        try:
            applied = await apply_migrations(pool)
        finally:
            await pool.close()
    finally:
        if embedded:
            await embedded.stop()
    print(f"pulser: {len(applied)} migration(s) applied" + (f": {', '.join(applied)}" if applied else ""))
    return 0


async def _serve(settings: Settings, mode: str) -> int:
    from bot.runtime import Runtime

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    runtime = Runtime(settings, mode)  # type: ignore[arg-type]
    try:
        await runtime.start()
    except Exception as exc:
        log.error("pulser.start_failed", error=f"{type(exc).__name__}: {exc}")
        return 1
    try:
        await stop.wait()
        log.info("pulser.stopping", reason="signal")
    finally:
        await runtime.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

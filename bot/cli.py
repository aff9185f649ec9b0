"""The `pulser` command: run | bot | sidecar | migrate | send-alert | config, and --version.

Exit codes: 0 on a clean stop, 2 for bad settings or usage (one line on stderr naming what to fix,
also when a port or address taken from the environment cannot be bound), 1 when start-up fails
for another reason (e.g. an unreachable database).
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
from bot.ports import BindError
from alerts.normalized import SEVERITIES
from bot.settings import Settings, SettingsError, load_settings

log = structlog.get_logger("pulser")

COMMANDS = {
    "run": "run everything in one process: Socket Mode bot, HTTP sidecar, scheduler",
    "bot": "run only the Socket Mode bot and the scheduler",
    "sidecar": "run only the HTTP sidecar (heartbeats, webhooks, API, /health, /metrics) and the scheduler",
    "migrate": "apply database migrations and exit",
}
CONFIG_HELP = "check, export or describe the config file (PULSER_CONFIG: routing rules, silences, escalation policies, …)"
SEND_ALERT_HELP = "post an alert through the pipeline (POST /webhooks/generic on a running Pulser)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pulser", description="Pulser, the Slack ops bot. Configuration comes from the environment (see README)."
    )
    parser.add_argument("--version", action="version", version=f"pulser {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        sub.add_parser(name, help=help_text, description=help_text)
    send = sub.add_parser("send-alert", help=SEND_ALERT_HELP, description=SEND_ALERT_HELP + (
        ". Authenticates with PULSER_WEBHOOK_TOKEN; the alert is grouped, routed, silenced and posted like any other."
    ))
    send.add_argument("--title", required=True, help="what is wrong, one line")
    send.add_argument("--severity", default="high", choices=SEVERITIES, help="default: high")
    send.add_argument("--message", default="", help="details (the alert's description)")
    send.add_argument("--service", default="", help="affected service; routing rules match on it")
    send.add_argument("--env", default="", help="environment, e.g. production")
    send.add_argument("--fingerprint", help="identifies the problem across repeats (default: service + title)")
    send.add_argument("--link", help="an http(s) URL with more detail")
    send.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE", help="a tag; repeatable")
    send.add_argument("--resolve", action="store_true", help="send the alert as resolved (closes its incident)")
    config = sub.add_parser("config", help=CONFIG_HELP, description=CONFIG_HELP)
    config_sub = config.add_subparsers(dest="config_command", metavar="SUBCOMMAND", required=True)
    check = config_sub.add_parser(
        "check", help="validate a config file: every error with its path and line (exit 2), or a summary (exit 0)"
    )
    check.add_argument("file", help="the YAML file to check")
    export = config_sub.add_parser(
        "export", help="write today's routing rules, silences, inhibition rules, event routes, deploy services, outbound "
        "channels, schedules and escalation policies as a config file (secrets as ${PULSER_…} variables, never values)"
    )
    export.add_argument("-o", "--output", help="write here instead of standard output")
    schema = config_sub.add_parser("schema", help="print the config file's JSON Schema (docs/pulser.schema.json)")
    schema.add_argument("-o", "--output", help="write here instead of standard output")
    send.add_argument("--url", help="Pulser's base URL (default: PULSER_PUBLIC_URL, else http://PULSER_HTTP_HOST:PULSER_HTTP_PORT)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command is None:
        build_parser().print_help(sys.stderr)
        return 2
    if args.command == "config" and args.config_command in ("check", "schema"):
        return config_check(args.file) if args.config_command == "check" else _write(args.output, _schema_text())
    try:
        settings = load_settings(os.environ)
    except SettingsError as exc:
        print(f"pulser: {exc}", file=sys.stderr)
        return 2
    if args.command in ("run", "bot") and (problem := settings.slack_start_problem()):
        print(f"pulser: {problem}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format, settings.secrets())
    try:
        if args.command == "migrate":
            return asyncio.run(_migrate(settings))
        if args.command == "send-alert":
            return send_alert(args, settings)
        if args.command == "config":
            return asyncio.run(_config_export(settings, args.output))
        return asyncio.run(_serve(settings, args.command))
    except KeyboardInterrupt:
        return 0


async def _migrate(settings: Settings) -> int:
    from storage import database
    from storage.embedded import EmbeddedPostgres
    from storage.migrations import apply_migrations

    embedded = EmbeddedPostgres(settings.data_dir) if settings.database_url is None else None
    try:
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
    except Exception as exc:  # an unreachable database is one line, as for `pulser run`, not a traceback
        log.error("pulser.migrate_failed", error=f"{type(exc).__name__}: {exc}")
        return 1
    print(f"pulser: {len(applied)} migration(s) applied" + (f": {', '.join(applied)}" if applied else ""))
    return 0


def config_check(path: str) -> int:
    """0 and a one-line summary for a file Pulser would apply; 2 and every error otherwise."""
    from alerts.config_file import ConfigInvalid, check_text

    try:
        text = open(path, encoding="utf-8").read()
    except (OSError, UnicodeDecodeError) as exc:
        print(f"pulser: cannot read {path}: {exc}", file=sys.stderr)
        return 2
    try:
        spec = check_text(text)
    except ConfigInvalid as exc:
        for error in exc.errors:
            print(f"{path}:{error.line or 1}: {error.path or '(file)'}: {error.message}", file=sys.stderr)
        print(f"pulser: {path}: {len(exc.errors)} error(s); nothing would be applied", file=sys.stderr)
        return 2
    for warning in spec.warnings:
        print(f"{path}:{warning.line or 1}: {warning.path or '(file)'}: warning: {warning.message}", file=sys.stderr)
    print(f"pulser: {path} is valid: {spec.summary()}")
    return 0


def _schema_text() -> str:
    from alerts.config_file import json_schema_text

    return json_schema_text()


def _write(output: str | None, text: str) -> int:
    if output:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
    return 0


async def _config_export(settings: Settings, output: str | None) -> int:
    """Today's state from the database (the embedded one when DATABASE_URL is unset)."""
    from alerts.config_export import export_text
    from storage import database, managed_config
    from storage.embedded import EmbeddedPostgres
    from storage.migrations import apply_migrations

    embedded = EmbeddedPostgres(settings.data_dir) if settings.database_url is None else None
    try:
        dsn = await embedded.start() if embedded else settings.database_url
        assert dsn is not None
        try:
            pool = await database.create_pool(dsn, max_size=2)
            try:
                await apply_migrations(pool)
                text = export_text(await managed_config.current_state(pool))
            finally:
                await pool.close()
        finally:
            if embedded:
                await embedded.stop()
    except Exception as exc:  # an unreachable database is one line, not a traceback
        log.error("pulser.config_export_failed", error=f"{type(exc).__name__}: {exc}")
        return 1
    return _write(output, text)


def send_alert(args: argparse.Namespace, settings: Settings) -> int:
    """The replacement for a hand-rolled send_alert.py: the same generic webhook any script may use."""
    import logging

    import httpx

    # httpx logs every request at INFO; the command prints its own one-line outcome.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if not settings.webhook_token:
        print("pulser: set PULSER_WEBHOOK_TOKEN (the same value the running Pulser has) to send alerts", file=sys.stderr)
        return 2
    tags: dict[str, str] = {}
    for item in args.tag:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            print(f"pulser: invalid --tag {item!r}: expected KEY=VALUE, e.g. --tag team=payments", file=sys.stderr)
            return 2
        tags[key.strip()] = value.strip()
    alert = {
        "title": args.title,
        "severity": args.severity,
        "description": args.message,
        "service": args.service,
        "env": args.env,
        "status": "resolved" if args.resolve else "firing",
        "tags": tags,
    }
    if args.fingerprint:
        alert["fingerprint"] = args.fingerprint
    if args.link:
        alert["link"] = args.link
    base = (args.url or settings.public_base_url).rstrip("/")
    try:
        response = httpx.post(
            f"{base}/webhooks/generic", json=alert, timeout=10,
            headers={"Authorization": f"Bearer {settings.webhook_token}"},
        )
    except httpx.HTTPError as exc:
        print(f"pulser: could not reach Pulser at {base}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    try:
        body = response.json()
    except ValueError:
        body = {"error": response.text[:200]}
    if response.status_code in (200, 202):
        print(f"pulser: alert {body.get('status', 'accepted')} ({response.status_code})")
        return 0
    print(f"pulser: {base} answered {response.status_code}: {body.get('error')}: {body.get('detail')}", file=sys.stderr)
    return 1


async def _serve(settings: Settings, mode: str) -> int:
    from bot.runtime import Runtime

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    runtime = Runtime(settings, mode)  # type: ignore[arg-type]
    try:
        await runtime.start()
    except BindError as exc:  # a setting to change: name it, as for a bad value
        log.error("pulser.start_failed", error=str(exc), variable=exc.variable)
        return 2
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

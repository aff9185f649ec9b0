"""What an operator reads when start-up cannot go on: one clean line that says what to fix, never a
traceback. Real subprocesses, as an operator runs them."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys

import pytest

from bot.metrics import Metrics
from bot.runtime import Runtime
from tests.conftest import make_settings
from tests.test_cli import REPO, pulser_env, run_cli

WEBHOOK_TOKEN = "send-alert-test-token"


def log_lines(stderr: str) -> list[dict]:
    """Every stderr line must be one JSON log line; returns them parsed."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]


def unreachable_dsn() -> str:
    """A Postgres DSN on a local port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"postgresql://pulser:secret@127.0.0.1:{port}/pulser"


def test_migrate_with_an_unreachable_database_prints_one_line_and_exits_1():
    result = run_cli("migrate", env=pulser_env(DATABASE_URL=unreachable_dsn()))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    [line] = log_lines(result.stderr)
    assert line["event"] == "pulser.migrate_failed" and line["level"] == "error"
    assert "Connect" in line["error"] or "refused" in line["error"]
    assert "secret" not in result.stderr


@pytest.fixture
def held_port():
    """A port another program listens on (no SO_REUSEPORT, as most programs do)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_a_taken_http_port_stops_start_up_with_one_line_naming_pulser_http_port(database_url, held_port):
    result = run_cli("run", env=pulser_env(DATABASE_URL=database_url, PULSER_HTTP_PORT=str(held_port),
                                           PULSER_SANDBOX="1", PULSER_SANDBOX_PORT="0"), timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    [failed] = [line for line in log_lines(result.stderr) if line["event"] == "pulser.start_failed"]
    assert failed["error"].startswith(f"PULSER_HTTP_PORT={held_port} is already in use on 127.0.0.1")
    assert failed["variable"] == "PULSER_HTTP_PORT"


def test_a_taken_sandbox_port_stops_start_up_with_one_line_naming_pulser_sandbox_port(database_url, held_port):
    result = run_cli("run", env=pulser_env(DATABASE_URL=database_url, PULSER_HTTP_PORT="0",
                                           PULSER_SANDBOX="1", PULSER_SANDBOX_PORT=str(held_port)), timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    [failed] = [line for line in log_lines(result.stderr) if line["event"] == "pulser.start_failed"]
    assert failed["error"].startswith(f"PULSER_SANDBOX_PORT={held_port} is already in use")


@pytest.fixture
def settings(database_url, sandbox):
    return make_settings(
        DATABASE_URL=database_url,
        SLACK_BOT_TOKEN="xoxb-test-bot",
        SLACK_APP_TOKEN="xapp-test-app",
        SLACK_API_URL=sandbox.api_url,
        PULSER_WEBHOOK_TOKEN=WEBHOOK_TOKEN,
    )


async def test_send_alert_prints_its_own_line_and_nothing_on_stderr(settings):
    runtime = Runtime(settings, "sidecar", metrics=Metrics("test"))
    await runtime.start()
    try:
        env = pulser_env(PULSER_WEBHOOK_TOKEN=WEBHOOK_TOKEN, LOG_LEVEL="info")
        result = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "bot.cli", "send-alert", "--title", "Disk full on db-1",
             "--url", f"http://127.0.0.1:{runtime.http_port}"],
            env=env, cwd=REPO, capture_output=True, text=True, timeout=60,
        )
    finally:
        await runtime.stop()
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "pulser: alert accepted (202)"
    assert result.stderr == ""

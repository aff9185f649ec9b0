"""The `pulser` command as an operator runs it: real subprocesses, real embedded Postgres."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pulser_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PULSER_", "DATABASE_URL", "HTTP"))}
    env.update({"LOG_FORMAT": "json", "PYTHONPATH": str(REPO)})
    env.update(extra)
    return env


def run_cli(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize(
    "variable, value",
    [("HEARTBEAT_CHECK_INTERVAL", "abc"), ("SLACK_API_URL", "nota url"), ("CHECK_INTERVAL_MINUTES", "0")],
)
def test_bad_settings_stop_start_up_with_one_line_and_exit_code_2(variable, value):
    result = run_cli("run", env=pulser_env(**{variable: value}))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"pulser: invalid {variable}=")


def test_a_bad_secret_url_stops_start_up_without_printing_the_secret():
    # The settings line is printed before log redaction exists: it must hide the check's UUID itself.
    result = run_cli("run", env=pulser_env(PULSER_SELF_PING_URL="hc-ping.com/0f3c9c8e-1b2a-4c5d-9e8f-0123456789ab"))
    assert result.returncode == 2
    assert result.stderr.startswith("pulser: invalid PULSER_SELF_PING_URL=")
    assert "0f3c9c8e" not in result.stderr


@pytest.mark.parametrize("command", ["run", "bot"])
def test_a_real_database_without_slack_tokens_refuses_to_start_with_one_line(command):
    # Both tokens missing next to a real database: most likely a secret that did not mount.
    result = run_cli(command, env=pulser_env(DATABASE_URL="postgresql://pulser@127.0.0.1:1/pulser"), timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pulser: SLACK_BOT_TOKEN and SLACK_APP_TOKEN are unset")
    assert "PULSER_SANDBOX=1" in lines[0]


def test_version_prints_the_version():
    result = run_cli("--version", env=pulser_env())
    assert result.returncode == 0 and result.stdout.startswith("pulser 0.")


def test_no_command_prints_usage_and_exits_2():
    result = run_cli(env=pulser_env())
    assert result.returncode == 2 and "run" in result.stderr


async def test_migrate_applies_once_then_nothing(database_url):
    from storage import database

    from storage.migrations import load_migrations

    pool = await database.create_pool(database_url, max_size=1)
    await pool.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    await pool.close()
    versions = [m.version for m in load_migrations()]
    first = run_cli("migrate", env=pulser_env(DATABASE_URL=database_url))
    assert first.returncode == 0, first.stderr
    assert f"{len(versions)} migration(s) applied: {', '.join(versions)}" in first.stdout
    second = run_cli("migrate", env=pulser_env(DATABASE_URL=database_url))
    assert "0 migration(s) applied" in second.stdout


def wait_healthy(base: str, process: subprocess.Popen, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"pulser exited early: {process.stderr.read()}")
        try:
            response = httpx.get(base + "/health", timeout=2)
            if response.status_code == 200:
                return response.json()
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("pulser did not become healthy")


def stop(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    return stderr


def test_pulser_run_with_nothing_configured_uses_embedded_postgres_and_the_sandbox(tmp_path):
    http_port, sandbox_port = free_port(), free_port()
    env = pulser_env(
        PULSER_DATA_DIR=str(tmp_path / "data"), PULSER_HTTP_PORT=str(http_port), PULSER_SANDBOX_PORT=str(sandbox_port)
    )
    base, sandbox = f"http://127.0.0.1:{http_port}", f"http://127.0.0.1:{sandbox_port}"

    process = subprocess.Popen([sys.executable, "-m", "bot.cli", "run"], env=env, cwd=REPO, stderr=subprocess.PIPE, text=True)
    try:
        health = wait_healthy(base, process)
        assert health["components"]["socket_mode"]["sandbox"] == sandbox
        answer = httpx.post(sandbox + "/sandbox/command", json={"command": "/pulser", "text": "help"}, timeout=5)
        assert answer.status_code == 200
        assert "/pulser help" in str(answer.json()["ack"]["payload"])
    finally:
        stderr = stop(process)
    assert '"event": "sandbox.listening"' in stderr
    pgdata = tmp_path / "data" / "postgres"
    assert (pgdata / "PG_VERSION").exists()
    assert not (pgdata / "postmaster.pid").exists(), "embedded Postgres is stopped with Pulser"

    # Data survives a restart: the ledger still holds the first run's envelope.
    process = subprocess.Popen([sys.executable, "-m", "bot.cli", "run"], env=env, cwd=REPO, stderr=subprocess.PIPE, text=True)
    try:
        health = wait_healthy(base, process)
        assert health["components"]["ledger"]["processed"] >= 1
    finally:
        stop(process)

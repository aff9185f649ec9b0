"""The Docker image as a user runs it with no tokens: built from this checkout, started with both
ports published, /health and the sandbox page answer from outside the container.

Needs a Docker engine; skipped with the reason when `docker info` fails (tests/test_sandbox_bind.py
checks the same settings and binding without Docker)."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.test_cli import free_port

REPO = Path(__file__).resolve().parent.parent


def docker_unavailable() -> str | None:
    """Why Docker cannot be used here, or None when an engine answers."""
    if shutil.which("docker") is None:
        return "no docker command on this machine"
    try:
        info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`docker info` failed: {exc}"
    if info.returncode != 0:
        reason = (info.stderr.strip().splitlines() or ["no output"])[-1]
        return f"no Docker engine answers `docker info`: {reason}"
    return None


pytestmark = pytest.mark.skipif(bool(docker_unavailable()), reason=docker_unavailable() or "")


def wait_for(url: str, container: str, timeout: float = 180) -> httpx.Response:
    """The first 200 from `url`; fails early, with the container's log, if the container stopped."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=3)
            if response.status_code == 200:
                return response
        except httpx.HTTPError:
            pass
        state = subprocess.run(["docker", "inspect", "-f", "{{.State.Running}}", container], capture_output=True, text=True)
        if state.stdout.strip() != "true":
            logs = subprocess.run(["docker", "logs", container], capture_output=True, text=True)
            raise AssertionError(f"the container stopped:\n{logs.stdout}{logs.stderr}")
        time.sleep(1)
    raise AssertionError(f"{url} did not answer 200 within {timeout} s")


@pytest.mark.timeout(1800)  # building the image downloads the base image and every dependency
def test_the_image_without_tokens_serves_health_and_the_sandbox_page_outside_the_container():
    tag = f"pulser-test:{uuid.uuid4().hex[:8]}"
    container = f"pulser-test-{uuid.uuid4().hex[:8]}"
    build = subprocess.run(["docker", "build", "-t", tag, str(REPO)], capture_output=True, text=True, timeout=1500)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    http_port, sandbox_port = free_port(), free_port()
    try:
        started = subprocess.run(
            ["docker", "run", "-d", "--name", container, "-p", f"127.0.0.1:{http_port}:8080",
             "-p", f"127.0.0.1:{sandbox_port}:8081", tag],
            capture_output=True, text=True, timeout=120,
        )
        assert started.returncode == 0, started.stderr
        health = wait_for(f"http://127.0.0.1:{http_port}/health", container).json()
        assert health["components"]["socket_mode"]["status"] == "up"
        page = wait_for(f"http://127.0.0.1:{sandbox_port}/", container)
        assert "Slack sandbox" in page.text
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, timeout=120)
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, timeout=120)

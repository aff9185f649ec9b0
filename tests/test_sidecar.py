"""The HTTP sidecar on its own (`pulser sidecar`): /health, /metrics, and JSON errors."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import AsyncIterator

import httpx
import pytest

from bot.metrics import Metrics
from bot.runtime import Runtime
from tests.conftest import make_settings


@pytest.fixture
async def sidecar(database_url: str) -> AsyncIterator[Runtime]:
    runtime = Runtime(make_settings(DATABASE_URL=database_url, PULSER_MAX_BODY_BYTES="2048"), "sidecar", metrics=Metrics("test"))
    await runtime.start()
    yield runtime
    await runtime.stop()


@pytest.fixture
async def http(sidecar: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sidecar.http_port}", timeout=5) as client:
        yield client


async def test_health_is_200_with_every_part_when_all_is_up(http):
    response = await http.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["version"] and body["mode"] == "sidecar"
    assert body["components"]["database"]["status"] == "up"
    assert body["components"]["scheduler"]["status"] == "up"
    assert body["components"]["socket_mode"]["status"] == "disabled"


async def test_health_is_503_naming_the_database_when_it_is_down(sidecar, http):
    await sidecar.pool.close()
    response = await http.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down" and body["components"]["database"]["status"] == "down"


async def test_health_is_503_when_the_scheduler_is_stopped(sidecar, http):
    sidecar.scheduler.shutdown(wait=False)
    response = await http.get("/health")
    assert response.status_code == 503
    assert response.json()["components"]["scheduler"]["status"] == "down"


async def test_metrics_are_prometheus_text_with_the_pulser_prefix(http):
    await http.get("/health")
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "pulser_up 1.0" in text
    assert 'pulser_http_requests_total{route="/health",status="200"}' in text
    assert "pulser_process_resident_memory_bytes" in text


async def test_an_unknown_path_is_a_json_404(http):
    response = await http.get("/nope")
    assert response.status_code == 404
    assert response.json() == {"error": "not found"}


async def test_a_wrong_method_is_a_json_405_listing_the_allowed_ones(http):
    response = await http.post("/health", content=b"{}")
    assert response.status_code == 405
    assert response.json()["error"] == "method not allowed"
    assert "GET" in response.json()["detail"]["allowed"]
    assert "GET" in response.headers["allow"]


async def test_a_body_over_the_limit_is_a_json_413(http):
    response = await http.post("/health", content=b"x" * 4096)
    assert response.status_code == 413
    assert response.json()["error"] == "request body too large"
    assert "2048" in response.json()["detail"]



async def test_health_reports_the_watcher_apps_and_slack_delivery(sidecar, http):
    from alerts.applications import validate_application
    from storage import applications

    spec = validate_application({"name": "x", "expected_interval": 60}, default_channel="#ops-alerts")
    await applications.create_application(sidecar.pool, spec, created_by=None)
    components = (await http.get("/health")).json()["components"]
    assert components["heartbeat_watcher"]["status"] == "up"
    assert components["applications"]["new"] == 1
    assert components["slack_delivery"]["pending"] == 0


async def test_app_status_gauges_are_refreshed_for_metrics(sidecar, http):
    from alerts.applications import validate_application
    from storage import applications

    spec = validate_application({"name": "x", "expected_interval": 60}, default_channel="#ops-alerts")
    app = await applications.create_application(sidecar.pool, spec, created_by=None)
    await applications.set_active(sidecar.pool, app.id, False)
    await sidecar.refresh_gauges()
    text = (await http.get("/metrics")).text
    assert 'pulser_heartbeat_apps{status="paused"} 1.0' in text


async def test_two_sidecars_can_share_one_port(database_url):
    """Scaling out on one host: the kernel spreads connections over processes bound with SO_REUSEPORT."""
    from bench.measure import free_port

    port = str(free_port())
    runtimes = [Runtime(make_settings(DATABASE_URL=database_url, PULSER_HTTP_PORT=port), "sidecar", metrics=Metrics("t")) for _ in range(2)]
    for runtime in runtimes:
        await runtime.start()
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            assert (await client.get(f"http://127.0.0.1:{port}/health")).status_code == 200
        assert runtimes[0].http_port == runtimes[1].http_port == int(port)
    finally:
        for runtime in runtimes:
            await runtime.stop()


async def test_health_shows_each_scheduled_jobs_last_run(pulser):
    from tests.conftest import eventually

    pulser.scheduler.get_job("metrics-refresh").modify(next_run_time=datetime.now(timezone.utc))
    report = await eventually(lambda: _with_last_run(pulser, "metrics-refresh"), timeout=30)
    assert "metrics-refresh" in report["components"]["scheduler"]["jobs"]


async def _with_last_run(pulser, job_id):
    report = await pulser.health_report()
    return report if job_id in report["components"]["scheduler"]["last_runs"] else None


# --- each part of /health reports its own failure -----------------------------------------------


async def _break_the_applications_report(sidecar: Runtime) -> None:
    # A real failure of one sub-report: the table it reads is gone (a half-applied migration).
    await sidecar.pool.execute("ALTER TABLE applications RENAME TO applications_elsewhere")


async def test_a_sub_report_that_fails_shows_under_its_own_name(sidecar, http):
    await _break_the_applications_report(sidecar)
    response = await http.get("/health")
    assert response.status_code == 503
    components = response.json()["components"]
    assert components["applications"] == {"status": "down", "error": "UndefinedTableError"}
    assert components["ledger"]["status"] == "up", "the ledger answered; it is not the part that failed"
    assert components["slack_delivery"]["status"] != "down"


async def test_a_failing_sub_report_is_logged_once_while_it_keeps_failing(sidecar, http):
    import structlog

    await _break_the_applications_report(sidecar)
    with structlog.testing.capture_logs() as logs:
        for _ in range(3):
            assert (await http.get("/health")).status_code == 503
    failed = [entry for entry in logs if entry["event"] == "health.part_failed"]
    assert len(failed) == 1
    assert failed[0]["part"] == "applications" and "UndefinedTableError" in failed[0]["error"]


# --- the sandbox next to a real database is never healthy ---------------------------------------


async def test_the_sandbox_on_a_real_database_makes_health_503_degraded(database_url):
    settings = make_settings(DATABASE_URL=database_url, PULSER_SANDBOX="1", PULSER_SANDBOX_PORT="0")
    runtime = Runtime(settings, "run", metrics=Metrics("test"))
    await runtime.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{runtime.http_port}", timeout=5) as client:
            response = await client.get("/health")
    finally:
        await runtime.stop()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["components"]["slack"]["status"] == "misconfigured"
    assert body["components"]["slack"]["detail"].startswith("sandbox: no Slack tokens")


async def test_waiting_for_socket_mode_in_a_sidecar_says_it_does_not_run_there(sidecar):
    with pytest.raises(RuntimeError, match="Socket Mode handler is not running"):
        await sidecar.wait_connected(timeout=1)

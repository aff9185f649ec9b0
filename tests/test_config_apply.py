"""Configuration as code against a running Pulser: PULSER_CONFIG applied at start, on SIGHUP and on
file change; a bad file changes nothing and says why (log, /health, Slack); the objects it
defines are read-only in the API and Slack; export → check → apply leaves the state as it was."""

from __future__ import annotations

import os
import signal
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import AsyncIterator

import httpx
import pytest

from alerts.config_export import export_text
from alerts.config_file import check_text
from bot.metrics import Metrics
from bot.runtime import Runtime
from blocks.rules import DELETE
from handlers.slack.admin import forget_answers
from storage import managed_config
from tests.conftest import eventually, make_settings

TOKEN = "t0ken-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ADMIN = "U0ADA"
TODAY = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)

CONFIG = """\
routing_rules:
  - name: payments critical
    envs: [production]
    min_severity: critical
    channel: "#payments"
  - name: api
    services: [api]
    channel: "#api-alerts"
silences:
  - matchers: ['env="staging"']
    starts_at: {starts}
    ends_at: {ends}
    comment: staging is noisy
inhibition_rules:
  - name: critical mutes low
    source_matchers: {{severity: critical}}
    target_matchers: {{severity: low}}
    equal: [service]
event_routes:
  deploy: "#ops-deploy"
deploy_services:
  - name: billing
    action_type: webhook
    action: {{url: "https://deploy.example.com/hook"}}
""".format(starts=(TODAY - timedelta(days=1)).isoformat(), ends=(TODAY + timedelta(days=30)).isoformat())


@pytest.fixture
def config_file(tmp_path) -> Path:
    path = tmp_path / "pulser.yml"
    path.write_text(CONFIG)
    return path


async def start(runtime: Runtime) -> Runtime:
    await runtime.start()
    return runtime


@pytest.fixture
async def sidecar(database_url: str, config_file: Path) -> AsyncIterator[Runtime]:
    settings = make_settings(DATABASE_URL=database_url, PULSER_ADMIN_TOKEN=TOKEN, PULSER_CONFIG=str(config_file))
    runtime = Runtime(settings, "sidecar", metrics=Metrics("test"))
    runtime.config_poll_seconds = 0.05
    await runtime.start()
    yield runtime
    await runtime.stop()


@pytest.fixture
async def http(sidecar: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sidecar.http_port}", headers=AUTH, timeout=10) as client:
        yield client


async def rule_names(runtime: Runtime) -> list[str]:
    return [r["name"] for r in await runtime.pool.fetch("SELECT name FROM routing_rules ORDER BY position")]


async def state(runtime: Runtime) -> dict:
    """Everything a config file holds, without the columns an apply may touch (timestamps)."""
    current = await managed_config.current_state(runtime.pool)
    return {
        kind: [{k: v for k, v in row.items() if k not in ("updated_at", "updated_by")} for row in rows]
        for kind, rows in current.items()
    }


# --- applying ---------------------------------------------------------------------------------------


async def test_the_file_is_applied_at_start_and_its_objects_are_managed(sidecar):
    assert await rule_names(sidecar) == ["payments critical", "api"]
    counts = await managed_config.managed_counts(sidecar.pool)
    assert counts == {"routing_rules": 2, "silences": 1, "inhibition_rules": 1, "event_routes": 1, "deploy_services": 1}


async def test_the_file_comes_before_rules_made_elsewhere(sidecar, http):
    await http.post("/api/rules", json={"name": "made in the api", "channel": "#other"})
    await sidecar.config_sync.apply("test")
    assert await rule_names(sidecar) == ["payments critical", "api", "made in the api"]


async def test_a_changed_file_is_applied_without_a_signal(sidecar, config_file):
    config_file.write_text(CONFIG.replace("name: api\n", "name: api and web\n"))
    await eventually(lambda: _names_are(sidecar, ["payments critical", "api and web"]), timeout=30)


async def test_sighup_applies_the_file_again(database_url, config_file):
    settings = make_settings(DATABASE_URL=database_url, PULSER_CONFIG=str(config_file))
    runtime = Runtime(settings, "sidecar", metrics=Metrics("test"))
    runtime.config_poll_seconds = 3600  # only the signal can notice the change
    await runtime.start()
    try:
        config_file.write_text(CONFIG.replace("name: payments critical", "name: payments"))
        os.kill(os.getpid(), signal.SIGHUP)
        await eventually(lambda: _names_are(runtime, ["payments", "api"]), timeout=30)
    finally:
        await runtime.stop()


async def test_entries_the_file_no_longer_lists_are_removed(sidecar, http):
    kept = (await http.post("/api/rules", json={"name": "not managed", "channel": "#other"})).json()
    sidecar.config_sync.path.write_text("routing_rules:\n  - name: api\n    channel: '#api-alerts'\n")
    assert await sidecar.config_sync.apply("test")
    assert await rule_names(sidecar) == ["api", "not managed"] and kept["id"]
    assert (await http.get("/api/services")).json()["services"] == []
    assert (await http.get("/api/event-routes")).json() == {}
    silences = (await http.get("/api/silences", params={"all": "1"})).json()["silences"]
    assert [(s["status"], s["expired_by"]) for s in silences] == [("expired", "config")]


async def test_applying_the_same_file_again_changes_nothing(sidecar):
    before = await state(sidecar)
    audit_rows = await sidecar.pool.fetchval("SELECT count(*) FROM audit_log")
    assert await sidecar.config_sync.apply("test")
    assert await state(sidecar) == before
    assert await sidecar.pool.fetchval("SELECT count(*) FROM audit_log") == audit_rows


# --- a bad file --------------------------------------------------------------------------------------


async def test_a_bad_file_changes_nothing_and_shows_in_health(sidecar, http):
    before = await state(sidecar)
    sidecar.config_sync.path.write_text(CONFIG.replace('channel: "#payments"', "channel: payments") + "extra: 1\n")
    assert not await sidecar.config_sync.apply("test")
    assert await state(sidecar) == before
    health = (await http.get("/health")).json()
    assert health["status"] == "ok"  # the last good state still works: nothing to restart
    part = health["components"]["config"]
    assert part["status"] == "degraded" and "the last good state stays" in part["error"]
    assert any("routing_rules[0].channel: must be a channel" in e for e in part["errors"])
    assert any("extra: unknown key" in e for e in part["errors"])


async def test_an_apply_the_database_refuses_halfway_changes_nothing(sidecar):
    """Deploy services are applied after routing rules: a refusal there rolls the rules back too."""
    await sidecar.pool.execute("ALTER TABLE deploy_services ADD CONSTRAINT test_refuses_web CHECK (name <> 'web')")
    before = await state(sidecar)
    sidecar.config_sync.path.write_text(
        CONFIG.replace("name: api\n", "name: renamed\n")
        + "  - name: web\n    action_type: webhook\n    action: {url: 'https://y.example'}\n"
    )
    assert not await sidecar.config_sync.apply("test")
    assert await state(sidecar) == before
    assert sidecar.config_sync.errors == ["could not apply: CheckViolationError"]


async def test_a_bad_file_is_said_in_slack_once(database_url, sandbox, config_file):
    settings = make_settings(
        DATABASE_URL=database_url, SLACK_BOT_TOKEN="xoxb-test-bot", SLACK_APP_TOKEN="xapp-test-app",
        SLACK_API_URL=sandbox.api_url, PULSER_CONFIG=str(config_file),
    )
    runtime = Runtime(settings, "run", metrics=Metrics("test"))
    runtime.config_poll_seconds = 3600
    await runtime.start()
    try:
        config_file.write_text("routing_rules:\n  - name: x\n")
        await runtime.config_sync.apply("test")
        await runtime.config_sync.apply("test")  # the same problem again: no second message
        posts = sandbox.calls_to("chat.postMessage")
        said = [c for c in posts if "was not applied" in str(c)]
        assert len(said) == 1
        assert "routing_rules[0].channel: required" in str(said[0]) and str(config_file) in str(said[0])
    finally:
        await runtime.stop()


# --- managed objects are read-only ---------------------------------------------------------------------


async def test_the_api_refuses_to_change_managed_objects_with_409(sidecar, http):
    rule = (await http.get("/api/rules")).json()["rules"][0]
    silence = (await http.get("/api/silences")).json()["silences"][0]
    inhibition = (await http.get("/api/inhibitions")).json()["inhibitions"][0]
    service = (await http.get("/api/services")).json()["services"][0]
    assert (rule["managed_by"], silence["managed_by"], service["managed_by"]) == ("config", "config", "config")
    answers = [
        await http.put(f"/api/rules/{rule['id']}", json={"channel": "#elsewhere"}),
        await http.delete(f"/api/rules/{rule['id']}"),
        await http.post(f"/api/rules/{rule['id']}/move", json={"position": 2}),
        await http.delete(f"/api/silences/{silence['id']}"),
        await http.delete(f"/api/inhibitions/{inhibition['id']}"),
        await http.put(f"/api/services/{service['id']}", json={"requires_approval": True}),
        await http.delete(f"/api/services/{service['id']}"),
        await http.put("/api/event-routes", json={"deploy": "#elsewhere"}),
    ]
    assert [a.status_code for a in answers] == [409] * 8
    assert {a.json()["error"] for a in answers} == {"managed by the config file"}
    assert "change or remove it in the file" in answers[0].json()["detail"]
    assert await rule_names(sidecar) == ["payments critical", "api"]


async def test_unmanaged_event_routes_stay_editable_next_to_managed_ones(http):
    answer = await http.put("/api/event-routes", json={"deploy": "#ops-deploy", "ci": "#ci"})
    assert answer.status_code == 200 and answer.json() == {"ci": "#ci", "deploy": "#ops-deploy"}


async def test_slack_refuses_to_delete_a_managed_rule(database_url, sandbox, config_file):
    forget_answers()
    sandbox.set_user(ADMIN, name="ada", is_admin=True)
    settings = make_settings(
        DATABASE_URL=database_url, SLACK_BOT_TOKEN="xoxb-test-bot", SLACK_APP_TOKEN="xapp-test-app",
        SLACK_API_URL=sandbox.api_url, PULSER_CONFIG=str(config_file),
    )
    runtime = Runtime(settings, "run", metrics=Metrics("test"))
    await runtime.start()
    try:
        await runtime.wait_connected(timeout=30)
        await sandbox.wait_for_connection(timeout=30)
        rule_id = await runtime.pool.fetchval("SELECT id FROM routing_rules WHERE name = 'api'")
        before = len(sandbox.response_url_posts)
        await sandbox.send_block_action(DELETE, value=str(rule_id), user_id=ADMIN, channel_id="C0OPS")
        await eventually(lambda: len(sandbox.response_url_posts) > before, timeout=30)
        body = sandbox.response_url_posts[before][1]
        assert "managed by the config file" in body["text"] and "*api*" in body["text"]
        assert await rule_names(runtime) == ["payments critical", "api"]
    finally:
        await runtime.stop()


# --- export ----------------------------------------------------------------------------------------------


async def test_export_then_apply_gives_the_same_state(sidecar, http):
    await http.post("/api/rules", json={"name": "made in the api", "channel": "#other", "tags": {"team": "web"},
                                        "escalate_after_minutes": 30, "escalate_to": "U0LEAD"})
    await http.post("/api/silences", json={"matchers": [{"name": "alertname", "op": "=~", "value": 'Disk.*"x\\d'}],
                                           "duration": "2h", "comment": "disks"})
    await http.post("/api/services", json={"name": "web", "action_type": "github_workflow",
                                           "action": {"repo": "acme/web", "workflow": "deploy.yml", "inputs": {"env": "{env}"}}})
    before = await state(sidecar)
    exported = export_text(await managed_config.current_state(sidecar.pool))
    check_text(exported)  # what `pulser config check` runs
    sidecar.config_sync.path.write_text(exported)
    assert await sidecar.config_sync.apply("test")
    after = await state(sidecar)
    assert _without_managed(after) == _without_managed(before)
    assert all(row["managed_by"] == "config" for rows in after.values() for row in rows)
    assert export_text(await managed_config.current_state(sidecar.pool)) == exported


async def _names_are(runtime: Runtime, names: list[str]) -> bool:
    return await rule_names(runtime) == names


def _without_managed(current: dict) -> dict:
    return {kind: [{k: v for k, v in row.items() if k != "managed_by"} for row in rows] for kind, rows in current.items()}


def test_the_export_command_writes_a_file_the_check_accepts(database_url, tmp_path, monkeypatch, capsys):
    from bot.cli import main

    monkeypatch.setenv("DATABASE_URL", database_url)
    output = tmp_path / "exported.yml"
    assert main(["config", "export", "-o", str(output)]) == 0
    assert output.read_text().startswith("# Pulser configuration (PULSER_CONFIG), exported by `pulser config export`.")
    assert main(["config", "check", str(output)]) == 0
    assert "is valid: 0 routing rule(s)" in capsys.readouterr().out

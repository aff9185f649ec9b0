"""Configuration as code against a running Pulser: PULSER_CONFIG applied at start, on SIGHUP and on
file change; a bad file changes nothing and says why (log, /health, Slack); the objects it
defines are read-only in the API and Slack; export → check → apply leaves the state as it was.
Paging objects too: outbound channels (secrets from the environment), schedules and escalation
policies, which routing rules name."""

from __future__ import annotations

import os
import signal
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import AsyncIterator

import httpx
import pytest
from structlog.testing import capture_logs

from alerts.config_export import export_text
from alerts.config_file import check_text
from bot.metrics import Metrics
from bot.runtime import Runtime
from blocks.escalation import POLICY_DELETE
from blocks.rules import DELETE
from handlers.slack.admin import forget_answers
from storage import managed_config, outbound
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

HOOK_URL = "https://hooks.example.com/pulser/s3cr3t-path-4711"
PAGING = """outbound_channels:
  - name: ops-hook
    kind: webhook
    settings:
      url: ${PULSER_TEST_HOOK_URL}
schedules:
  - name: Primary
    time_zone: Europe/Berlin
    layers:
      - members: [U0ADA, U0BOB]
        shift: 1 week
        handoff: 10:00
        start: 2026-12-07
escalation_policies:
  - name: payments paging
    repeat: 1
    steps:
      - {kind: outbound, channel: ops-hook}
      - {kind: wait, wait_minutes: 15}
      - {kind: oncall, target: Primary, min_severity: high}
"""
CONFIG = CONFIG.replace("    channel: \"#payments\"\n", "    channel: \"#payments\"\n    escalation_policy: payments paging\n") + PAGING


@pytest.fixture
def config_file(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("PULSER_TEST_HOOK_URL", HOOK_URL)
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
    assert counts == {"routing_rules": 2, "silences": 1, "inhibition_rules": 1, "event_routes": 1, "deploy_services": 1,
                      "outbound_channels": 1, "schedules": 1, "escalation_policies": 1}


async def test_a_rule_names_its_policy_and_the_policy_its_channel_and_schedule(sidecar, http):
    policy = (await http.get("/api/escalation-policies")).json()["policies"][0]
    channel = (await http.get("/api/outbound-channels")).json()["channels"][0]
    rule = (await http.get("/api/rules")).json()["rules"][0]
    assert (policy["managed_by"], channel["managed_by"]) == ("config", "config")
    assert rule["escalation_policy_id"] == policy["id"] and policy["used_by_rules"] == ["payments critical"]
    assert [(s["kind"], s.get("channel_id"), s.get("target")) for s in policy["steps"]] == [
        ("outbound", channel["id"], None), ("wait", None, None), ("oncall", None, "Primary"),
    ]


async def test_a_schedule_is_applied_with_its_layers_and_overrides_stay_the_apis(sidecar, http):
    [schedule] = (await http.get("/api/schedules")).json()["schedules"]
    assert schedule["managed_by"] == "config"
    assert [(l["members"], l["shift"], l["handoff"]) for l in schedule["layers"]] == [(["U0ADA", "U0BOB"], "1 week", "10:00")]
    override = await http.post(f"/api/schedules/{schedule['id']}/overrides", json={"user": "U0CY", "start": "now", "end": "+4h"})
    assert override.status_code == 201, override.text
    sidecar.config_sync.path.write_text(CONFIG.replace("shift: 1 week", "shift: 2 weeks"))
    assert await sidecar.config_sync.apply("test")
    after = (await http.get(f"/api/schedules/{schedule['id']}")).json()
    assert after["layers"][0]["shift"] == "2 weeks" and [o["user"] for o in after["overrides"]] == ["U0CY"]


async def test_a_channel_secret_comes_from_the_environment_and_is_never_shown(sidecar, http, monkeypatch, capsys):
    assert (await outbound.channel_by_name(sidecar.pool, "ops-hook"))["settings"] == {"url": HOOK_URL}
    assert (await http.get("/api/outbound-channels")).json()["channels"][0]["settings"] == {"url": "(set)"}
    rotated = "https://hooks.example.com/pulser/rotated-9f8e7d"
    monkeypatch.setenv("PULSER_TEST_HOOK_URL", rotated)
    with capture_logs() as logs:
        assert await sidecar.config_sync.apply("test")
    assert (await outbound.channel_by_name(sidecar.pool, "ops-hook"))["settings"] == {"url": rotated}
    assert "outbound channel 'ops-hook' updated" in str(logs)
    audit = await sidecar.pool.fetchval("SELECT details::text FROM audit_log WHERE action = 'config.apply' ORDER BY id DESC LIMIT 1")
    shown = str(logs) + capsys.readouterr().out + audit + str((await http.get("/health")).json())
    assert HOOK_URL not in shown and rotated not in shown and "s3cr3t" not in shown


async def test_an_unset_variable_changes_nothing_and_names_its_line(sidecar, monkeypatch):
    before = await state(sidecar)
    monkeypatch.delenv("PULSER_TEST_HOOK_URL")
    sidecar.config_sync.path.write_text(CONFIG.replace("shift: 1 week", "shift: 2 weeks"))
    assert not await sidecar.config_sync.apply("test")
    assert await state(sidecar) == before
    line = CONFIG.splitlines().index("      url: ${PULSER_TEST_HOOK_URL}") + 1
    assert sidecar.config_sync.errors == [
        f"line {line}: outbound_channels[0].settings.url: the environment variable PULSER_TEST_HOOK_URL is not set: "
        "set it where Pulser runs (and where you run pulser config check)"
    ]


async def test_a_rule_naming_an_unknown_policy_changes_nothing_and_names_its_line(sidecar):
    before = await state(sidecar)
    sidecar.config_sync.path.write_text(CONFIG.replace("escalation_policy: payments paging", "escalation_policy: paging"))
    assert not await sidecar.config_sync.apply("test")
    assert await state(sidecar) == before
    [error] = sidecar.config_sync.errors
    assert error.startswith("line 6: routing_rules[0].escalation_policy: no escalation policy is called 'paging'")
    assert "known: payments paging" in error


async def test_a_rule_may_name_a_policy_made_in_the_api(sidecar, http):
    made = (await http.post("/api/escalation-policies", json={
        "name": "made in the api", "steps": [{"kind": "user", "target": "U0ADA"}],
    })).json()
    sidecar.config_sync.path.write_text(CONFIG.replace("escalation_policy: payments paging", "escalation_policy: made in the api"))
    assert await sidecar.config_sync.apply("test")
    rule = await sidecar.pool.fetchrow("SELECT escalation_policy_id FROM routing_rules WHERE name = 'payments critical'")
    assert rule["escalation_policy_id"] == made["id"]
    assert (await http.get(f"/api/escalation-policies/{made['id']}")).json()["managed_by"] is None


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
    """The rule naming the policy goes first, then the policy, then the schedule and channel it named."""
    kept = (await http.post("/api/rules", json={"name": "not managed", "channel": "#other"})).json()
    sidecar.config_sync.path.write_text("routing_rules:\n  - name: api\n    channel: '#api-alerts'\n")
    assert await sidecar.config_sync.apply("test")
    assert await rule_names(sidecar) == ["api", "not managed"] and kept["id"]
    assert (await http.get("/api/services")).json()["services"] == []
    assert (await http.get("/api/event-routes")).json() == {}
    silences = (await http.get("/api/silences", params={"all": "1"})).json()["silences"]
    assert [(s["status"], s["expired_by"]) for s in silences] == [("expired", "config")]
    assert (await http.get("/api/escalation-policies")).json()["policies"] == []
    assert (await http.get("/api/schedules")).json()["schedules"] == []
    assert (await http.get("/api/outbound-channels")).json()["channels"] == []


async def test_a_dropped_channel_a_policy_made_elsewhere_uses_refuses_the_apply(sidecar, http):
    channel = (await http.get("/api/outbound-channels")).json()["channels"][0]
    made = await http.post("/api/escalation-policies", json={
        "name": "made in the api", "steps": [{"kind": "outbound", "channel": channel["name"]}],
    })
    assert made.status_code == 201, made.text
    before = await state(sidecar)
    sidecar.config_sync.path.write_text(CONFIG.split("outbound_channels:")[0].replace("    escalation_policy: payments paging\n", ""))
    assert not await sidecar.config_sync.apply("test")
    assert await state(sidecar) == before
    assert sidecar.config_sync.errors == [
        "(file): outbound channel 'ops-hook' is no longer in the file, but escalation policy(ies) "
        "'made in the api' made in Slack or the API send to it: change them first, or keep the channel in the file"
    ]


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
        CONFIG.replace("name: api\n", "name: renamed\n").replace(
            "deploy_services:\n", "deploy_services:\n  - name: web\n    action_type: webhook\n    action: {url: 'https://y.example'}\n"
        )
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
    policy = (await http.get("/api/escalation-policies")).json()["policies"][0]
    channel = (await http.get("/api/outbound-channels")).json()["channels"][0]
    schedule = (await http.get("/api/schedules")).json()["schedules"][0]
    answers = [
        await http.put(f"/api/escalation-policies/{policy['id']}", json={"name": policy["name"], "steps": [{"kind": "user", "target": "U0ADA"}]}),
        await http.delete(f"/api/escalation-policies/{policy['id']}"),
        await http.put(f"/api/outbound-channels/{channel['id']}", json={"name": channel["name"], "settings": {"url": "https://x.example"}}),
        await http.delete(f"/api/outbound-channels/{channel['id']}"),
        await http.put(f"/api/schedules/{schedule['id']}", json={"time_zone": "UTC"}),
        await http.delete(f"/api/schedules/{schedule['id']}"),
        await http.put(f"/api/rules/{rule['id']}", json={"channel": "#elsewhere"}),
        await http.delete(f"/api/rules/{rule['id']}"),
        await http.post(f"/api/rules/{rule['id']}/move", json={"position": 2}),
        await http.delete(f"/api/silences/{silence['id']}"),
        await http.delete(f"/api/inhibitions/{inhibition['id']}"),
        await http.put(f"/api/services/{service['id']}", json={"requires_approval": True}),
        await http.delete(f"/api/services/{service['id']}"),
        await http.put("/api/event-routes", json={"deploy": "#elsewhere"}),
    ]
    assert [a.status_code for a in answers] == [409] * 14
    assert {a.json()["error"] for a in answers} == {"managed by the config file"}
    assert "change or remove it in the file" in answers[6].json()["detail"]
    assert await rule_names(sidecar) == ["payments critical", "api"]
    assert (await http.get(f"/api/escalation-policies/{policy['id']}")).json()["steps"] == policy["steps"]


async def test_unmanaged_event_routes_stay_editable_next_to_managed_ones(http):
    answer = await http.put("/api/event-routes", json={"deploy": "#ops-deploy", "ci": "#ci"})
    assert answer.status_code == 200 and answer.json() == {"ci": "#ci", "deploy": "#ops-deploy"}


@pytest.fixture
async def configured(database_url, sandbox, config_file) -> AsyncIterator[Runtime]:
    """`pulser run` applying the config file, connected to the sandbox as an admin's workspace."""
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
        yield runtime
    finally:
        await runtime.stop()


async def test_slack_refuses_to_delete_a_managed_rule(configured, sandbox):
    rule_id = await configured.pool.fetchval("SELECT id FROM routing_rules WHERE name = 'api'")
    before = len(sandbox.response_url_posts)
    await sandbox.send_block_action(DELETE, value=str(rule_id), user_id=ADMIN, channel_id="C0OPS")
    await eventually(lambda: len(sandbox.response_url_posts) > before, timeout=30)
    body = sandbox.response_url_posts[before][1]
    assert "managed by the config file" in body["text"] and "*api*" in body["text"]
    assert await rule_names(configured) == ["payments critical", "api"]


async def test_slack_lists_a_managed_policy_locked_and_refuses_to_delete_it(configured, sandbox):
    policy_id = await configured.pool.fetchval("SELECT id FROM escalation_policies WHERE name = 'payments paging'")
    listed = (await sandbox.send_slash_command(text="escalation", user_id=ADMIN))["payload"]
    shown = next(b for b in listed["blocks"] if b.get("block_id") == f"policy_{policy_id}")
    assert "Managed by the config file" in shown["text"]["text"]
    assert not any(b.get("block_id") == f"policy_actions_{policy_id}" for b in listed["blocks"])  # no buttons
    before = len(sandbox.response_url_posts)
    await sandbox.send_block_action(POLICY_DELETE, value=str(policy_id), user_id=ADMIN, channel_id="C0OPS")
    await eventually(lambda: len(sandbox.response_url_posts) > before, timeout=30)
    assert "managed by the config file" in sandbox.response_url_posts[before][1]["text"]
    assert await configured.pool.fetchval("SELECT count(*) FROM escalation_policies WHERE id = $1", policy_id) == 1


# --- export ----------------------------------------------------------------------------------------------


DISCORD_URL = "https://discord.com/api/webhooks/42/t0ken-value-never-exported"


async def test_export_then_apply_gives_the_same_state(sidecar, http, monkeypatch):
    discord = (await http.post("/api/outbound-channels", json={
        "name": "team discord", "kind": "discord", "settings": {"webhook_url": DISCORD_URL, "everyone_min_severity": None},
    })).json()
    policy = (await http.post("/api/escalation-policies", json={"name": "web paging", "steps": [
        {"kind": "outbound", "channel": "team discord"}, {"kind": "wait", "wait_minutes": 5},
        {"kind": "slack_channel", "target": "#web", "mention": "@here", "min_severity": "critical"},
    ]})).json()
    await http.post("/api/rules", json={"name": "made in the api", "channel": "#other", "tags": {"team": "web"},
                                        "escalate_after_minutes": 30, "escalate_to": "U0LEAD", "storm_threshold": 5,
                                        "group_by": ["alertname"], "escalation_policy_id": policy["id"]})
    await http.post("/api/schedules", json={"name": "Web", "time_zone": "UTC", "layers": [
        {"members": ["U0ADA"], "shift": "12 hours", "start": "2026-12-01", "days": "weekdays", "hours": "09:00-17:00"},
        {"ical_url": "https://calendar.example.com/web.ics"},
    ]})
    await http.post("/api/silences", json={"matchers": [{"name": "alertname", "op": "=~", "value": 'Disk.*"x\\d'}],
                                           "duration": "2h", "comment": "disks"})
    await http.post("/api/services", json={"name": "web", "action_type": "github_workflow",
                                           "action": {"repo": "acme/web", "workflow": "deploy.yml", "inputs": {"env": "{env}"}}})
    before = await state(sidecar)
    exported = export_text(await managed_config.current_state(sidecar.pool))
    assert DISCORD_URL not in exported and HOOK_URL not in exported
    assert "#   PULSER_OPS_HOOK_URL\n#   PULSER_TEAM_DISCORD_WEBHOOK_URL\n" in exported
    assert "webhook_url: ${PULSER_TEAM_DISCORD_WEBHOOK_URL}" in exported and "escalation_policy: web paging" in exported
    monkeypatch.setenv("PULSER_TEAM_DISCORD_WEBHOOK_URL", DISCORD_URL)
    monkeypatch.setenv("PULSER_OPS_HOOK_URL", HOOK_URL)
    check_text(exported)  # what `pulser config check` runs
    sidecar.config_sync.path.write_text(exported)
    assert await sidecar.config_sync.apply("test")
    after = await state(sidecar)
    assert _without_managed(after) == _without_managed(before)
    assert all(row["managed_by"] == "config" for rows in after.values() for row in rows)
    assert [c["id"] for c in after["outbound_channels"]] == [c["id"] for c in before["outbound_channels"]] and discord["id"]
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

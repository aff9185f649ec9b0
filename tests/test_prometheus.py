"""Pulser's Prometheus side: metric names that follow the conventions, what a scrape of a running
Pulser shows, and the rule and Alertmanager files under deploy/ (checked with promtool and amtool
when they are installed: Debian's `prometheus` and `prometheus-alertmanager` packages)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from prometheus_client.metrics import MetricWrapperBase

from bot.metrics import Metrics
from tests import webhook_senders as send
from tests.conftest import eventually, make_settings

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
ALERTMANAGER_CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"

# The client library's own family; dashboards look for it under this name.
STANDARD_FAMILIES = {"python_info"}
NEW_FAMILIES = (
    "pulser_uptime_seconds gauge",
    "pulser_slack_commands_total counter",
    "pulser_slack_actions_total counter",
    "pulser_errors_total counter",
    "pulser_slack_api_call_duration_seconds histogram",
    "pulser_alerts_total counter",
    "pulser_deployments_total counter",
    "pulser_deployment_duration_seconds histogram",
    "pulser_last_success_timestamp_seconds gauge",
    "pulser_last_failure_timestamp_seconds gauge",
    "pulser_webhook_last_received_timestamp_seconds gauge",
    "pulser_ledger_envelopes gauge",
)

needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed (Debian: apt-get install prometheus)")
needs_amtool = pytest.mark.skipif(
    shutil.which("amtool") is None, reason="amtool is not installed (Debian: apt-get install prometheus-alertmanager)"
)


def families(metrics: Metrics):
    return list(metrics.registry.collect())


def series_names(metrics: Metrics) -> set[str]:
    """Every series name a scrape can show, children or not (counters with _total, histograms' parts)."""
    names: set[str] = set()
    for family in families(metrics):
        if family.type == "counter":
            names |= {family.name + "_total", family.name + "_created"}
        elif family.type == "histogram":
            names |= {family.name + suffix for suffix in ("_bucket", "_count", "_sum", "_created")}
        elif family.type == "info":
            names.add(family.name + "_info")
        else:
            names.add(family.name)
    return names


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one series in Prometheus text (labels in any order), or None when absent."""
    for line in text.splitlines():
        match = re.fullmatch(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)", line)
        if match is None or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        if all(found.get(key) == value for key, value in labels.items()):
            return float(match.group(3))
    return None


def rule_blocks(text: str) -> dict[str, str]:
    """alertname → that rule's text (a light reading of the YAML that needs no YAML library)."""
    parts = re.split(r"^\s*- alert: *(\S+)\s*$", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2]))


def without_annotations(text: str) -> str:
    """The rules without their annotations: promtool's rule tests then compare labels only."""
    kept: list[str] = []
    block_indent: int | None = None
    for line in text.splitlines():
        indent = len(line) - len(line.lstrip())
        if block_indent is not None and (not line.strip() or indent > block_indent):
            continue
        block_indent = indent if line.strip() == "annotations:" else None
        if block_indent is None:
            kept.append(line)
    return "\n".join(kept) + "\n"


def rule_fires(tmp_path: Path, series: dict[str, str], *, at: str, alert: str, labels: list[dict] | None) -> None:
    """Run one `promtool test rules` case: `series` (name{labels} → values, one per minute) makes
    `alert` fire at `at` with exactly `labels` (a list of label sets; [] means it does not fire)."""
    (tmp_path / "rules.yml").write_text(without_annotations(RULES.read_text()))
    case = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": name, "values": values} for name, values in series.items()],
                "alert_rule_test": [
                    {"eval_time": at, "alertname": alert, "exp_alerts": [{"exp_labels": each} for each in labels or []]}
                ],
            }
        ],
    }
    (tmp_path / "case.yml").write_text(json.dumps(case))  # JSON is YAML
    result = subprocess.run(["promtool", "test", "rules", "case.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def settings(database_url, sandbox):
    sandbox.add_channel("C0ALERTS", "ops-alerts")
    return make_settings(
        DATABASE_URL=database_url,
        SLACK_BOT_TOKEN="xoxb-test-bot",
        SLACK_APP_TOKEN="xapp-test-app",
        SLACK_API_URL=sandbox.api_url,
        ALERT_UPDATE_DEBOUNCE_SECONDS="0",
        **send.SECRETS_ENV,
    )


@pytest.fixture
async def http(pulser):
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{pulser.http_port}", timeout=10) as client:
        yield client


async def scrape(http) -> str:
    response = await http.get("/metrics")
    assert response.status_code == 200
    return response.text


async def post_alert(http, **fields: str) -> None:
    headers, body = send.generic({"title": "Queue backlog", "service": "jobs", **fields})
    response = await http.post("/webhooks/generic", headers=headers, content=body)
    assert response.status_code == 202


# --- naming conventions ------------------------------------------------------------------------


def test_every_metric_name_starts_with_pulser():
    names = {family.name for family in families(Metrics("test"))}
    assert {name for name in names if not name.startswith("pulser_")} == STANDARD_FAMILIES


def test_counters_end_in_total_and_nothing_else_does():
    # Read the exposition a scrape gets: every family is declared there, children or not.
    declared = re.findall(r"^# TYPE (\S+) (\S+)$", Metrics("test").render().decode(), flags=re.MULTILINE)
    assert declared
    for name, kind in declared:
        if kind == "counter":
            assert name.endswith("_total"), f"counter {name} does not end in _total"
        else:
            assert not name.endswith("_total"), f"{name} is a {kind}, not a counter"


def test_durations_and_times_are_in_seconds_and_sizes_in_bytes():
    for family in families(Metrics("test")):
        assert not re.search(r"_(milliseconds|ms|minutes|hours|days|kilobytes|megabytes|percent)(_|$)", family.name), family.name
        if "timestamp" in family.name or "duration" in family.name or "uptime" in family.name:
            assert family.name.endswith("_seconds"), family.name


def test_no_metric_has_a_label_prometheus_sets_on_every_series():
    # Prometheus would rename them `exported_job` / `exported_instance` and the rules would miss them.
    metrics = Metrics("test")
    for metric in vars(metrics).values():
        if isinstance(metric, MetricWrapperBase):
            assert not {"job", "instance"} & set(metric._labelnames), metric  # noqa: SLF001 — childless metrics have no samples to read


def test_every_family_says_what_it_counts():
    for family in families(Metrics("test")):
        assert family.documentation.strip(), family.name


def test_uptime_grows_from_zero():
    metrics = Metrics("test")
    uptime = sample(metrics.render().decode(), "pulser_uptime_seconds")
    assert uptime is not None and 0 <= uptime < 60


def test_a_deployment_counts_by_service_and_status_and_its_duration_is_observed():
    metrics = Metrics("test")
    metrics.deployment("api", "started")
    metrics.deployment("api", "completed", seconds=95.0)
    text = metrics.render().decode()
    assert sample(text, "pulser_deployments_total", service="api", status="started") == 1
    assert sample(text, "pulser_deployments_total", service="api", status="completed") == 1
    assert sample(text, "pulser_deployment_duration_seconds_count", service="api") == 1
    assert sample(text, "pulser_deployment_duration_seconds_sum", service="api") == 95.0


def test_a_service_that_deployed_shows_zero_failures_before_its_first_failure():
    metrics = Metrics("test")
    metrics.deployment("api", "approved")
    # increase() needs an earlier sample: a failed series first seen at 1 would go unnoticed.
    text = metrics.render().decode()
    assert sample(text, "pulser_deployments_total", service="api", status="trigger_failed") == 0
    assert sample(text, "pulser_deployments_total", service="api", status="failed") == 0


# --- a scrape of a running Pulser -----------------------------------------------------------------


async def test_a_scrape_shows_the_new_families_and_the_process_mode(http):
    text = await scrape(http)
    for family in NEW_FAMILIES:
        assert f"# TYPE {family}" in text
    assert sample(text, "pulser_build_info", mode="run", version="test") == 1
    assert sample(text, "pulser_uptime_seconds") > 0


async def test_slash_commands_and_clicks_are_counted_by_name(pulser, sandbox, http):
    await sandbox.send_slash_command(text="help")
    await sandbox.send_slash_command(text="definitely-not-a-subcommand")
    await sandbox.send_block_action("incident_runbook")
    text = await scrape(http)
    assert sample(text, "pulser_slack_commands_total", command="/pulser help") == 1
    # Typed words never become label values: an unknown subcommand counts as the bare command.
    assert sample(text, "pulser_slack_commands_total", command="/pulser") == 1
    assert sample(text, "pulser_slack_actions_total", action="incident_runbook") == 1


async def test_a_command_retried_from_the_ledger_is_counted_once(pulser, sandbox, http):
    runs: list[bool] = []

    @pulser.app.command("/flaky")
    async def flaky(ack, context):
        await ack()
        runs.append(context.get("ledger_retry", False))
        if len(runs) == 1:
            raise ConnectionError("slack hiccup")

    envelope = sandbox.slash_command_envelope(command="/flaky", text="")
    await sandbox.send_envelope(envelope)
    await eventually(lambda: pulser.pool.fetchval("SELECT id FROM envelopes WHERE status = 'failed'"))
    await pulser.pool.execute("UPDATE envelopes SET next_attempt_at = now() WHERE status = 'failed'")
    assert await pulser.ledger_worker.run_once() == 1
    assert runs == [False, True]
    assert sample(await scrape(http), "pulser_slack_commands_total", command="/flaky") == 1


async def test_an_alert_is_counted_by_source_and_severity(pulser, http):
    await post_alert(http, severity="high")
    text = await eventually(lambda: _scrape_when(http, "pulser_alerts_total", source="generic", severity="high"))
    assert sample(text, "pulser_alerts_total", source="generic", severity="high") == 1


async def test_a_slack_message_sent_records_its_latency_and_the_delivery_time(pulser, sandbox, http):
    await post_alert(http, severity="high")
    await eventually(lambda: sandbox.messages.get("C0ALERTS"), timeout=30)
    text = await eventually(
        lambda: _scrape_when(http, "pulser_slack_api_call_duration_seconds_count", method="chat.postMessage"), timeout=30
    )
    assert sample(text, "pulser_last_success_timestamp_seconds", task="slack_delivery") > 0


async def test_a_failing_slack_call_counts_as_an_error_and_marks_the_delivery_failure(pulser, sandbox, http):
    sandbox.fail_next("chat.postMessage", status=500, times=1)
    await post_alert(http, severity="critical")
    text = await eventually(lambda: _scrape_when(http, "pulser_errors_total", type="slack_api"), timeout=30)
    assert sample(text, "pulser_last_failure_timestamp_seconds", task="slack_delivery") > 0


async def test_webhooks_show_when_each_source_last_delivered(pulser, http):
    await post_alert(http, severity="low")
    await eventually(lambda: _scrape_when(http, "pulser_last_success_timestamp_seconds", task="webhook"))
    await pulser.refresh_gauges()  # the scheduler does this every 15 s
    text = await scrape(http)
    assert sample(text, "pulser_webhook_last_received_timestamp_seconds", source="generic") > 0
    assert sample(text, "pulser_ledger_envelopes", status="processed") >= 1


async def test_a_deploy_request_is_counted_by_service_and_status(pulser, http):
    service = {"name": "api", "action_type": "github_workflow", "action": {"repo": "acme/api", "workflow": "deploy.yml"}}
    await pulser.deploys.create_service(service, user="U0ALICE")
    # No GITHUB_TOKEN in these settings: the workflow_dispatch cannot be sent.
    request = await pulser.deploys.request_deploy("api", "production", "main", "metrics test", "U0ALICE")
    assert request.status == "trigger_failed"
    text = await scrape(http)
    assert sample(text, "pulser_deployments_total", service="api", status="approved") == 1
    assert sample(text, "pulser_deployments_total", service="api", status="trigger_failed") == 1


async def test_the_first_scrape_shows_every_ledger_status_at_zero(http):
    # LedgerEnvelopesGaveUp watches delta() of the failed count: a series first seen at 1 reads 0.
    text = await scrape(http)
    for status in ("received", "processed", "failed"):
        assert sample(text, "pulser_ledger_envelopes", status=status) == 0, status


async def test_a_known_deploy_service_shows_zero_failures_from_the_first_scrape(settings, pool):
    from alerts import deploys
    from bot.runtime import Runtime

    service = {"name": "api", "action_type": "github_workflow", "action": {"repo": "acme/api", "workflow": "deploy.yml"}}
    await deploys.create_service(pool, service, user="U0ALICE")
    runtime = Runtime(settings, "run", metrics=Metrics("test"))
    await runtime.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{runtime.http_port}", timeout=10) as client:
            text = await scrape(client)
    finally:
        await runtime.stop()
    assert sample(text, "pulser_deployments_total", service="api", status="failed") == 0
    assert sample(text, "pulser_deployments_total", service="api", status="trigger_failed") == 0


async def _scrape_when(http, name: str, **labels: str) -> str | None:
    """The scrape once the series has a value above zero, else None (for `eventually`)."""
    text = await scrape(http)
    value = sample(text, name, **labels)
    return text if value is not None and value > 0 else None


@needs_promtool
async def test_promtool_finds_nothing_to_lint_in_a_scrape(pulser, sandbox, http):
    await sandbox.send_slash_command(text="help")
    await post_alert(http, severity="high")
    await eventually(lambda: sandbox.messages.get("C0ALERTS"), timeout=30)
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=await scrape(http), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


# --- alert rules --------------------------------------------------------------------------------


def test_every_rule_has_a_severity_a_summary_a_description_and_a_runbook():
    rules = rule_blocks(RULES.read_text())
    expected = {"PulserDown", "SocketModeDisconnected", "SlackDeliveryFailing", "WebhooksSilent", "DeploymentFailed", "FrequentRollbacks"}
    assert expected <= set(rules)
    for name, text in rules.items():
        for key in ("expr:", "severity:", "summary:", "description:", "runbook_url:"):
            assert key in text, f"{name} has no {key}"


def test_every_pulser_metric_a_rule_uses_exists():
    used = set(re.findall(r"\bpulser_[a-z0-9_]+", RULES.read_text()))
    assert used and used <= series_names(Metrics("test")), used - series_names(Metrics("test"))


@needs_promtool
def test_promtool_accepts_the_rules_and_the_prometheus_config():
    for command in (["promtool", "check", "rules", str(RULES)], ["promtool", "check", "config", str(PROMETHEUS_CONFIG)]):
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_a_sidecar_only_process_is_not_reported_as_disconnected_from_slack(tmp_path):
    rule_fires(
        tmp_path,
        {
            'pulser_socket_mode_connected{job="pulser",instance="bot:8080"}': "0x5",
            'pulser_build_info{job="pulser",instance="bot:8080",mode="bot",version="1"}': "1x5",
            'pulser_socket_mode_connected{job="pulser",instance="sidecar:8080"}': "0x5",
            'pulser_build_info{job="pulser",instance="sidecar:8080",mode="sidecar",version="1"}': "1x5",
        },
        at="3m",
        alert="SocketModeDisconnected",
        labels=[{"severity": "high", "service": "pulser", "job": "pulser", "instance": "bot:8080"}],
    )


@needs_promtool
def test_the_first_failed_deployment_of_a_service_fires(tmp_path):
    rule_fires(
        tmp_path,
        {'pulser_deployments_total{job="pulser",instance="a",service="api",status="failed"}': "0 0 1 1"},
        at="3m",
        alert="DeploymentFailed",
        labels=[{"severity": "high", "service": "api"}],
    )


@needs_promtool
def test_a_page_that_failed_after_its_retries_fires_for_its_channel_kind(tmp_path):
    rule_fires(
        tmp_path,
        {'pulser_outbound_sends_total{job="pulser",instance="a",kind="email",outcome="failed"}': "0 0 1x20"},
        at="4m",
        alert="PagingChannelFailing",
        labels=[{"severity": "high", "service": "pulser", "job": "pulser", "instance": "a", "kind": "email"}],
    )


@needs_promtool
def test_a_deployment_pulser_could_not_trigger_fires(tmp_path):
    rule_fires(
        tmp_path,
        {'pulser_deployments_total{job="pulser",instance="a",service="api",status="trigger_failed"}': "0 0 1 1"},
        at="3m",
        alert="DeploymentFailed",
        labels=[{"severity": "high", "service": "api"}],
    )


# A counter's first sample for a label set can already be non-zero: the first failure of a service
# creates its series and counts it in one go, before any scrape saw a 0. increase() needs two samples
# and ignores the first value, so it reads 0 there; the rules must still fire.


@needs_promtool
def test_a_failed_deployment_series_that_appears_at_1_fires_for_ten_minutes(tmp_path):
    series = {'pulser_deployments_total{job="pulser",instance="a",service="api",status="failed"}': "_ _ 1x20"}
    rule_fires(tmp_path, series, at="4m", alert="DeploymentFailed", labels=[{"severity": "high", "service": "api"}])
    rule_fires(tmp_path, series, at="14m", alert="DeploymentFailed", labels=[])


@needs_promtool
def test_a_failed_deployment_series_present_from_the_first_scrape_at_1_fires(tmp_path):
    rule_fires(
        tmp_path,
        {'pulser_deployments_total{job="pulser",instance="a",service="api",status="trigger_failed"}': "1 1 1"},
        at="2m",
        alert="DeploymentFailed",
        labels=[{"severity": "high", "service": "api"}],
    )


@needs_promtool
def test_rollbacks_whose_series_appears_at_3_fire(tmp_path):
    rule_fires(
        tmp_path,
        {'pulser_rollbacks_total{job="pulser",instance="a",outcome="ok"}': "_ _ 3 3 3"},
        at="4m",
        alert="FrequentRollbacks",
        labels=[{"severity": "warning", "service": "heroku", "job": "pulser", "instance": "a"}],
    )


@needs_promtool
def test_heroku_polling_that_never_succeeded_fires(tmp_path):
    rule_fires(
        tmp_path,
        {'pulser_last_failure_timestamp_seconds{job="pulser",instance="a",task="heroku_poll"}': "60x20"},
        at="16m",
        alert="HerokuPollingFailing",
        labels=[{"severity": "warning", "service": "pulser", "job": "pulser", "instance": "a", "task": "heroku_poll"}],
    )


@needs_promtool
def test_a_source_is_silent_only_after_a_day(tmp_path):
    series = {'pulser_webhook_last_received_timestamp_seconds{job="pulser",instance="a",source="github"}': "0x1500"}
    rule_fires(tmp_path, series, at="23h", alert="WebhooksSilent", labels=[])
    rule_fires(
        tmp_path, series, at="1456m", alert="WebhooksSilent",
        labels=[{"severity": "warning", "service": "pulser", "source": "github"}],
    )


# --- Alertmanager -------------------------------------------------------------------------------


def test_alertmanager_sends_to_pulser_with_the_webhook_token_and_has_a_second_path():
    text = ALERTMANAGER_CONFIG.read_text()
    assert "/webhooks/alertmanager" in text
    assert "authorization:" in text and "PULSER_WEBHOOK_TOKEN" in text
    assert "PULSER_SELF_PING_URL" in text
    assert re.search(r"alertname =~ \"[^\"]*PulserDown", text)


@needs_amtool
def test_amtool_accepts_the_alertmanager_config():
    result = subprocess.run(["amtool", "check-config", str(ALERTMANAGER_CONFIG)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_amtool
@pytest.mark.parametrize(
    "alertname, receivers",
    [("PulserDown", "out-of-band"), ("SlackDeliveryFailing", "out-of-band,pulser"), ("DeploymentFailed", "pulser")],
)
def test_pulser_down_goes_out_of_band_and_the_rest_into_pulser(alertname, receivers):
    result = subprocess.run(
        ["amtool", "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}", f"alertname={alertname}"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.stdout.strip() == receivers, result.stdout + result.stderr

"""Pulser's Prometheus metrics, on a registry of its own so tests and the sidecar see only ours.

Names follow Prometheus conventions: `pulser_` prefix, base units, `_total` for counters.
Modules below `bot/` never import this: they get the Metrics object passed in (or one of the
small methods at the bottom, as a callback).

No metric has a label called `job` or `instance`: Prometheus attaches those to every scraped series
and would rename ours to `exported_job`, so "which background task" is the `task` label.
"""

from __future__ import annotations

import time
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client import generate_latest
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.platform_collector import PlatformCollector

# Background work whose last success and last failure are exposed as timestamps (the `task` label).
TASKS = ("heroku_poll", "slack_delivery", "webhook")
# Slack delivery outcomes (alerts.outbound.slack) that count as errors; a 429 is a delay, not an error.
SLACK_ERROR_OUTCOMES = frozenset({"failed", "retrying"})
SLACK_CALL_OUTCOMES = ("ok", "paced", "rate_limited", "retrying", "failed")
# The Web API methods the alert pipeline calls (alerts.outbound.slack's callers).
SLACK_DELIVERY_METHODS = ("chat.postMessage", "chat.update")
# The `type` values of pulser_errors_total.
# Where pages go beyond Slack's channels (alerts/outbound/channels), and Slack DMs to people paged.
OUTBOUND_KINDS = ("email", "discord", "teams", "webhook", "github", "twilio", "pagerduty", "slack_dm")
ERROR_TYPES = ("slack_api", "envelope", "slack_listener", "outbound")
# Deployment statuses that mean it failed: Pulser could not trigger it (alerts.deploys), or a deploy
# event said so (POST /events, GitHub deployment_status). Their series exist from a service's first
# deployment on, at 0, so that increase() sees the first failure.
DEPLOYMENT_FAILED_STATUSES = ("trigger_failed", "failed")


class Metrics:
    def __init__(self, version: str):
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry, namespace="pulser")
        PlatformCollector(registry=self.registry)
        r = self.registry
        self._version = version
        self.build_info = Info("pulser_build", "Pulser version and mode (run, bot, sidecar).", registry=r)
        self.build_info.info({"version": version})
        self.up = Gauge("pulser_up", "1 while the Pulser process runs.", registry=r)
        self.start_time = Gauge("pulser_start_time_seconds", "Unix time the process started.", registry=r)
        self.socket_connected = Gauge(
            "pulser_socket_mode_connected", "1 while the Slack Socket Mode connection is up.", registry=r
        )
        self.socket_reconnects = Counter(
            "pulser_socket_mode_reconnects_total", "Socket Mode connections re-established.", registry=r
        )
        self.envelopes = Counter(
            "pulser_envelopes_total",
            "Inbound envelopes by source and outcome (processed, duplicate, failed).",
            ["source", "outcome"],
            registry=r,
        )
        self.http_requests = Counter(
            "pulser_http_requests_total", "Sidecar HTTP requests by route and status.", ["route", "status"], registry=r
        )
        self.ack_latency = Histogram(
            "pulser_slack_ack_duration_seconds",
            "Time from receiving a Socket Mode envelope to sending its ack.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 3, 5),
            registry=r,
        )
        self.heartbeats = Counter(
            "pulser_heartbeats_total",
            "Heartbeat events by kind (success, start, fail) and outcome"
            " (accepted, unknown, rate_limited, too_large, invalid).",
            ["kind", "outcome"],
            registry=r,
        )
        self.heartbeat_batch_size = Histogram(
            "pulser_heartbeat_batch_size",
            "Heartbeat events written per transaction by the batching writer.",
            buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000),
            registry=r,
        )
        self.heartbeat_apps = Gauge(
            "pulser_heartbeat_apps", "Registered heartbeat applications by status.", ["status"], registry=r
        )
        self.heartbeats_missed = Counter(
            "pulser_heartbeats_missed_total", "Applications marked down because a deadline passed.", registry=r
        )
        self.self_pings = Counter(
            "pulser_self_pings_total", "Dead-man's-switch pings by outcome (sent, skipped, failed).", ["outcome"], registry=r
        )
        self.webhooks = Counter(
            "pulser_webhooks_total",
            "Webhook deliveries by source and outcome (accepted, duplicate, invalid, unauthorized, not_configured, unavailable).",
            ["source", "outcome"],
            registry=r,
        )
        self.incident_events = Counter(
            "pulser_incident_alerts_total",
            "Alerts applied to incidents by outcome (opened, repeat, reopened, resolved, member_resolved, suppressed, ignored).",
            ["outcome"],
            registry=r,
        )
        self.slack_calls = Counter(
            "pulser_slack_api_calls_total",
            "Slack Web API calls of the alert pipeline by method and outcome (ok, rate_limited, retrying, failed).",
            ["method", "outcome"],
            registry=r,
        )
        self.slack_rate_limited = Counter(
            "pulser_slack_rate_limited_total",
            "Slack Web API calls Slack refused with 429, by method: 0 in normal operation, since every"
            " call first spends from Pulser's Slack budgets.",
            ["method"],
            registry=r,
        )
        self.alert_to_slack = Histogram(
            "pulser_alert_to_slack_seconds",
            "Time from receiving the alert that opened an incident to its first Slack message.",
            buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.rollbacks = Counter(
            "pulser_rollbacks_total", "Heroku rollbacks started from Slack by outcome (ok, failed).", ["outcome"], registry=r
        )
        self.heroku_rate_limit = Gauge(
            "pulser_heroku_rate_limit_remaining", "Heroku API requests left in the account's budget (last answer).", registry=r
        )
        self.incidents = Gauge("pulser_incidents", "Incidents by status (firing, resolved).", ["status"], registry=r)
        self.scheduler_running = Gauge("pulser_scheduler_running", "1 while the job scheduler runs.", registry=r)
        self.uptime = Gauge("pulser_uptime_seconds", "Seconds since the process started.", registry=r)
        self.slack_commands = Counter(
            "pulser_slack_commands_total",
            "Slash commands received, by command (with the /pulser subcommand when it is a known one).",
            ["command"],
            registry=r,
        )
        self.slack_actions = Counter(
            "pulser_slack_actions_total",
            "Slack interactions received: buttons and menus by action_id, modal submissions by callback_id.",
            ["action"],
            registry=r,
        )
        self.errors = Counter(
            "pulser_errors_total",
            "Errors by type (slack_api: a Slack call failed; envelope: a ledger row failed to process).",
            ["type"],
            registry=r,
        )
        self.slack_call_duration = Histogram(
            "pulser_slack_api_call_duration_seconds",
            "Latency of the alert pipeline's Slack Web API calls by method, failed calls included.",
            ["method"],
            buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.alerts = Counter(
            "pulser_alerts_total",
            "Alerts ingested by the pipeline (firing and resolved notifications) by source and severity.",
            ["source", "severity"],
            registry=r,
        )
        self.deployments = Counter(
            "pulser_deployments_total",
            "Deployments by service and status: requests from Slack or the API (pending_approval, approved,"
            " rejected, triggered, trigger_failed) and deploy events (started, completed, failed).",
            ["service", "status"],
            registry=r,
        )
        self.deployment_duration = Histogram(
            "pulser_deployment_duration_seconds",
            "Time from a deployment's started event to its completed or failed event, by service.",
            ["service"],
            buckets=(15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200),
            registry=r,
        )
        self.last_success = Gauge(
            "pulser_last_success_timestamp_seconds",
            "Unix time a background task last succeeded (task: heroku_poll, slack_delivery, webhook).",
            ["task"],
            registry=r,
        )
        self.last_failure = Gauge(
            "pulser_last_failure_timestamp_seconds",
            "Unix time a background task last failed (task: heroku_poll, slack_delivery, webhook).",
            ["task"],
            registry=r,
        )
        self.webhook_last_received = Gauge(
            "pulser_webhook_last_received_timestamp_seconds",
            "Unix time each inbound source (webhook sources and events) last delivered, from the ledger.",
            ["source"],
            registry=r,
        )
        self.ledger_envelopes = Gauge(
            "pulser_ledger_envelopes",
            "Rows in the inbound ledger by status (received = waiting or retrying, processed, failed = gave up).",
            ["status"],
            registry=r,
        )
        self.outbound_sends = Counter(
            "pulser_outbound_sends_total",
            "Tries to deliver a page beyond Slack's channels, by channel kind (email, discord, …, slack_dm) and "
            "outcome (delivered, retrying, failed, paced).",
            ["kind", "outcome"],
            registry=r,
        )
        self.outbound_deliveries = Gauge(
            "pulser_outbound_deliveries",
            "Rows in the outbound outbox by channel kind and status (pending, delivered, failed).",
            ["kind", "status"],
            registry=r,
        )
        # Children that alert rules watch with increase() exist at 0 from the start: a series first
        # seen at 1 has no earlier sample, so increase() would miss that first failure.
        for error_type in ERROR_TYPES:
            self.errors.labels(error_type)
        for outcome in ("ok", "failed"):
            self.rollbacks.labels(outcome)
        for method in SLACK_DELIVERY_METHODS:
            for outcome in SLACK_CALL_OUTCOMES:
                self.slack_calls.labels(method, outcome)
        for kind in OUTBOUND_KINDS:
            for outcome in ("delivered", "failed"):
                self.outbound_sends.labels(kind, outcome)
        self.up.set(1)
        started = time.time()
        self.start_time.set(started)
        self.uptime.set_function(lambda: time.time() - started)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    # --- callbacks the wiring hands to the parts that do the work ---------------------------------

    def set_mode(self, mode: str) -> None:
        """Record which half this process runs (run, bot, sidecar): a sidecar has no Socket Mode."""
        self.build_info.info({"version": self._version, "mode": mode})

    def observe_slack_call(self, method: str, seconds: float, ok: bool) -> None:
        """One Slack Web API call of the alert pipeline: its latency, and when delivery last worked or not."""
        self.slack_call_duration.labels(method).observe(max(0.0, seconds))
        (self.last_success if ok else self.last_failure).labels("slack_delivery").set(time.time())

    def slack_call_result(self, method: str, outcome: str) -> None:
        """A classified Slack call (ok, rate_limited, retrying, failed)."""
        self.slack_calls.labels(method, outcome).inc()
        if outcome in SLACK_ERROR_OUTCOMES:
            self.errors.labels("slack_api").inc()

    def outbound_result(self, kind: str, outcome: str) -> None:
        self.outbound_sends.labels(kind, outcome).inc()
        if outcome == "failed":
            self.errors.labels("outbound").inc()

    def slack_refused(self, method: str) -> None:
        """Slack answered 429 (the method label is bounded: the URL's last segment of a Slack call)."""
        self.slack_rate_limited.labels(method[:40]).inc()

    def envelope_outcome(self, source: str, outcome: str) -> None:
        """A ledger row processed or failed; a webhook-type source also moves the `webhook` task's timestamps."""
        self.envelopes.labels(source, outcome).inc()
        if outcome == "failed":
            self.errors.labels("envelope").inc()
        if source != "slack" and outcome in ("processed", "failed"):
            self.task_finished("webhook", ok=outcome == "processed")

    def count_command(self, command: str) -> None:
        self.slack_commands.labels(command).inc()

    def count_action(self, action: str) -> None:
        self.slack_actions.labels(action).inc()

    def count_alert(self, source: str, severity: str) -> None:
        self.alerts.labels(source, severity).inc()

    def known_deploy_services(self, services: list[str]) -> None:
        """Create each service's failure children at 0 (at start, from the configured services), so
        the first failure after a start is an increase Prometheus can see."""
        for service in services:
            for failed in DEPLOYMENT_FAILED_STATUSES:
                self.deployments.labels(service, failed)

    def deployment(self, service: str, status: str, seconds: float | None = None) -> None:
        """A deployment reached `status`; `seconds` (start to end) once it has ended. A service that
        is not configured (a deploy event naming it) may first show up here already at 1; the alert
        rules allow for a series that starts above 0."""
        self.known_deploy_services([service])
        self.deployments.labels(service, status).inc()
        if seconds is not None:
            self.deployment_duration.labels(service).observe(max(0.0, seconds))

    def task_finished(self, task: str, *, ok: bool, at: datetime | float | None = None) -> None:
        """Set the task's last success or failure timestamp (`at` defaults to now)."""
        if task not in TASKS:  # a fixed set: label values must not grow without bound
            raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
        if isinstance(at, datetime):
            at = at.timestamp()
        (self.last_success if ok else self.last_failure).labels(task).set(time.time() if at is None else at)

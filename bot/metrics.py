"""Pulser's Prometheus metrics, on a registry of its own so tests and the sidecar see only ours.

Names follow Prometheus conventions: `pulser_` prefix, base units, `_total` for counters.
Modules below `bot/` never import this: they get the Metrics object passed in.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client import generate_latest
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.platform_collector import PlatformCollector


class Metrics:
    def __init__(self, version: str):
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry, namespace="pulser")
        PlatformCollector(registry=self.registry)
        r = self.registry
        self.build_info = Info("pulser_build", "Pulser version.", registry=r)
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
        self.notifications = Counter(
            "pulser_notifications_total",
            "Slack notifications by kind and outcome (sent, suppressed, retrying, failed).",
            ["kind", "outcome"],
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
            "Alerts applied to incidents by outcome (opened, repeat, reopened, resolved, suppressed, ignored).",
            ["outcome"],
            registry=r,
        )
        self.slack_calls = Counter(
            "pulser_slack_api_calls_total",
            "Slack Web API calls of the alert pipeline by method and outcome (ok, rate_limited, retrying, failed).",
            ["method", "outcome"],
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
        self.up.set(1)
        self.start_time.set(time.time())

    def render(self) -> bytes:
        return generate_latest(self.registry)

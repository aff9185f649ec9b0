"""Counts in Slack text read as English: one of a thing is singular ("1 app down"), never "1 apps"."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from blocks.applications import AppSummary, apps_list
from blocks.deploys import ServiceSummary, services_list
from blocks.incidents import IncidentView, investigation_thread
from blocks.kit import count_noun
from blocks.status import health_message, status_message

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def all_text(message: dict) -> str:
    """Fallback text plus every text object in the blocks (and attachments), as a person reads it."""
    found: list[str] = [message.get("text") or ""]

    def walk(node) -> None:
        if isinstance(node, dict):
            if node.get("type") in ("mrkdwn", "plain_text") and isinstance(node.get("text"), str):
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(message.get("blocks") or [])
    walk(message.get("attachments") or [])
    return "\n".join(found)


@pytest.mark.parametrize(
    "n, noun, plural, expected",
    [(0, "app", None, "0 apps"), (1, "app", None, "1 app"), (2, "app", None, "2 apps"),
     (1, "occurrence", None, "1 occurrence"), (1200, "request", None, "1,200 requests"),
     (1, "entry", "entries", "1 entry"), (3, "entry", "entries", "3 entries")],
)
def test_count_noun_is_singular_for_one_and_plural_otherwise(n, noun, plural, expected):
    assert count_noun(n, noun, plural) == expected


def test_status_with_one_app_down_one_incident_and_one_silence_says_so_in_the_singular():
    message = status_message(
        apps={"total": 1, "counts": {"down": 1}, "down": [{"name": "api", "down_since": NOW - timedelta(minutes=5)}]},
        incidents={"total": 1, "unacked": 1, "by_severity": {"high": 1}, "oldest": []},
        heroku=None,
        quiet={"active_silences": 1},
        silences=[],
        now=NOW,
    )
    assert message["text"] == "Pulser status: 1 app down, 1 open incident, 1 active silence"


def test_health_with_one_missed_heartbeat_and_one_message_waiting_says_so_in_the_singular():
    report = {
        "version": "0.1.0", "mode": "run", "uptime_seconds": 60,
        "components": {
            "heartbeat_watcher": {"status": "up", "last_run": NOW.isoformat(), "missed_total": 1},
            "slack_delivery": {"status": "up", "last_delivery": None, "incident_messages_pending": 1,
                               "incident_messages_failed": 1},
            "heroku": {"status": "up", "last_successful_poll": None, "rate_limit_remaining": 1},
        },
    }
    text = all_text(health_message(report, now=NOW))
    assert "1 missed heartbeat seen" in text
    assert "1 message waiting" in text and "1 message given up" in text
    assert "1 request left" in text
    assert "1 missed heartbeats" not in text and "1 messages" not in text and "1 requests" not in text


def test_the_investigation_thread_with_one_occurrence_says_last_1_occurrence():
    view = IncidentView(
        incident_id=1, title="Checkout 500s", description="", source="generic", service="checkout", env="",
        severity="high", status="firing", count=1, first_seen=NOW, last_seen=NOW,
    )
    occurrence = {"received_at": NOW, "status": "firing", "title": "Checkout 500s", "description": ""}
    text = all_text(investigation_thread(view, [occurrence], "U0ALICE"))
    assert "Last 1 occurrence*" in text
    assert "occurrences" not in text


def test_one_application_in_the_list_is_one_application():
    app = AppSummary(id=1, uuid="u", name="cron", status="up", expected="every 5 min", grace="1 min",
                     last_heartbeat="now", channel="C0OPS")
    text = apps_list([app], total=1, counts={"up": 1})["text"]
    assert text.startswith("1 application") and "applications" not in text


def test_one_deployable_service_is_one_service():
    service = ServiceSummary(name="api", action="GitHub workflow deploy.yml", default_env="production",
                             requires_approval=False, channel=None)
    assert services_list([service])["text"] == "1 deployable service"

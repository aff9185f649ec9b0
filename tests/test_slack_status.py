"""`/pulser status` and `/pulser health`, end to end: a running Pulser against the sandbox, a
real Postgres, alerts through the real pipeline."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from alerts.normalized import NormalizedAlert
from handlers.slack import status
from storage import heroku, silences
from tests.conftest import make_settings

NOW = datetime.now(timezone.utc)


@pytest.fixture
def settings(database_url, sandbox):
    return make_settings(
        DATABASE_URL=database_url,
        SLACK_BOT_TOKEN="xoxb-test-bot",
        SLACK_APP_TOKEN="xapp-test-app",
        SLACK_API_URL=sandbox.api_url,
        MONITORED_APP_NAME="shop-api,shop-worker",  # no HEROKU_API_KEY: monitoring stays inactive
        PULSER_WEBHOOK_TOKEN="webhook-token",
    )


def alert(fingerprint: str, *, severity: str = "high", service: str = "api", title: str | None = None) -> NormalizedAlert:
    return NormalizedAlert(
        source="generic", source_event_id=fingerprint, service=service, env="production", severity=severity,
        fingerprint=fingerprint, title=title or f"{fingerprint} is failing", description="", occurred_at=NOW,
    )


async def add_down_apps(pool, names: list[str]) -> None:
    await pool.execute(
        """
        INSERT INTO applications (uuid, name, expected_interval, channel, state, due_at, down_since)
        SELECT gen_random_uuid(), n, 300, '#ops', 'down', now() - interval '1 h', now() - interval '20 min'
          FROM unnest($1::text[]) AS n
        """,
        names,
    )


async def ask(sandbox, text: str) -> str:
    """What the person reads in the ephemeral answer (the ack's payload)."""
    ack = await sandbox.send_slash_command(text=text)
    payload = ack.get("payload") or {}
    parts = [payload.get("text", "")]
    for block in payload.get("blocks", []):
        if block.get("text"):
            parts.append(block["text"]["text"])
        for element in block.get("elements", []):
            parts.append(element.get("text", "") if isinstance(element.get("text"), str) else "")
    return "\n".join(parts)


# --- /pulser status ---------------------------------------------------------------------------------


async def test_status_names_the_down_apps_and_lists_firing_incidents_unacknowledged_first(pulser, sandbox):
    await add_down_apps(pulser.pool, ["billing-cron", "nightly-backup"])
    await pulser.pipeline.ingest(alert("db", severity="critical", title="Database unreachable"))
    await pulser.pipeline.ingest(alert("disk", title="Disk almost full"))
    answer = await ask(sandbox, "status")
    assert "billing-cron" in answer and "nightly-backup" in answer and "2 down" in answer
    assert "Database unreachable" in answer and "Disk almost full" in answer
    assert "2 firing incidents, 2 not acknowledged" in answer
    assert "1 critical" in answer and "1 high" in answer


async def test_status_shows_active_silences_and_the_incidents_they_hold_back(pulser, sandbox):
    await silences.create_silence(
        pulser.pool, matchers=[{"name": "service", "op": "=", "value": "batch"}], starts_at=None,
        ends_at=NOW + timedelta(hours=2), comment="maintenance window", created_by="U0ALICE",
    )
    await pulser.pipeline.ingest(alert("etl", service="batch", title="ETL job failed"))
    answer = await ask(sandbox, "status")
    assert "1 active silence" in answer and "1 firing incident held back" in answer
    assert 'service="batch"' in answer and "maintenance window" in answer
    assert "No open incidents." in answer  # the held-back one is not posted, so not open in Slack


async def test_status_shows_heroku_apps_from_their_stored_state_without_asking_heroku(pulser, sandbox):
    await heroku.save_app_state(
        pulser.pool, "shop-api", state={}, last_release_version=42, config_hash=None, config_key_id=None, addons={},
        dynos={"web.1": {"type": "web", "state": "up"}, "worker.1": {"type": "worker", "state": "crashed"}},
        polled_at=NOW - timedelta(minutes=3),
    )
    answer = await ask(sandbox, "status")
    assert "Monitoring INACTIVE" in answer and "HEROKU_API_KEY is not set" in answer
    assert "shop-api" in answer and "1 crashed (worker.1)" in answer
    assert "shop-worker" in answer and "not polled yet" in answer


async def test_status_with_nothing_going_on_says_so(pulser, sandbox):
    answer = await ask(sandbox, "status")
    assert "0 apps: none" in answer
    assert "No open incidents." in answer and "Nothing is silenced." in answer


async def test_status_still_answers_with_five_thousand_apps_and_names_only_the_first_ten_down(pulser, sandbox):
    await pulser.pool.execute(
        """
        INSERT INTO applications (uuid, name, expected_interval, channel, state, due_at, down_since)
        SELECT gen_random_uuid(), 'app-' || g, 300, '#ops',
               CASE WHEN g % 100 = 0 THEN 'down' ELSE 'up' END,
               now() + interval '5 min', CASE WHEN g % 100 = 0 THEN now() - g * interval '1 s' END
          FROM generate_series(1, 5000) AS g
        """
    )
    answer = await ask(sandbox, "status")
    assert "5,000 apps" in answer and "50 down" in answer and "4,950 up" in answer
    assert "app-5000" in answer  # down the longest
    assert "…and 40 more" in answer


# --- /pulser health ---------------------------------------------------------------------------------


async def test_health_shows_a_green_line_for_each_working_part(pulser, sandbox):
    answer = await ask(sandbox, "health")
    assert ":large_green_circle: *Database* · answers in" in answer
    assert ":large_green_circle: *Socket Mode* · connected" in answer
    assert ":large_green_circle: *Scheduler* · running" in answer and "`ledger-worker`" in answer
    assert ":large_green_circle: *Slack delivery*" in answer


async def test_health_shows_heroku_as_disabled_without_an_api_key(pulser, sandbox):
    answer = await ask(sandbox, "health")
    assert ":white_circle: *Heroku API* · not monitoring: HEROKU_API_KEY is not set" in answer


async def test_health_shows_each_webhook_source_green_when_configured_and_white_when_not(pulser, sandbox):
    answer = await ask(sandbox, "health")
    assert ":large_green_circle: *Webhook · generic* · last delivery never" in answer
    assert ":white_circle: *Webhook · sentry* · no secret configured" in answer


async def test_an_answer_not_ready_in_time_follows_through_response_url(monkeypatch):
    monkeypatch.setattr(status, "ANSWER_BUDGET", 0.01)
    acks, responses = [], []

    async def ack(**message):
        acks.append(message)

    async def respond(**message):
        responses.append(message)

    async def slow_answer() -> dict:
        await asyncio.sleep(0.1)
        return {"response_type": "ephemeral", "text": "all fine"}

    await status.answer_soon(ack, respond, slow_answer, what="status")
    assert acks == [{}] and responses == [{"response_type": "ephemeral", "text": "all fine"}]


async def test_an_answer_that_fails_is_one_line_saying_so():
    acks = []

    async def ack(**message):
        acks.append(message)

    async def broken() -> dict:
        raise ConnectionRefusedError("database down")

    async def respond(**message):
        raise AssertionError("a quick failure rides on the ack")

    await status.answer_soon(ack, respond, broken, what="status")
    assert "could not put its status together" in acks[0]["text"] and "ConnectionRefusedError" in acks[0]["text"]

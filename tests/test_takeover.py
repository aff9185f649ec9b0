"""Work a dead process claimed is taken over at once by a live one (not when its lease ends), and a
post that may have landed before the crash is found by its metadata instead of being made twice."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
from slack_sdk.web.async_client import AsyncWebClient

from alerts.normalized import NormalizedAlert
from alerts.outbound.incidents import MESSAGE_EVENT, IncidentNotifier
from alerts.outbound.slack import SlackDelivery
from alerts.pipeline import AlertPipeline, PipelineSettings
from storage import incidents, workers

LEASE = timedelta(seconds=60)
CHANNEL = "C0PAY"


async def open_incident(pool, title="Payments failing") -> None:
    alert = NormalizedAlert(
        source="generic", source_event_id=title, service="payments", env="production", severity="high",
        fingerprint=title, title=title, description="", occurred_at=datetime.now(timezone.utc),
    )
    await AlertPipeline(pool, PipelineSettings(default_channel=CHANNEL)).ingest(alert)


async def claim(pool, worker: str) -> list[dict]:
    return await incidents.claim_due_messages(pool, now=datetime.now(timezone.utc), limit=10, lease=LEASE, worker=worker)


async def test_a_message_claimed_by_a_process_that_stopped_beating_is_claimed_again_at_once(pool):
    await open_incident(pool)
    await pool.execute(
        "INSERT INTO pulser_workers (name, seen_at) VALUES ('ghost:1', now() - $1::interval)", workers.ALIVE_FOR * 2
    )
    [first] = await claim(pool, "ghost:1")  # then ghost:1 dies, its claim a minute from running out
    [again] = await claim(pool, "live:2")
    assert again["id"] == first["id"] and again["attempts"] == 2


async def test_a_message_claimed_by_a_live_process_is_left_to_it(pool):
    await open_incident(pool)
    await workers.beat(pool, "busy:1")
    assert len(await claim(pool, "busy:1")) == 1
    assert await claim(pool, "other:2") == []


async def test_a_claim_by_a_worker_that_never_said_it_was_alive_is_left_to_its_lease(pool):
    await open_incident(pool)
    assert len(await claim(pool, "script:1")) == 1
    assert await claim(pool, "live:2") == []


async def test_a_finished_claim_of_a_dead_worker_is_not_taken_over(pool):
    await open_incident(pool)
    await pool.execute(
        "INSERT INTO pulser_workers (name, seen_at) VALUES ('gone:1', now() - $1::interval)", workers.ALIVE_FOR * 2
    )
    [message] = await claim(pool, "gone:1")  # then gone:1 dies, after it finished the message
    now = datetime.now(timezone.utc)
    await incidents.message_rendered(
        pool, message["id"], version=1, claimed_until=message["render_due_at"], channel=CHANNEL, ts="1.0", now=now,
        debounce=timedelta(seconds=2),
    )
    assert await claim(pool, "live:2") == []


async def test_a_post_that_landed_before_the_crash_is_found_and_updated_not_posted_again(pool, sandbox):
    sandbox.add_channel(CHANNEL, "payments")
    await open_incident(pool)
    [message] = await claim(pool, "ghost:1")
    # ghost:1's chat.postMessage reached Slack; it died before it could record the ts.
    async with httpx.AsyncClient(timeout=10) as http:
        landed = (await http.post(
            f"{sandbox.api_url}chat.postMessage", headers={"Authorization": "Bearer xoxb-test-bot"},
            json={"channel": CHANNEL, "text": "Payments failing",
                  "metadata": {"event_type": MESSAGE_EVENT, "event_payload": {"message_id": message["id"]}}},
        )).json()
    await pool.execute("UPDATE incident_messages SET render_due_at = now() WHERE id = $1", message["id"])

    delivery = SlackDelivery(pool, AsyncWebClient(token="xoxb-test-bot", base_url=sandbox.api_url))
    await IncidentNotifier(pool, delivery, default_channel=CHANNEL).deliver_due()

    posts = [m for m in sandbox.messages[CHANNEL] if not m.get("thread_ts")]
    assert [p["ts"] for p in posts] == [landed["ts"]]
    assert len(sandbox.calls_to("chat.update")) == 1  # brought up to date in place
    row = await incidents.get_message(pool, message["id"])
    assert row["slack_ts"] == landed["ts"] and row["render_due_at"] is None


async def test_a_first_post_carries_the_metadata_a_retry_looks_for(pool, sandbox):
    sandbox.add_channel(CHANNEL, "payments")
    await open_incident(pool)
    delivery = SlackDelivery(pool, AsyncWebClient(token="xoxb-test-bot", base_url=sandbox.api_url))
    await IncidentNotifier(pool, delivery, default_channel=CHANNEL).deliver_due()
    [post] = sandbox.messages[CHANNEL]
    [message] = await incidents.messages_for(pool, 1)
    assert post["metadata"] == {"event_type": MESSAGE_EVENT, "event_payload": {"message_id": message["id"], "incident_id": 1}}

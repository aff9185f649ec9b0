"""Slack failing while alerts arrive, end to end: a running Pulser against the sandbox, which
answers the way Slack does when it rate-limits (429 with Retry-After), breaks (500) or refuses the
token (`invalid_auth`, as while a token is rotated), and a message someone deleted.

Each test waits for the positive signal that everything is done — every incident message posted
and nothing left due in the outbox — before it asserts that nothing was posted twice.
"""

from __future__ import annotations

import json

import httpx
import pytest

from slack_sdk.web.async_client import AsyncWebClient

from alerts.outbound.slack import SlackDelivery, Throttled
from alerts.routing import validate_rule
from storage import incidents, routing_rules
from tests import webhook_senders as send
from tests.conftest import StoppedClock, eventually, make_settings

ALERTS = "C0ALERTS"
TITLES = [f"Worker {n} out of memory" for n in range(6)]


@pytest.fixture
def settings(database_url, sandbox):
    sandbox.add_channel(ALERTS, "ops-alerts")
    sandbox.set_user("U0ALICE", name="alice", is_admin=True)
    return make_settings(
        DATABASE_URL=database_url,
        SLACK_BOT_TOKEN="xoxb-test-bot",
        SLACK_APP_TOKEN="xapp-test-app",
        SLACK_API_URL=sandbox.api_url,
        ALERT_UPDATE_DEBOUNCE_SECONDS="0",
        PULSER_STORM_THRESHOLD="0",  # six incidents at once are a storm; here each must be its own message
        **send.SECRETS_ENV,
    )


@pytest.fixture
async def http(pulser):
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{pulser.http_port}", timeout=10) as client:
        yield client


async def alert(http, title: str, *, status: str = "firing") -> None:
    body = {"title": title, "service": "workers", "env": "production", "severity": "high", "status": status}
    headers, content = send.generic(body)
    response = await http.post("/webhooks/generic", headers=headers, content=content)
    assert response.status_code == 202, response.text


def posts(sandbox) -> list[dict]:
    return [m for m in sandbox.messages.get(ALERTS, []) if not m.get("thread_ts")]


def rendered(message: dict) -> str:
    return message.get("text", "") + json.dumps([message.get("attachments", []), message.get("blocks", [])])


def posts_of(sandbox, title: str) -> list[dict]:
    return [m for m in posts(sandbox) if title in rendered(m)]


async def drained(pulser, incident_count: int) -> bool:
    """Every incident open, each of its messages posted, nothing left to send or retry."""
    listed = await incidents.list_incidents(pulser.pool)
    if len(listed) != incident_count:
        return False
    messages = [m for i in listed for m in await incidents.messages_for(pulser.pool, i["id"])]
    return bool(messages) and all(m["slack_ts"] and m["render_due_at"] is None and not m["failed"] for m in messages)


async def health(http) -> tuple[int, dict]:
    response = await http.get("/health")
    return response.status_code, response.json()["components"]["slack_delivery"]


def assert_each_posted_once(sandbox) -> None:
    for title in TITLES:
        assert len(posts_of(sandbox, title)) == 1, f"{title!r} posted {len(posts_of(sandbox, title))} times"
    assert len(posts(sandbox)) == len(TITLES)


# --- chat.postMessage --------------------------------------------------------------------------------


async def test_rate_limited_posts_are_each_delivered_once_after_retry_after(pulser, sandbox, http):
    sandbox.fail_next("chat.postMessage", status=429, retry_after=1, times=4)
    for title in TITLES:
        await alert(http, title)
    await eventually(lambda: drained(pulser, len(TITLES)), timeout=60)
    assert_each_posted_once(sandbox)
    status, part = await health(http)
    assert status == 200 and part["status"] == "up"


async def test_posts_answered_500_are_retried_and_each_delivered_once(pulser, sandbox, http):
    sandbox.fail_next("chat.postMessage", status=500, times=3)
    for title in TITLES:
        await alert(http, title)
    await eventually(lambda: drained(pulser, len(TITLES)), timeout=60)
    assert_each_posted_once(sandbox)


async def test_a_refused_token_holds_every_alert_and_delivers_each_once_when_it_works_again(pulser, sandbox, http):
    sandbox.fail_next("chat.postMessage", status=200, error="invalid_auth", times=3)
    await alert(http, TITLES[0])
    await eventually(lambda: pulser.delivery.auth_problem is not None, timeout=30)
    status, part = await health(http)
    assert status == 503 and part["status"] == "down" and part["error"] == "invalid_auth"

    for title in TITLES[1:]:  # alerts keep arriving while Slack refuses the token
        await alert(http, title)
    await eventually(lambda: drained(pulser, len(TITLES)), timeout=90)

    assert_each_posted_once(sandbox)
    status, part = await health(http)
    assert status == 200 and part["status"] == "up"


async def test_while_slack_refuses_the_token_one_call_probes_and_the_waits_grow(pool, sandbox):
    sandbox.fail_next("chat.postMessage", status=200, error="invalid_auth", times=100)
    clock = StoppedClock()
    delivery = SlackDelivery(pool, AsyncWebClient(token="xoxb-test-bot", base_url=sandbox.api_url), clock=clock)

    waits = []
    for _probe in range(4):
        for _alert in range(10):  # ten alerts due at once: one call reaches Slack, nine are held
            try:
                await delivery.call("chat.postMessage", channel=ALERTS, text="down")
            except Throttled as held:
                waits.append(held.retry_after)
        clock.now += waits[-1]

    assert len(sandbox.calls_to("chat.postMessage")) == 4
    assert waits == [2.0] * 10 + [4.0] * 10 + [8.0] * 10 + [16.0] * 10
    assert delivery.auth_problem is not None and delivery.auth_problem.error == "invalid_auth"

    sandbox.state.failures.clear()
    await delivery.call("chat.postMessage", channel=ALERTS, text="down")
    assert delivery.auth_problem is None



# --- chat.update -------------------------------------------------------------------------------------


async def first_posts(pulser, sandbox, count: int) -> list[dict]:
    await eventually(lambda: drained(pulser, count), timeout=60)
    return posts(sandbox)


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 429, "retry_after": 1, "times": 3},
        {"status": 500, "times": 3},
        {"status": 200, "error": "invalid_auth", "times": 2},
    ],
    ids=["429", "500", "invalid_auth"],
)
async def test_updates_that_fail_still_bring_every_message_to_its_final_state(pulser, sandbox, http, fault):
    for title in TITLES[:3]:
        await alert(http, title)
    before = await first_posts(pulser, sandbox, 3)
    sandbox.fail_next("chat.update", **fault)
    for title in TITLES[:3]:
        await alert(http, title, status="resolved")

    async def all_resolved() -> bool:
        shown = [sandbox.state.find_message(m["channel"], m["ts"]) for m in before]
        return all(":white_check_mark: Resolved" in rendered(m) for m in shown) and await drained(pulser, 3)

    await eventually(all_resolved, timeout=90)
    assert len(posts(sandbox)) == 3, "updated in place, never posted again"
    status, part = await health(http)
    assert status == 200 and part["status"] == "up"


# --- a message someone deleted ------------------------------------------------------------------------


async def test_an_incident_whose_message_was_deleted_is_posted_again_with_its_new_state(pulser, sandbox, http):
    await alert(http, TITLES[0])
    [message] = await first_posts(pulser, sandbox, 1)
    async with httpx.AsyncClient(timeout=10) as slack:
        deleted = await slack.post(
            f"{sandbox.api_url}chat.delete", headers={"Authorization": "Bearer xoxb-test-bot"},
            data={"channel": message["channel"], "ts": message["ts"]},
        )
    assert deleted.json()["ok"]

    await alert(http, TITLES[0], status="resolved")

    reposted = await eventually(lambda: [m for m in posts(sandbox) if ":white_check_mark: Resolved" in rendered(m)], timeout=30)
    assert reposted[0]["ts"] != message["ts"]
    await eventually(lambda: drained(pulser, 1), timeout=30)
    [row] = await incidents.messages_for(pulser.pool, (await incidents.list_incidents(pulser.pool))[0]["id"])
    assert row["slack_ts"] == reposted[0]["ts"] and not row["failed"]
    status, part = await health(http)
    assert status == 200 and part["incident_messages_failed"] == 0


# --- a channel that will not take Pulser's messages yet ----------------------------------------------


async def test_an_alert_for_a_channel_pulser_is_not_in_is_held_shown_by_default_and_posted_once_invited(pulser, sandbox, http):
    sandbox.add_channel("C0PAY", "payments")
    await routing_rules.create_rule(
        pulser.pool, validate_rule({"name": "payments", "services": "workers", "channel": "C0PAY"}).as_row(), created_by="U0ALICE"
    )
    sandbox.fail_next("chat.postMessage", status=200, error="not_in_channel", times=1)
    await alert(http, TITLES[0])

    shown = await eventually(lambda: posts_of(sandbox, TITLES[0]), timeout=30)
    assert shown[0]["channel"] == ALERTS, "meanwhile the alert itself is in the default channel"
    status, part = await health(http)
    assert part["status"] == "degraded" and part["held_for_channels"] == {"C0PAY": "not_in_channel"}

    await sandbox.send_event({"type": "member_joined_channel", "user": sandbox.bot_user_id, "channel": "C0PAY"})

    delivered = await eventually(
        lambda: [m for m in sandbox.messages.get("C0PAY", []) if TITLES[0] in rendered(m)], timeout=30
    )
    assert len(delivered) == 1
    await eventually(lambda: drained(pulser, 1), timeout=30)
    status, part = await health(http)
    assert "held_for_channels" not in part

"""The incident inbox: each filter of `/pulser incidents` against incidents the real pipeline
opened in a real Postgres, keyset paging in both orders, the command's answer and buttons in the
sandbox, a bad filter's explanation, and App Home's saved filters."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from alerts.incident_filters import FilterError, parse_command_text
from alerts.incident_inbox import CursorError, incident_page
from blocks.home import HOME_INBOX_PREFIX
from blocks.incident_inbox import INBOX_ACK, INBOX_PAGE, INBOX_RESOLVE
from blocks.incidents import OPEN
from storage import incidents
from tests.conftest import eventually, make_settings
from tests.incident_seeds import ALERTS, alert, inbox_fixture, open_incident


async def matching(pool, text: str, user: str = "U0ALICE") -> set[int]:
    page = await incident_page(pool, parse_command_text(text).for_user(user), now=datetime.now(timezone.utc), limit=100)
    return {r["id"] for r in page.rows}


@pytest.fixture
async def seeded(pool):
    return await inbox_fixture(pool)


def ids(seeded, *names) -> set[int]:
    return {seeded[n] for n in names}


# --- each filter ---------------------------------------------------------------------------------------


async def test_without_words_the_inbox_shows_the_open_incidents(pool, seeded):
    assert await matching(pool, "") == ids(seeded, "checkout", "frontend", "db", "search", "cache")


async def test_status_resolved_and_all(pool, seeded):
    assert await matching(pool, "status=resolved") == ids(seeded, "ci")
    assert await matching(pool, "status=all") == set(seeded.values())


async def test_status_acked_unacked_and_snoozed(pool, seeded):
    assert await matching(pool, "status=acked") == ids(seeded, "db")
    assert await matching(pool, "status=snoozed") == ids(seeded, "cache")
    assert await matching(pool, "status=unacked") == ids(seeded, "checkout", "frontend", "search", "cache")


async def test_env(pool, seeded):
    assert await matching(pool, "env=staging") == ids(seeded, "frontend")
    assert await matching(pool, "env=staging,prod status=all") == ids(seeded, "checkout", "frontend", "db", "search", "cache")


async def test_severity_at_least_and_exactly(pool, seeded):
    assert await matching(pool, "severity>=high") == ids(seeded, "checkout", "db")
    assert await matching(pool, "severity=medium status=all") == ids(seeded, "ci", "search")


async def test_service_and_source(pool, seeded):
    assert await matching(pool, "service=db,search") == ids(seeded, "db", "search")
    assert await matching(pool, "source=sentry") == ids(seeded, "frontend")


async def test_tag(pool, seeded):
    assert await matching(pool, "tag=team=payments") == ids(seeded, "checkout")
    assert await matching(pool, "tag=team=other") == set()


async def test_assignee_me_is_the_person_asking(pool, seeded):
    assert await matching(pool, "assignee=@me", user="U0ALICE") == ids(seeded, "db")
    assert await matching(pool, "assignee=@me", user="U0BOB") == ids(seeded, "search")
    assert await matching(pool, "assignee=<@U0BOB|bob>") == ids(seeded, "search")
    assert await matching(pool, "assignee=none") == ids(seeded, "checkout", "frontend", "cache")


async def test_since_is_seen_within(pool, seeded):
    assert seeded["search"] not in await matching(pool, "since=24h")
    assert seeded["search"] in await matching(pool, "since=3d")


async def test_filters_combine(pool, seeded):
    assert await matching(pool, "status=open env=prod severity>=high assignee=none") == ids(seeded, "checkout")


@pytest.mark.parametrize(
    ("text", "key", "says"),
    [
        ("colour=red", "colour", "unknown filter"),
        ("status=burning", "status", "open|acked|unacked|snoozed|resolved|all"),
        ("severity>=huge", "severity", "info|low|medium|high|critical"),
        ("env>=prod", "env", "takes =, not >="),
        ("source=datadog", "source", "sentry|alertmanager|github|generic|heroku"),
        ("tag=team", "tag", "tag=key=value"),
        ("assignee=alice", "assignee", "assignee=@me"),
        ("since=yesterday", "since", "30m|24h|7d|2w"),
        ("since=999w", "since", "366 days"),
        ("sort=random", "sort", "newest|oldest|oldest-unacked"),
        ("prod", "prod", "key=value"),
    ],
)
def test_a_bad_filter_says_what_is_allowed(text, key, says):
    with pytest.raises(FilterError) as caught:
        parse_command_text(text)
    assert key in caught.value.problems and says in caught.value.problems[key]


# --- paging ----------------------------------------------------------------------------------------------


async def test_pages_cover_every_incident_once_newest_first(pool):
    opened = [await open_incident(pool, alert(f"svc-{n}")) for n in range(23)]
    f = parse_command_text("")
    seen, cursor, pages = [], None, 0
    while True:
        page = await incident_page(pool, f, now=datetime.now(timezone.utc), limit=10, cursor=cursor)
        seen += [r["id"] for r in page.rows]
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages == 3 and seen == sorted(opened, reverse=True)


async def test_oldest_unacked_puts_unacknowledged_first_oldest_first_across_pages(pool, seeded):
    f = parse_command_text("sort=oldest-unacked")
    first = await incident_page(pool, f, now=datetime.now(timezone.utc), limit=3)
    rest = await incident_page(pool, f, now=datetime.now(timezone.utc), limit=3, cursor=first.next_cursor)
    order = [r["id"] for r in first.rows + rest.rows]
    assert order == [seeded[n] for n in ("search", "checkout", "frontend", "cache", "db")], "search began two days ago"
    assert rest.next_cursor is None


async def test_a_cursor_from_another_order_is_refused(pool, seeded):
    page = await incident_page(pool, parse_command_text(""), now=datetime.now(timezone.utc), limit=2)
    with pytest.raises(CursorError):
        await incident_page(pool, parse_command_text("sort=oldest-unacked"), now=datetime.now(timezone.utc), limit=2,
                            cursor=page.next_cursor)


# --- in Slack ----------------------------------------------------------------------------------------------


@pytest.fixture
def settings(database_url, sandbox):
    sandbox.add_channel(ALERTS, "ops-alerts")
    sandbox.set_user("U0ALICE", name="alice", is_admin=True)
    sandbox.set_user("U0BOB", name="bob")
    return make_settings(
        DATABASE_URL=database_url, SLACK_BOT_TOKEN="xoxb-test-bot", SLACK_APP_TOKEN="xapp-test-app",
        SLACK_API_URL=sandbox.api_url, SLACK_CHANNEL=ALERTS, ALERT_UPDATE_DEBOUNCE_SECONDS="0",
    )  # fmt: skip


def elements(blocks: list[dict], action_id: str) -> list[dict]:
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"] if e["action_id"] == action_id]


def text_of(blocks: list[dict]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


async def test_the_command_answers_with_an_ephemeral_list_and_row_buttons(pulser, sandbox):
    ids_ = await inbox_fixture(pulser.pool)
    ack = await sandbox.send_slash_command(text="incidents env=prod severity>=high", user_id="U0ALICE")
    payload = ack["payload"]
    assert payload["response_type"] == "ephemeral"
    text = text_of(payload["blocks"])
    assert "2 matches" in text and "checkout is failing" in text and "db is failing" in text
    assert "frontend" not in text
    assert {e["value"] for e in elements(payload["blocks"], OPEN)} == {str(ids_["checkout"]), str(ids_["db"])}
    assert len(elements(payload["blocks"], INBOX_ACK)) == 1, "only the unacknowledged row offers Ack"
    assert len(elements(payload["blocks"], INBOX_RESOLVE)) == 2
    assert ":eyes: Acknowledged" in text and "assignee <@U0ALICE>" in text and "unassigned" in text


async def test_a_bad_filter_is_an_ephemeral_that_lists_the_filters(pulser, sandbox):
    ack = await sandbox.send_slash_command(text="incidents severity>=urgent", user_id="U0BOB")
    payload = ack["payload"]
    assert payload["response_type"] == "ephemeral"
    assert "unknown severity 'urgent'" in payload["text"]
    assert "since=30m|24h|7d|2w" in payload["text"] and "tag=key=value" in payload["text"]


async def test_next_page_redraws_the_list_in_place_with_the_following_incidents(pulser, sandbox):
    for n in range(12):
        await open_incident(pulser.pool, alert(f"svc-{n:02d}"))
    ack = await sandbox.send_slash_command(text="incidents", user_id="U0ALICE")
    [following] = elements(ack["payload"]["blocks"], INBOX_PAGE)
    assert "svc-00" not in text_of(ack["payload"]["blocks"])
    before = len(sandbox.response_url_posts)
    await sandbox.send_block_action(INBOX_PAGE, following["value"], user_id="U0ALICE", channel_id="C0OPS")
    await eventually(lambda: len(sandbox.response_url_posts) > before, timeout=30)
    _, body = sandbox.response_url_posts[-1]
    assert body["replace_original"] is True
    assert "svc-00 is failing" in text_of(body["blocks"]) and "svc-11" not in text_of(body["blocks"])
    assert "Page 2 · incidents 11–12 of 12" in text_of(body["blocks"])


async def test_ack_from_the_list_acks_redraws_the_list_and_updates_the_channel_message(pulser, sandbox):
    incident_id = await open_incident(pulser.pool, alert("checkout"))
    posted = await eventually(lambda: [m for m in sandbox.messages.get(ALERTS, []) if "checkout" in m.get("text", "")], timeout=30)
    ack = await sandbox.send_slash_command(text="incidents", user_id="U0BOB")
    [ack_button] = elements(ack["payload"]["blocks"], INBOX_ACK)
    before = len(sandbox.response_url_posts)
    await sandbox.send_block_action(INBOX_ACK, ack_button["value"], user_id="U0BOB", channel_id="C0OPS")
    await eventually(lambda: len(sandbox.response_url_posts) > before, timeout=30)
    _, body = sandbox.response_url_posts[-1]
    assert elements(body["blocks"], INBOX_ACK) == [] and ":eyes: Acknowledged" in text_of(body["blocks"])
    assert (await incidents.get_incident(pulser.pool, incident_id))["acked_by"] == "U0BOB"
    message = sandbox.state.find_message(ALERTS, posted[0]["ts"])
    await eventually(lambda: "Acked by <@U0BOB>" in json.dumps(message.get("attachments")), timeout=30)


async def test_a_saved_filter_on_home_opens_my_open_incidents_in_a_modal(pulser, sandbox):
    ids_ = await inbox_fixture(pulser.pool)
    await sandbox.send_app_home_opened("U0BOB")
    home = (await eventually(lambda: sandbox.home_views.get("U0BOB"), timeout=30))
    assert "Incident inbox" in text_of(home["blocks"])
    before = len(sandbox.calls_to("views.open"))
    await sandbox.send_block_action(HOME_INBOX_PREFIX + "my_open", "my_open", user_id="U0BOB", view_id=home["id"])
    await sandbox.wait_for_call("views.open", count=before + 1, timeout=30)
    modal = sandbox.views[max(sandbox.views)]
    assert {e["value"] for e in elements(modal["blocks"], OPEN)} == {str(ids_["search"])}


async def test_help_lists_the_incidents_command(pulser, sandbox):
    ack = await sandbox.send_slash_command(text="help", user_id="U0BOB")
    assert "/pulser incidents" in text_of(ack["payload"]["blocks"])

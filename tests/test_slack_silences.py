"""`/pulser silence` end to end: create, list, expire by command and by button, through the sandbox
with the real Bolt app over Socket Mode and a real Postgres."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from blocks.silences import EXPIRE
from handlers.slack.admin import forget_answers
from storage import silences as store
from storage.audit import list_actions
from tests.conftest import eventually

ADMIN = "U0ADA"  # a workspace admin, as users.info says
MEMBER = "U0BOB"  # an ordinary member
STAGING = [{"name": "env", "op": "=", "value": "staging"}]


@pytest.fixture(autouse=True)
def people(sandbox):
    forget_answers()
    sandbox.set_user(ADMIN, name="ada", is_admin=True)
    sandbox.set_user(MEMBER, name="bob")


def message_text(message: dict) -> str:
    """Everything a person reads in a message: its text, sections and context lines."""
    parts = [message.get("text", "")]
    for block in message.get("blocks", []):
        if block["type"] == "section":
            parts.append(block["text"]["text"])
        elif block["type"] == "context":
            parts += [e["text"] for e in block["elements"]]
    return "\n".join(parts)


async def command(sandbox, text: str, user: str = ADMIN) -> dict:
    """Send `/pulser silence <text>`; the ephemeral answer the ack carried."""
    ack = await sandbox.send_slash_command(text=f"silence {text}".strip(), user_id=user)
    return ack["payload"]


async def click_expire(sandbox, silence_id: int, user: str = ADMIN) -> dict:
    """Click a silence's Expire button in the list; the response_url post it caused."""
    before = len(sandbox.response_url_posts)
    await sandbox.send_block_action(EXPIRE, value=str(silence_id), user_id=user, channel_id="C0OPS")
    await eventually(lambda: len(sandbox.response_url_posts) > before)
    return sandbox.response_url_posts[before][1]


async def add_silence(pulser, matchers=STAGING, hours: float = 2, comment: str = "", by: str = ADMIN) -> dict:
    now = datetime.now(timezone.utc)
    return await store.create_silence(
        pulser.pool, matchers=matchers, starts_at=now, ends_at=now + timedelta(hours=hours), comment=comment,
        created_by=by,
    )


async def actions_on(pulser, silence_id: int) -> list[str]:
    return [a["action"] for a in await list_actions(pulser.pool, target_type="silence", target_id=silence_id)]


# --- creating --------------------------------------------------------------------------------------


async def test_an_admin_silences_matching_alerts_for_a_while(pulser, sandbox):
    answer = await command(sandbox, "env=staging service=api 2h maintenance window")
    (row,) = await store.list_silences(pulser.pool, now=datetime.now(timezone.utc))
    assert row["matchers"] == STAGING + [{"name": "service", "op": "=", "value": "api"}]
    assert row["ends_at"] - row["starts_at"] == timedelta(hours=2)
    assert (row["comment"], row["created_by"]) == ("maintenance window", ADMIN)
    assert answer["response_type"] == "ephemeral"
    text = message_text(answer)
    assert '`env="staging" service="api"`' in text and "(for 2 h)" in text and "maintenance window" in text
    assert f"<!date^{int(row['ends_at'].timestamp())}^" in text, "the end time is shown in each reader's time zone"
    assert f"/pulser silence expire {row['id']}" in text


async def test_a_created_silence_is_audited_with_the_user(pulser, sandbox):
    await command(sandbox, 'alertname=~"Disk.*" 30m')
    (row,) = await store.list_silences(pulser.pool, now=datetime.now(timezone.utc))
    (entry,) = await list_actions(pulser.pool, target_type="silence", target_id=row["id"])
    assert (entry["actor"], entry["action"]) == (ADMIN, "silence.create")
    assert entry["details"]["matchers"] == [{"name": "alertname", "op": "=~", "value": "Disk.*"}]


async def test_slack_escapes_and_curly_quotes_in_the_command_are_read_as_typed(pulser, sandbox):
    # Slack sends &, < and > HTML-escaped; some clients turn "…" into “…”.
    await command(sandbox, "alertname=\u201cDisk full\u201d 1h R&amp;D &lt;3")
    (row,) = await store.list_silences(pulser.pool, now=datetime.now(timezone.utc))
    assert row["matchers"] == [{"name": "alertname", "op": "=", "value": "Disk full"}]
    assert row["comment"] == "R&D <3"


async def test_a_member_cannot_silence_and_nothing_is_stored(pulser, sandbox):
    answer = await command(sandbox, "env=staging 2h", user=MEMBER)
    assert "Only Pulser admins can create silences" in message_text(answer)
    assert await store.list_silences(pulser.pool, now=datetime.now(timezone.utc)) == []


@pytest.mark.parametrize(
    "args, says",
    [
        ("env=staging", "say how long"),
        ("env=staging soon 2h", "`soon` is neither a matcher"),
        ("env=staging 100d", "`100d` is too long"),
        ('alertname=~"Disk(" 2h', "not a valid regular expression"),
        ("service!=api 2h", "almost everything"),
    ],
)
async def test_bad_input_says_what_to_fix_shows_an_example_and_stores_nothing(pulser, sandbox, args, says):
    answer = await command(sandbox, args)
    text = message_text(answer)
    assert answer["response_type"] == "ephemeral"
    assert says in text and "/pulser silence env=staging service=api 2h maintenance window" in text
    assert await store.list_silences(pulser.pool, now=datetime.now(timezone.utc)) == []


# --- listing ---------------------------------------------------------------------------------------


async def test_anyone_can_list_active_silences_with_what_until_when_by_whom_and_why(pulser, sandbox):
    silence = await add_silence(pulser, comment="db upgrade")
    for text in ("", "list"):
        answer = await command(sandbox, text, user=MEMBER)
        block = next(b for b in answer["blocks"] if b.get("block_id") == f"silence_{silence['id']}")
        line = block["text"]["text"]
        assert '`env="staging"`' in line and f"<@{ADMIN}>" in line and "db upgrade" in line
        assert "(in 1 h 59 min)" in line or "(in 2 h)" in line
        assert (block["accessory"]["action_id"], block["accessory"]["value"]) == (EXPIRE, str(silence["id"]))


async def test_the_list_leaves_out_ended_silences(pulser, sandbox):
    live = await add_silence(pulser)
    ended = await add_silence(pulser, matchers=[{"name": "env", "op": "=", "value": "qa"}])
    await store.expire_silence(pulser.pool, ended["id"], by=ADMIN, now=datetime.now(timezone.utc))
    ids = {b.get("block_id") for b in (await command(sandbox, "list"))["blocks"]}
    assert f"silence_{live['id']}" in ids and f"silence_{ended['id']}" not in ids


async def test_with_no_silences_the_list_says_how_to_add_one(pulser, sandbox):
    text = message_text(await command(sandbox, "list"))
    assert "none active" in text and "/pulser silence env=staging" in text


async def test_the_list_ends_with_how_many_inhibition_rules_are_active(pulser, sandbox):
    await store.create_inhibition_rule(
        pulser.pool, name="crit", source_matchers=[{"name": "severity", "op": "=", "value": "critical"}],
        target_matchers=[{"name": "severity", "op": "!=", "value": "critical"}], equal=["service"], created_by="api",
    )
    assert "1 inhibition rule active (GET /api/inhibitions)" in message_text(await command(sandbox, "list"))


# --- expiring by command ---------------------------------------------------------------------------


async def test_an_admin_expires_a_silence_by_number_and_sees_the_list(pulser, sandbox):
    silence = await add_silence(pulser)
    answer = await command(sandbox, f"expire {silence['id']}")
    assert (await store.get_silence(pulser.pool, silence["id"]))["expired_by"] == ADMIN
    text = message_text(answer)
    assert f"Expired silence *#{silence['id']}*" in text and "none active" in text
    assert await actions_on(pulser, silence["id"]) == ["silence.expire"]


async def test_expiring_an_unknown_or_ended_silence_says_so(pulser, sandbox):
    silence = await add_silence(pulser)
    await command(sandbox, f"expire {silence['id']}")
    assert "had already ended" in message_text(await command(sandbox, f"expire {silence['id']}"))
    assert "There is no silence *#999*" in message_text(await command(sandbox, "expire 999"))


async def test_expire_without_a_number_shows_how(pulser, sandbox):
    assert "/pulser silence expire 12" in message_text(await command(sandbox, "expire soon"))


async def test_a_member_cannot_expire_by_command(pulser, sandbox):
    silence = await add_silence(pulser)
    answer = await command(sandbox, f"expire {silence['id']}", user=MEMBER)
    assert "Only Pulser admins can expire silences" in message_text(answer)
    assert (await store.get_silence(pulser.pool, silence["id"]))["expired_by"] is None


# --- the Expire button -----------------------------------------------------------------------------


async def test_the_expire_button_ends_the_silence_and_replaces_the_list(pulser, sandbox):
    silence = await add_silence(pulser)
    keep = await add_silence(pulser, matchers=[{"name": "env", "op": "=", "value": "qa"}])
    body = await click_expire(sandbox, silence["id"])
    assert (await store.get_silence(pulser.pool, silence["id"]))["expired_by"] == ADMIN
    assert body["replace_original"] is True
    ids = {b.get("block_id") for b in body["blocks"]}
    assert f"silence_{silence['id']}" not in ids and f"silence_{keep['id']}" in ids
    assert f"Expired silence *#{silence['id']}*" in message_text(body)
    assert await actions_on(pulser, silence["id"]) == ["silence.expire"]


async def test_the_expire_button_asks_for_confirmation_first(pulser, sandbox):
    silence = await add_silence(pulser)
    block = next(b for b in (await command(sandbox, "list"))["blocks"] if b.get("block_id") == f"silence_{silence['id']}")
    assert "will reach Slack again" in block["accessory"]["confirm"]["text"]["text"]


async def test_a_member_clicking_expire_is_refused_and_the_silence_stays(pulser, sandbox):
    silence = await add_silence(pulser)
    body = await click_expire(sandbox, silence["id"], user=MEMBER)
    assert body["replace_original"] is False, "the list stays; the refusal comes as its own message"
    assert "Only Pulser admins can expire silences" in body["text"]
    assert (await store.get_silence(pulser.pool, silence["id"]))["expired_by"] is None
    assert await actions_on(pulser, silence["id"]) == ["silence.expire_refused"]


async def test_clicking_expire_on_a_silence_ended_meanwhile_shows_the_current_list(pulser, sandbox):
    silence = await add_silence(pulser)
    await store.expire_silence(pulser.pool, silence["id"], by=MEMBER, now=datetime.now(timezone.utc))
    body = await click_expire(sandbox, silence["id"])
    assert body["replace_original"] is True and "had already ended" in message_text(body)

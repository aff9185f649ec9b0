"""The sandbox page as a Slack client: the sidebar, who sees what, threads, modals, live updates.
Driven over HTTP like a browser without script; tests/browser drives it in a real one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest_asyncio
from slack_sdk.web.async_client import AsyncWebClient

from sandbox import SlackSandbox


@pytest_asyncio.fixture
async def sb() -> AsyncIterator[SlackSandbox]:
    sandbox = SlackSandbox(rate_limits=False)
    sandbox.add_try_out_workspace()
    await sandbox.start()
    yield sandbox
    await sandbox.stop()


@pytest_asyncio.fixture
async def web(sb: SlackSandbox) -> AsyncWebClient:
    return AsyncWebClient(token=SlackSandbox.BOT_TOKEN, base_url=sb.api_url)


@pytest_asyncio.fixture
async def alice() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


@pytest_asyncio.fixture
async def bob(sb: SlackSandbox) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        async with session.post(sb.base_url + "/sandbox/ui/user", data={"user_id": "U0BOB"}) as resp:
            assert resp.status == 200
        yield session


async def page(session: aiohttp.ClientSession, sb: SlackSandbox, path: str = "/") -> str:
    async with session.get(sb.base_url + path) as resp:
        assert resp.status == 200
        return await resp.text()


def sidebar(html: str) -> str:
    return html.split('<nav id="sidebar"', 1)[1].split("</nav>", 1)[0]


async def test_the_switcher_offers_an_admin_and_a_member_as_pulser_sees_them(sb, alice):
    sb.listed_admins = ("U0CAROL",)
    sb.set_user("U0CAROL", name="carol")

    html = sidebar(await page(alice, sb))

    assert '<option value="U0ALICE" selected>alice — workspace admin</option>' in html
    assert '<option value="U0BOB">bob — member</option>' in html
    assert '<option value="U0CAROL">carol — Pulser admin (PULSER_ADMINS)</option>' in html


async def test_a_channel_not_looked_at_shows_its_unread_count_until_opened(sb, web, alice):
    for n in range(3):
        await web.chat_postMessage(channel="C0ALERTS", text=f"alert {n}")
    await web.chat_postMessage(channel="C0ALERTS", text="a reply", thread_ts=sb.messages["C0ALERTS"][0]["ts"])

    assert '#</span>ops-alerts<span class="badge">3</span>' in sidebar(await page(alice, sb))
    await page(alice, sb, "/?c=C0ALERTS")
    assert '<span class="badge">' not in sidebar(await page(alice, sb, "/?c=C0OPS"))


async def test_an_ephemeral_shows_in_its_channel_only_to_its_person(sb, web, alice, bob):
    await web.chat_postEphemeral(channel="C0OPS", user="U0ALICE", text="just for *alice*")

    mine = await page(alice, sb, "/?c=C0OPS")
    assert "just for <b>alice</b>" in mine and "Only visible to you" in mine
    assert "just for" not in await page(bob, sb, "/?c=C0OPS")
    assert "just for" not in await page(alice, sb, "/?c=C0ALERTS")


async def test_dismissing_an_ephemeral_removes_it(sb, web, alice):
    posted = await web.chat_postEphemeral(channel="C0OPS", user="U0ALICE", text="dismiss me")
    async with alice.post(sb.base_url + "/sandbox/ui/dismiss", data={"ephemeral_id": posted["message_ts"]}) as resp:
        html = await resp.text()
    assert "dismiss me" not in html and sb.ephemerals == []


async def test_replies_are_collapsed_under_their_message_and_open_beside_it(sb, web, alice):
    parent = await web.chat_postMessage(channel="C0OPS", text="alert")
    for text in ("first reply", "second reply"):
        await web.chat_postMessage(channel="C0OPS", text=text, thread_ts=parent["ts"])

    channel = await page(alice, sb, "/?c=C0OPS")
    assert f'href="/?c=C0OPS&amp;thread={parent["ts"]}">2 replies</a>' in channel and "first reply" not in channel
    thread = (await page(alice, sb, f"/?c=C0OPS&thread={parent['ts']}")).split('<aside id="thread"', 1)[1]
    assert thread.index("alert") < thread.index("first reply") < thread.index("second reply")


async def test_a_broadcast_reply_shows_in_the_channel_too(sb, web, alice):
    parent = await web.chat_postMessage(channel="C0OPS", text="alert")
    await web.chat_postMessage(channel="C0OPS", text="recovered, for everyone", thread_ts=parent["ts"], reply_broadcast=True)
    assert "recovered, for everyone" in (await page(alice, sb, "/?c=C0OPS")).split('<aside id="thread"')[0]


async def test_a_modal_shows_only_to_whoever_it_was_opened_for(sb, web, alice, bob):
    envelope = sb.slash_command_envelope(text="register", user_id="U0BOB")
    view = {"type": "modal", "title": {"type": "plain_text", "text": "Bob's form"}, "blocks": []}
    await web.views_open(trigger_id=envelope["payload"]["trigger_id"], view=view)

    assert "Bob&#x27;s form" in await page(bob, sb)
    assert "Bob&#x27;s form" not in await page(alice, sb)


async def test_a_modal_error_shows_under_its_field_and_marks_it(sb, web, bob):
    envelope = sb.slash_command_envelope(user_id="U0BOB")
    view = {"type": "modal", "title": {"type": "plain_text", "text": "Form"}, "blocks": [
        {"type": "input", "block_id": "name", "label": {"type": "plain_text", "text": "Name"},
         "element": {"type": "plain_text_input", "action_id": "v"}}]}
    opened = (await web.views_open(trigger_id=envelope["payload"]["trigger_id"], view=view))["view"]
    sb.state.view_errors[opened["id"]] = {"name": "Name is <required>"}

    html = await page(bob, sb)
    field = html.split('<div class="input-block">', 1)[1].split("</div>", 2)
    assert 'aria-invalid="true"' in field[0]
    assert '<div class="error" role="alert">Name is &lt;required&gt;</div>' in html


async def test_the_app_home_shows_my_published_tab_and_my_messages(sb, web, bob):
    await web.views_publish(user_id="U0BOB", view={"type": "home", "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "Bob's home"}}]})
    await web.views_publish(user_id="U0ALICE", view={"type": "home", "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "Alice's home"}}]})
    await web.chat_postMessage(channel="D0BOB", text="a DM for bob")

    home = await page(bob, sb, "/?c=home")
    assert "Bob&#x27;s home" in home and "Alice" not in home
    assert '<span class="badge">1</span>' in sidebar(home)
    assert "a DM for bob" in await page(bob, sb, "/?c=home&tab=messages")


async def test_the_status_line_says_whether_the_bot_is_connected(sb, alice):
    html = await page(alice, sb)
    assert "Socket Mode: no bot connected" in html and "Rate limits: <b>off</b>" in html


async def test_the_stream_tells_an_open_page_that_something_changed(sb, web, alice):
    html = await page(alice, sb)
    since = html.split('data-since="', 1)[1].split('"', 1)[0]
    async with alice.get(sb.base_url + f"/sandbox/stream?since={since}") as stream:
        assert (await stream.content.readline()).startswith(b"retry:")
        await web.chat_postMessage(channel="C0OPS", text="news")
        while (line := await asyncio.wait_for(stream.content.readline(), 30)).strip() in (b"", b": keep-alive"):
            pass
    assert line.startswith(b"data: ")


async def test_a_command_from_a_shell_shows_on_the_page_even_without_a_bot(sb, alice):
    async with aiohttp.ClientSession() as shell:
        async with shell.post(sb.base_url + "/sandbox/command", data={"command": "/pulser", "text": "help"}) as resp:
            assert resp.status == 503  # no bot: nothing was run, but the command is shown as typed
    assert "/pulser help" in await page(alice, sb)


async def test_the_message_box_sends_only_slash_commands(sb, alice):
    async with alice.post(sb.base_url + "/sandbox/ui/command", data={"channel_id": "C0OPS", "message": "hello"}) as resp:
        html = await resp.text()
    assert "Only slash commands reach the bot from here" in html and sb.envelopes_sent == []

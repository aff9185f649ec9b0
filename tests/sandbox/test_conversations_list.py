"""The sandbox's conversations.list against the real slack_sdk client: Slack's response shape,
cursor paging, types and archived channels."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from sandbox import SlackSandbox

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(30)]


@pytest_asyncio.fixture
async def sb() -> AsyncIterator[SlackSandbox]:
    sandbox = SlackSandbox()
    await sandbox.start()
    yield sandbox
    await sandbox.stop()


@pytest_asyncio.fixture
async def web(sb: SlackSandbox) -> AsyncWebClient:
    return AsyncWebClient(token=SlackSandbox.BOT_TOKEN, base_url=sb.api_url)


async def test_a_channel_is_listed_in_slacks_shape(sb: SlackSandbox, web: AsyncWebClient) -> None:
    sb.add_channel("C0OPS", "ops")
    answer = await web.conversations_list()
    [channel] = answer["channels"]
    assert {"id": "C0OPS", "name": "ops", "is_channel": True, "is_private": False, "is_archived": False,
            "is_member": True, "name_normalized": "ops"}.items() <= channel.items()
    assert {"topic", "purpose", "created", "num_members"} <= channel.keys()
    assert answer["response_metadata"] == {"next_cursor": ""}


async def test_pages_follow_next_cursor_until_it_is_empty(sb: SlackSandbox, web: AsyncWebClient) -> None:
    for i in range(5):
        sb.add_channel(f"C0CH{i}", f"channel-{i}")
    seen, cursor, pages = [], None, 0
    while True:
        answer = await web.conversations_list(limit=2, cursor=cursor)
        pages += 1
        seen += [c["id"] for c in answer["channels"]]
        cursor = answer["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert pages == 3 and seen == [f"C0CH{i}" for i in range(5)]


async def test_private_channels_only_with_their_type_and_archived_ones_can_be_left_out(
    sb: SlackSandbox, web: AsyncWebClient
) -> None:
    sb.add_channel("C0PUB", "public")
    sb.add_channel("G0PRIV", "private", is_private=True)
    sb.state.add_channel("C0OLD", "old", is_archived=True)
    default = [c["id"] for c in (await web.conversations_list())["channels"]]
    both = [c["id"] for c in (await web.conversations_list(types="public_channel,private_channel", exclude_archived=True))["channels"]]
    assert default == ["C0PUB", "C0OLD"]
    assert both == ["C0PUB", "G0PRIV"]


@pytest.mark.parametrize("params, error", [({"limit": 0}, "invalid_limit"), ({"limit": 1001}, "invalid_limit"),
                                           ({"cursor": "not-a-cursor"}, "invalid_cursor"), ({"types": "dm"}, "invalid_types")])
async def test_bad_paging_arguments_get_slacks_error(web: AsyncWebClient, params: dict, error: str) -> None:
    with pytest.raises(SlackApiError) as info:
        await web.conversations_list(**params)
    assert info.value.response["error"] == error

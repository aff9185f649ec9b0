"""The sandbox enforces Slack's published rate limits, and refuses the way Slack does.

What goes over the wire is checked with the real slack_sdk AsyncWebClient (it raises
SlackApiError with the 429 and its Retry-After header, as against Slack). The limiter's clock is
a stopped clock the test moves, so no test sleeps and a loaded machine cannot hand a token back
between two calls. One behaviour per test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from sandbox import SlackSandbox
from sandbox.rate_limits import METHOD_LIMITS, POST_MESSAGE_PER_CHANNEL, TIER_3, RateLimiter
from tests.conftest import StoppedClock

pytestmark = pytest.mark.timeout(30)

BURST = POST_MESSAGE_PER_CHANNEL.burst



@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """slack_sdk picks up proxy variables (and ignores NO_PROXY); the sandbox is on loopback."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(var, "")


@pytest.fixture
def clock() -> StoppedClock:
    return StoppedClock()


@pytest_asyncio.fixture
async def sb(clock: StoppedClock) -> AsyncIterator[SlackSandbox]:
    sandbox = SlackSandbox(rate_limits=RateLimiter(clock=clock))
    sandbox.add_channel("C0OPS", "ops")
    await sandbox.start()
    yield sandbox
    await sandbox.stop()


@pytest_asyncio.fixture
async def web(sb: SlackSandbox) -> AsyncWebClient:
    # slack_sdk's default client retries dropped connections only, so a 429 reaches the test.
    return AsyncWebClient(token=SlackSandbox.BOT_TOKEN, base_url=sb.api_url)


async def post(web: AsyncWebClient, channel: str = "C0OPS", times: int = 1) -> None:
    for i in range(times):
        await web.chat_postMessage(channel=channel, text=f"message {i}")


async def refusal(call) -> SlackApiError:
    with pytest.raises(SlackApiError) as err:
        await call
    return err.value


async def test_a_channel_takes_a_burst_of_posts_then_answers_429_ratelimited_with_retry_after(sb, web):
    await post(web, times=BURST)

    err = await refusal(web.chat_postMessage(channel="C0OPS", text="one too many"))

    assert err.response.status_code == 429
    assert err.response.data == {"ok": False, "error": "ratelimited"}
    assert err.response.headers["Retry-After"] == "1"
    assert len(sb.messages["C0OPS"]) == BURST


async def test_a_channel_name_and_its_id_share_one_bucket(sb, web):
    await post(web, channel="#ops", times=BURST)

    err = await refusal(web.chat_postMessage(channel="C0OPS", text="same channel"))

    assert err.response.status_code == 429


async def test_another_channel_is_not_held_by_a_full_one(sb, web):
    await post(web, channel="C0OPS", times=BURST)
    await refusal(web.chat_postMessage(channel="C0OPS", text="held"))

    await post(web, channel="C0OTHER", times=BURST)

    assert len(sb.messages["C0OTHER"]) == BURST


async def test_a_token_comes_back_each_second(sb, web, clock):
    await post(web, times=BURST)
    clock.advance(0.5)
    half_way = await refusal(web.chat_postMessage(channel="C0OPS", text="too early"))

    clock.advance(0.5)
    await post(web)
    again = await refusal(web.chat_postMessage(channel="C0OPS", text="only one came back"))

    assert half_way.response.headers["Retry-After"] == "1"  # whole seconds, never 0
    assert again.response.status_code == 429
    assert len(sb.messages["C0OPS"]) == BURST + 1


async def test_a_refused_post_costs_no_token(sb, web, clock):
    await post(web, times=BURST)
    for _ in range(5):
        await refusal(web.chat_postMessage(channel="C0OPS", text="refused"))

    clock.advance(1.0)
    await post(web)

    assert len(sb.messages["C0OPS"]) == BURST + 1


async def test_posts_across_channels_meet_the_workspace_wide_limit(sb, web):
    limiter = sb.rate_limiter
    allowed = limiter.workspace.burst
    channels = [f"C0CH{i:03d}" for i in range(allowed // BURST + 1)]
    sent = 0
    for channel in channels:
        for _ in range(BURST):
            if sent == allowed:
                break
            await post(web, channel=channel)
            sent += 1

    err = await refusal(web.chat_postMessage(channel="C0FRESH", text="a channel with tokens left"))

    assert err.response.status_code == 429
    assert limiter.refused_by_channel == {"C0FRESH": 1}


async def test_chat_update_has_tier_3s_budget_across_channels(sb, web, clock):
    posted = []
    for channel in ("C0A", "C0B", "C0C"):
        posted.append((channel, (await web.chat_postMessage(channel=channel, text="v1"))["ts"]))
    for i in range(TIER_3.burst):
        channel, ts = posted[i % len(posted)]
        await web.chat_update(channel=channel, ts=ts, text=f"v{i + 2}")

    err = await refusal(web.chat_update(channel="C0A", ts=posted[0][1], text="over budget"))
    clock.advance(int(err.response.headers["Retry-After"]))
    await web.chat_update(channel="C0A", ts=posted[0][1], text="a token came back")

    assert METHOD_LIMITS["chat.update"] is TIER_3
    assert err.response.status_code == 429
    assert err.response.headers["Retry-After"] == "2"  # 50 a minute: one token every 1.2 s
    assert sb.messages["C0A"][0]["text"] == "a token came back"


async def test_refusals_are_counted_per_method_and_per_channel_in_the_state_and_on_the_page(sb, web):
    await post(web, times=BURST)
    for _ in range(2):
        await refusal(web.chat_postMessage(channel="C0OPS", text="held"))
    [(channel, ts)] = [("C0OPS", m["ts"]) for m in sb.messages["C0OPS"][:1]]
    for i in range(TIER_3.burst):
        await web.chat_update(channel=channel, ts=ts, text=str(i))
    await refusal(web.chat_update(channel=channel, ts=ts, text="held"))

    async with aiohttp.ClientSession() as http:
        async with http.get(sb.base_url + "/sandbox/state") as resp:
            state = await resp.json()
        async with http.get(sb.base_url + "/") as resp:
            page = await resp.text()

    assert state["rate_limits"] == {
        "enabled": True,
        "refused_total": 3,
        "refused": {"chat.postMessage": 2, "chat.update": 1},
        "refused_by_channel": {"C0OPS": 2},
    }
    assert "refused (429): <b>3</b>" in page
    assert "chat.postMessage 2 (C0OPS 2)" in page and "chat.update 1" in page


async def test_without_rate_limits_nothing_is_ever_refused():
    async with SlackSandbox(rate_limits=False) as sb:
        web = AsyncWebClient(token=SlackSandbox.BOT_TOKEN, base_url=sb.api_url)
        await post(web, times=3 * BURST)
        posted = (await web.chat_postMessage(channel="C0OPS", text="v1"))["ts"]
        for i in range(TIER_3.burst * 2):
            await web.chat_update(channel="C0OPS", ts=posted, text=str(i))

        assert len(sb.messages["C0OPS"]) == 3 * BURST + 1
        assert sb.rate_limiter is None
        assert sb.snapshot()["rate_limits"] == {"enabled": False, "refused_total": 0, "refused": {}, "refused_by_channel": {}}


async def test_fail_next_wins_over_the_rate_limit_and_costs_no_token(sb, web):
    sb.fail_next("chat.postMessage", status=500)
    injected = await refusal(web.chat_postMessage(channel="C0OPS", text="injected"))

    await post(web, times=BURST)
    sb.fail_next("chat.postMessage", status=200, error="channel_not_found")
    over_the_limit = await refusal(web.chat_postMessage(channel="C0OPS", text="held, but injected first"))

    assert (injected.response.status_code, injected.response["error"]) == (500, "internal_error")
    assert (over_the_limit.response.status_code, over_the_limit.response["error"]) == (200, "channel_not_found")
    assert len(sb.messages["C0OPS"]) == BURST
    assert sb.rate_limiter.refused_total == 0


# ---- the limiter alone -------------------------------------------------------------------------


def test_api_test_and_methods_the_table_does_not_name_are_never_refused(clock):
    limiter = RateLimiter(clock=clock)

    answers = [limiter.check(method) for method in ("api.test", "team.info") for _ in range(1000)]

    assert set(answers) == {0}


def test_a_reconnecting_socket_mode_client_gets_ten_connections_then_one_every_5_seconds(clock):
    limiter = RateLimiter(clock=clock)

    first = [limiter.check("apps.connections.open") for _ in range(10)]
    eleventh = limiter.check("apps.connections.open")
    clock.advance(5)
    after_5_seconds = limiter.check("apps.connections.open")

    assert first == [0] * 10
    assert eleventh == 5
    assert after_5_seconds == 0


def test_conversations_list_is_tier_2(clock):
    limiter = RateLimiter(clock=clock)

    answers = [limiter.check("conversations.list") for _ in range(6)]

    assert answers == [0, 0, 0, 0, 0, 3]  # burst 5, then 20 a minute: a token every 3 s


def test_a_bucket_never_holds_more_than_its_burst_however_long_it_rested(clock):
    limiter = RateLimiter(clock=clock)
    limiter.check("chat.postMessage", "C0OPS")
    clock.advance(3600)

    answers = [limiter.check("chat.postMessage", "C0OPS") for _ in range(BURST + 1)]

    assert answers == [0] * BURST + [1]

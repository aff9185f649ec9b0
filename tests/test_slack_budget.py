"""Pulser's budgets of Slack's rate limits: spent before each call, shared by every process on
one Postgres, pushed past Retry-After by a 429, and kept in memory while Postgres is away."""

from __future__ import annotations

import asyncpg
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from alerts.outbound.budget import OverBudget, SlackBudget, waiting_at_most
from alerts.outbound.paced_session import paced_session
from tests.conftest import StoppedClock

CHANNEL = "C0ALERTS"


async def test_two_processes_on_one_database_share_a_channels_budget(pool):
    first, second = SlackBudget(pool), SlackBudget(pool)  # each process has its own
    with waiting_at_most(0):
        await first.spend("chat.postMessage", CHANNEL)
        await second.spend("chat.postMessage", CHANNEL)
        await first.spend("chat.postMessage", CHANNEL)  # a burst of 3, together
        with pytest.raises(OverBudget) as refused:
            await second.spend("chat.postMessage", CHANNEL)
    assert 0 < refused.value.retry_after <= 1.0
    with waiting_at_most(0):
        await second.spend("chat.postMessage", "C0OTHER")  # another channel has its own budget


async def test_a_429_holds_that_budget_for_every_process_until_retry_after(pool):
    first, second = SlackBudget(pool), SlackBudget(pool)
    await first.penalize("chat.update", None, retry_after=30)
    with waiting_at_most(0), pytest.raises(OverBudget) as refused:
        await second.spend("chat.update", CHANNEL)
    assert 25 < refused.value.retry_after <= 30
    with waiting_at_most(0):
        await second.spend("views.open")  # other methods are not held


async def test_without_the_database_the_budget_is_kept_in_memory(database_url):
    pool = await asyncpg.create_pool(database_url, min_size=0, max_size=1)
    await pool.close()  # every query now fails as a database error would
    clock = StoppedClock()
    budget = SlackBudget(pool, clock=clock)
    with waiting_at_most(0):
        for _ in range(3):
            await budget.spend("chat.postMessage", CHANNEL)
        with pytest.raises(OverBudget):
            await budget.spend("chat.postMessage", CHANNEL)
        clock.advance(1.0)
        await budget.spend("chat.postMessage", CHANNEL)


async def test_pacing_off_lets_every_call_through(pool):
    budget = SlackBudget(pool, enabled=False)
    with waiting_at_most(0):
        for _ in range(20):
            await budget.spend("chat.postMessage", CHANNEL)


async def test_a_429_slack_sends_anyway_is_counted_and_honoured(pool, sandbox):
    sandbox.add_channel(CHANNEL, "ops-alerts")
    refused: list[str] = []
    budget = SlackBudget(pool)
    sandbox.fail_next("chat.update", status=429, retry_after=20)
    async with paced_session(budget, on_refused=refused.append) as session:
        client = AsyncWebClient(token="xoxb-test-bot", base_url=sandbox.api_url, session=session)
        posted = await client.chat_postMessage(channel=CHANNEL, text="first")
        with pytest.raises(SlackApiError):
            await client.chat_update(channel=CHANNEL, ts=posted["ts"], text="second")
        assert refused == ["chat.update"]
        with waiting_at_most(0), pytest.raises(OverBudget):
            await client.chat_update(channel=CHANNEL, ts=posted["ts"], text="third")

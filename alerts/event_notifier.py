"""Placeholder — being written (issue 6): posts and updates platform event messages."""

from __future__ import annotations

from typing import Awaitable, Callable

import asyncpg

from alerts.delivery import SlackDelivery


class EventNotifier:
    def __init__(
        self,
        pool: asyncpg.Pool,
        delivery: SlackDelivery,
        *,
        default_channel: str,
        listen: Callable[[], Awaitable[asyncpg.Connection]] | None = None,
    ):
        self.pool = pool
        self.delivery = delivery
        self.default_channel = default_channel

    def wake(self) -> None:
        pass

    def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

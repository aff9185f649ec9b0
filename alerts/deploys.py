"""Placeholder — being written (issue 6): deployable services, deploy requests, approval, triggers."""

from __future__ import annotations

import asyncpg

from alerts.platform_events import PlatformEvents


class Deploys:
    def __init__(
        self,
        pool: asyncpg.Pool,
        events: PlatformEvents,
        *,
        github_token: str | None,
        github_api_url: str,
        heroku_client: object,
        webhook_secret: str | None,
    ):
        self.pool = pool
        self.events = events

    async def close(self) -> None:
        pass

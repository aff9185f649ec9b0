"""A dead-man's switch for Pulser itself: ping an outside check (e.g. healthchecks.io) every minute
while every part of this process is up. If Pulser dies, hangs or loses a part, the pings stop and
the outside check alerts, through a path that does not depend on Pulser."""

from __future__ import annotations

from typing import Awaitable, Callable

import httpx
import structlog

from alerts.tls import client_context

log = structlog.get_logger(__name__)

INTERVAL_SECONDS = 60


class SelfPing:
    def __init__(self, url: str, healthy: Callable[[], Awaitable[bool]], *, on_outcome: Callable[[str], None] | None = None):
        self._url = url
        self._healthy = healthy
        self._on_outcome = on_outcome or (lambda outcome: None)
        self._client = httpx.AsyncClient(verify=client_context(), timeout=10, headers={"User-Agent": "pulser-self-ping"})

    async def run_once(self) -> str:
        """Ping if healthy; returns the outcome (sent, skipped, failed). Never raises."""
        if not await self._healthy():
            outcome = "skipped"
            log.warning("self_ping.skipped", reason="a part of Pulser is down")
        else:
            try:
                response = await self._client.get(self._url)
                response.raise_for_status()
                outcome = "sent"
            except httpx.HTTPError as exc:
                outcome = "failed"
                # The URL is a secret (it keeps the check green): name only the error.
                log.warning("self_ping.failed", error=type(exc).__name__)
        self._on_outcome(outcome)
        return outcome

    async def close(self) -> None:
        await self._client.aclose()

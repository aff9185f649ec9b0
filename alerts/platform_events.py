"""Placeholder — being written (issue 6): platform events recorded through the ledger."""

from __future__ import annotations

from typing import Callable

import asyncpg

from storage.envelopes import Envelope


class PlatformEvents:
    def __init__(self, pool: asyncpg.Pool, *, default_channel: str, on_change: Callable[[], None] | None = None):
        self.pool = pool
        self.default_channel = default_channel
        self._on_change = on_change or (lambda: None)

    async def process_envelope(self, envelope: Envelope) -> None:
        return None

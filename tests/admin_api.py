"""A `pulser sidecar` with the admin API open to the test's token, and an HTTP client that sends
it. Test modules of the `/api/*` routes import the two fixtures by name."""

from __future__ import annotations

from typing import AsyncIterator

import httpx
import pytest

from bot.metrics import Metrics
from bot.runtime import Runtime
from tests.conftest import make_settings

TOKEN = "t0ken-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def sidecar(database_url: str) -> AsyncIterator[Runtime]:
    runtime = Runtime(make_settings(DATABASE_URL=database_url, PULSER_ADMIN_TOKEN=TOKEN), "sidecar", metrics=Metrics("test"))
    await runtime.start()
    yield runtime
    await runtime.stop()


@pytest.fixture
async def http(sidecar: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sidecar.http_port}", headers=AUTH, timeout=10) as client:
        yield client

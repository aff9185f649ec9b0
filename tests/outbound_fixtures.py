"""Fixtures for the outbound channels (loaded by conftest's `pytest_plugins`): the HTTP stand-ins,
the HTTP client a channel sends with, and SMTP servers with a certificate made for the test run.

- `standins`: a started `OutboundStandins` (Discord, Teams, webhook receiver, GitHub, Twilio,
  PagerDuty) on a random local port, fresh per test.
- `outbound_http`: an httpx client with a 2 s timeout (the stand-ins' `delay_next` outlasts it).
- `smtp_ca`: a throwaway CA (trustme) for the whole run; `smtp_server(security)`: a started
  `SmtpStandin` ("starttls", "tls" or "none") whose certificate that CA signed.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, AsyncIterator, Awaitable, Callable

import httpx
import pytest

if TYPE_CHECKING:  # imported by the fixtures themselves: every test file loads this plugin
    import trustme

    from tests.outbound_standins import OutboundStandins, SmtpStandin

CLIENT_TIMEOUT = 2.0


@pytest.fixture
async def standins() -> AsyncIterator[OutboundStandins]:
    from tests.outbound_standins import OutboundStandins

    async with OutboundStandins() as running:
        yield running


@pytest.fixture
async def outbound_http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT, trust_env=False) as client:
        yield client


@pytest.fixture(scope="session")
def smtp_ca() -> trustme.CA:
    import trustme

    return trustme.CA()


@pytest.fixture
async def smtp_server(smtp_ca: trustme.CA) -> AsyncIterator[Callable[[str], Awaitable[SmtpStandin]]]:
    from tests.outbound_standins import SmtpStandin

    started: list[SmtpStandin] = []

    async def start(security: str = "starttls") -> SmtpStandin:
        context = None
        if security != "none":
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            smtp_ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        server = SmtpStandin(security, context)
        await server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()

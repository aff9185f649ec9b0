"""A `pulser sidecar` with every route open to the test's credentials (admin token, webhook token,
every source's signing secret), and how to sign any raw body the way each sender does, so hostile
bodies reach the parsers instead of stopping at a 401. Test modules import the fixtures by name."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from typing import AsyncIterator

import asyncpg
import httpx
import pytest

from bot.metrics import Metrics
from bot.runtime import Runtime
from tests.conftest import make_settings
from tests.webhook_senders import GITHUB_SECRET, SECRETS_ENV, SENTRY_SECRET, WEBHOOK_TOKEN

ADMIN_TOKEN = "t0ken-for-tests"
HEROKU_SECRET = "heroku-webhook-secret"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
# Small enough that a fuzzed body can cross it cheaply; the settings allow 1 KiB and up.
MAX_BODY_BYTES = 64 * 1024
# Long and incompressible: Postgres compresses a long repetitive string until it fits an index entry.
INCOMPRESSIBLE = base64.b64encode(hashlib.shake_256(b"pulser hostile input").digest(3000)).decode()

# Tables an HTTP request can write to; "nothing was stored" means none of their counts moved.
STORED_TABLES = (
    "envelopes", "heartbeats", "applications", "routing_rules", "silences", "inhibition_rules",
    "deploy_services", "event_routes", "platform_events", "audit_log",
)  # fmt: skip


@pytest.fixture
async def sidecar(database_url: str) -> AsyncIterator[Runtime]:
    settings = make_settings(
        DATABASE_URL=database_url,
        PULSER_ADMIN_TOKEN=ADMIN_TOKEN,
        HEROKU_WEBHOOK_SECRET=HEROKU_SECRET,
        PULSER_MAX_BODY_BYTES=str(MAX_BODY_BYTES),
        **SECRETS_ENV,
    )
    runtime = Runtime(settings, "sidecar", metrics=Metrics("test"))
    await runtime.start()
    # No Slack in a lone sidecar: an integration test would wait its whole 30 s for a message.
    runtime.integrations.tester.timeout = 1.0
    yield runtime
    await runtime.stop()


@pytest.fixture
async def http(sidecar: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sidecar.http_port}", timeout=10) as client:
        yield client


def signed(source: str, body: bytes, *, resource: str = "error", event: str = "workflow_run") -> dict[str, str]:
    """Headers that authenticate `body` for a webhook source, as its real sender would (Sentry's
    `resource` and GitHub's `event` say what the body claims to be)."""
    if source == "sentry":
        return {
            "Sentry-Hook-Resource": resource,
            "Sentry-Hook-Signature": hmac.new(SENTRY_SECRET.encode(), body, hashlib.sha256).hexdigest(),
            "Request-ID": uuid.uuid4().hex,
        }
    if source == "github":
        return {
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": "sha256=" + hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest(),
        }
    if source == "heroku":
        digest = hmac.new(HEROKU_SECRET.encode(), body, hashlib.sha256).digest()
        return {"Heroku-Webhook-Hmac-SHA256": base64.b64encode(digest).decode()}
    return {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}  # generic, alertmanager, /events


async def row_counts(pool: asyncpg.Pool) -> dict[str, int]:
    """How many rows each table a request could write holds."""
    return {table: await pool.fetchval(f"SELECT count(*) FROM {table}") for table in STORED_TABLES}  # noqa: S608

"""Integrations: is each webhook source set up and delivering, and does a delivery from it become
a Slack message? For `GET /api/integrations`, `POST /api/integrations/{source}/test` and the
App Home section with its Send test buttons.

A test is real end to end: a realistic sample, signed with the configured secret the way the
source signs, is POSTed to the sidecar's own `/webhooks/{source}` over HTTP, so it passes the
same verification, ledger, worker, pipeline, routing and Slack delivery as a real one; then the
tester watches the database until the incident's message is posted (or says where it stopped).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable, Mapping

import aiohttp
import asyncpg
import structlog

from alerts import integration_samples as samples
from alerts.sources import SOURCES
from storage import envelopes

log = structlog.get_logger(__name__)

ORDER = ("sentry", "alertmanager", "github", "generic", "heroku")
NAMES = {"sentry": "Sentry", "alertmanager": "Alertmanager", "github": "GitHub", "generic": "Generic webhook",
         "heroku": "Heroku"}
WINDOW = timedelta(hours=24)
POLL_SECONDS = 0.25


def required_variables(source: str) -> tuple[str, ...]:
    """The environment variable a source needs before any delivery is accepted (its signing
    secret or shared token; Sentry's legacy plugin's token is an alternative, not a need)."""
    return (SOURCES[source].SECRET_ENV,)


def missing_variables(source: str, secrets: Mapping[str, str | None]) -> list[str]:
    return [name for name in required_variables(source) if not secrets.get(name)]


async def integration_statuses(
    pool: asyncpg.Pool,
    *,
    secrets: Mapping[str, str | None],
    webhook_base_url: str,
    heroku_apps: list[str],
    refusals: Mapping[str, Mapping[str, Any]] | None = None,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """One entry per source: configured (and which variable is missing), the last delivery, the
    last error (a refusal or a failed processing, whichever is newer), deliveries in 24 hours."""
    now = now or datetime.now(timezone.utc)
    figures = await envelopes.source_figures(pool, list(ORDER), since=now - WINDOW)
    out = []
    for source in ORDER:
        missing = missing_variables(source, secrets)
        figure = figures.get(source) or {}
        last_error = _newest_error(figure.get("last_error"), (refusals or {}).get(source))
        why_not = not_testable_because(source, missing, heroku_apps)
        out.append({
            "source": source,
            "name": NAMES[source],
            "configured": not missing,
            "missing": missing,
            "webhook_url": f"{webhook_base_url.rstrip('/')}/webhooks/{source}",
            "last_delivery": figure.get("last_delivery"),
            "deliveries_24h": int(figure.get("deliveries") or 0),
            "failed_24h": int(figure.get("failed") or 0),
            "last_error": last_error,
            "testable": why_not is None,
            "not_testable_because": why_not,
        })
    return out


def not_testable_because(source: str, missing: list[str], heroku_apps: list[str]) -> str | None:
    if missing:
        return f"set {' and '.join(missing)}"
    if source == "heroku" and not heroku_apps:
        return "no Heroku app is monitored (MONITORED_APP_NAME, or /heroku-status config)"
    return None


def _newest_error(processing: Mapping | None, refusal: Mapping | None) -> dict | None:
    candidates = []
    if processing:
        candidates.append({"at": _as_datetime(processing.get("at")), "error": str(processing.get("error")), "kind": "processing"})
    if refusal:
        candidates.append({"at": _as_datetime(refusal.get("at")), "error": str(refusal.get("error")), "kind": "refused"})
    candidates = [c for c in candidates if c["at"] is not None]
    return max(candidates, key=lambda c: c["at"]) if candidates else None


def _as_datetime(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


# --- the test button ---------------------------------------------------------------------------------


class NotTestable(Exception):
    """The source cannot be tested as configured; `reason` says what to set."""

    def __init__(self, reason: str, *, configured: bool):
        super().__init__(reason)
        self.reason = reason
        self.configured = configured


@dataclass
class TestOutcome:
    source: str
    run_id: str
    delivery_status: int | None
    delivery_body: Any
    incident_id: int | None = None
    message: dict | None = None  # {"channel", "ts"}
    detail: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def became_message(self) -> bool:
        return self.message is not None

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "run_id": self.run_id,
            "delivery": {"status": self.delivery_status, "body": self.delivery_body},
            "incident_id": self.incident_id,
            "message": self.message,
            "became_message": self.became_message,
            "detail": self.detail,
        }


class IntegrationTester:
    """Sends one signed sample per test through the sidecar's HTTP endpoint and follows it."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        secrets: Callable[[], Mapping[str, str | None]],
        sidecar_url: Callable[[], str],
        heroku_apps: Callable[[], Awaitable[list[str]]],
        timeout: float = 30.0,
    ):
        self.pool = pool
        self.secrets = secrets
        self.sidecar_url = sidecar_url
        self.heroku_apps = heroku_apps
        self.timeout = timeout

    async def run(self, source: str, *, now: datetime | None = None) -> TestOutcome:
        """Raises KeyError for an unknown source and NotTestable when it is not set up."""
        if source not in ORDER:
            raise KeyError(source)
        secrets = self.secrets()
        missing = missing_variables(source, secrets)
        apps = await self.heroku_apps() if source == "heroku" else []
        if why := not_testable_because(source, missing, apps):
            raise NotTestable(why, configured=not missing)
        now = now or datetime.now(timezone.utc)
        run_id = uuid.uuid4().hex[:12]
        secret = secrets[SOURCES[source].SECRET_ENV] or ""
        if source == "heroku":
            *before, sample = samples.heroku_samples(secret, run_id, now, app=apps[0])
        else:
            before, sample = [], samples.BUILDERS[source](secret, run_id, now)
        for earlier in before:  # what the source would have sent first (Heroku: the dyno coming up)
            status, body = await self._post(earlier)
            if status is None or status >= 300 or not await self._processed(earlier):
                outcome = TestOutcome(source, run_id, status, body)
                outcome.detail = _refused_detail(status, body) if status is None or status >= 300 else (
                    "Its first delivery was accepted but not processed in time.")
                return outcome
        status, body = await self._post(sample)
        outcome = TestOutcome(source, run_id, status, body)
        if status is None or status >= 300:
            outcome.detail = _refused_detail(status, body)
            return outcome
        await self._follow(outcome, sent_at=now, heroku_app=apps[0] if apps else None)
        log.info("integration.tested", source=source, run_id=run_id, became_message=outcome.became_message)
        return outcome

    async def _post(self, sample: samples.Sample) -> tuple[int | None, Any]:
        url = f"{self.sidecar_url().rstrip('/')}/webhooks/{sample.source}"
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
                async with session.post(url, data=sample.body, headers=sample.headers) as response:
                    try:
                        body = await response.json(content_type=None)
                    except ValueError:
                        body = (await response.text())[:500]
                    return response.status, body
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            return None, f"could not reach the sidecar at {url}: {type(exc).__name__}"

    async def _processed(self, sample: samples.Sample) -> bool:
        """Wait until the ledger has processed every delivery of the test so far."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while loop.time() < deadline:
            pending = await self.pool.fetchval(
                "SELECT count(*) FILTER (WHERE status <> 'processed') FROM envelopes WHERE source = $1 AND payload::text LIKE $2",
                sample.source, f"%{sample.run_id}%",
            )
            if pending == 0:
                return True
            await asyncio.sleep(POLL_SECONDS)
        return False

    async def _follow(self, outcome: TestOutcome, *, sent_at: datetime, heroku_app: str | None) -> None:
        """Watch the database until the sample's incident has a posted message, or time runs out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        found: dict | None = None
        while True:
            found = await _find_incident(self.pool, outcome, sent_at=sent_at, heroku_app=heroku_app)
            if found and found["slack_ts"]:
                outcome.incident_id = found["id"]
                outcome.message = {"channel": found["slack_channel"], "ts": found["slack_ts"]}
                outcome.detail = f"It became incident #{found['id']}, posted in channel {found['slack_channel']}."
                return
            if found and (found["suppressed_by"] or found["failed"]):
                break
            if loop.time() >= deadline:
                break
            await asyncio.sleep(POLL_SECONDS)
        if found is None:
            ledger = await self.pool.fetchrow(
                "SELECT status, last_error FROM envelopes WHERE source = $1 AND payload::text LIKE $2 ORDER BY id DESC LIMIT 1",
                outcome.source, f"%{outcome.run_id}%",
            )
            if ledger is None:
                outcome.detail = "The sidecar accepted it, but it is not in the ledger."
            elif ledger["status"] == "processed":
                outcome.detail = "It was received and processed, but it opened no incident (no alert in it, or Heroku detection found nothing new)."
            else:
                error = f": {ledger['last_error']}" if ledger["last_error"] else ""
                outcome.detail = f"It was received but not processed yet (ledger status {ledger['status']}{error})."
            return
        outcome.incident_id = found["id"]
        if found["suppressed_by"]:
            outcome.detail = f"It became incident #{found['id']}, held back from Slack by {found['suppressed_by']}."
        elif found["failed"]:
            outcome.detail = f"It became incident #{found['id']}, but Slack refused its message: {found['last_error']}."
        elif found["message_id"] is None:
            outcome.detail = f"It became incident #{found['id']}, but no route sent it to a channel."
        else:
            error = f" (last try: {found['last_error']})" if found["last_error"] else ""
            outcome.detail = f"It became incident #{found['id']}, but its message was not posted within {self.timeout:.0f} s{error}."


async def _find_incident(pool: asyncpg.Pool, outcome: TestOutcome, *, sent_at: datetime, heroku_app: str | None) -> dict | None:
    """The sample's incident and its first routed message: found by the run id in its alert, or
    (Heroku, whose alert Pulser writes itself) the newest incident of the app since the test."""
    row = await pool.fetchrow(
        """
        SELECT i.id, i.suppressed_by, m.id AS message_id, m.slack_channel, m.slack_ts, m.failed, m.last_error
          FROM incidents i
          LEFT JOIN LATERAL (SELECT * FROM incident_messages m WHERE m.incident_id = i.id AND m.escalation_of IS NULL
                              ORDER BY m.slack_ts IS NULL, m.id LIMIT 1) m ON true
         WHERE i.source = $1 AND i.created_at >= $2::timestamptz - interval '1 minute'
           AND (i.last_alert::text LIKE $3 OR ($4::text IS NOT NULL AND i.labels->>'app' = $4))
         ORDER BY i.id DESC LIMIT 1
        """,
        outcome.source,
        sent_at,
        f"%{outcome.run_id}%",
        heroku_app,
    )
    return dict(row) if row else None


def _refused_detail(status: int | None, body: Any) -> str:
    if status is None:
        return str(body)
    if isinstance(body, dict):
        detail = body.get("detail")
        return f"The sidecar refused it: {status} {body.get('error', '')}" + (f" — {detail}" if detail else "")
    return f"The sidecar refused it: {status}"


class Integrations:
    """What the API, the Slack handlers and App Home ask about integrations, with the process's
    own configuration bound in: the secrets, where senders reach the sidecar (`public_url`), where
    this process reaches it itself (`sidecar_url`), the monitored Heroku apps, and the refusals
    this process's sidecar saw."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        secrets: Callable[[], Mapping[str, str | None]],
        public_url: Callable[[], str],
        sidecar_url: Callable[[], str],
        heroku_apps: Callable[[], Awaitable[list[str]]],
        refusals: dict | None = None,
        timeout: float = 30.0,
    ):
        self.pool = pool
        self.secrets = secrets
        self.public_url = public_url
        self.heroku_apps = heroku_apps
        self.refusals = {} if refusals is None else refusals
        self.tester = IntegrationTester(pool, secrets=secrets, sidecar_url=sidecar_url, heroku_apps=heroku_apps, timeout=timeout)

    async def statuses(self, *, now: datetime | None = None) -> list[dict[str, Any]]:
        return await integration_statuses(
            self.pool, secrets=self.secrets(), webhook_base_url=self.public_url(), heroku_apps=await self.heroku_apps(),
            refusals=self.refusals, now=now,
        )

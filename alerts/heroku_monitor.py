"""Heroku monitoring as a service: settings, observations → alerts, polls within the rate budget,
webhook events, live status for `/heroku-status`, and rollbacks.

Every observation (a poll of one app, or one webhook event) is applied in one transaction: lock
the app's row, run `heroku_detection.detect` against the stored state, save the new state and
ingest the alerts into the pipeline — so a crash between "seen" and "alerted" can neither lose nor
repeat an alert, and a change seen by both the webhook and the poll alerts once.

Config-var values never leave the API client: it hands over sha256 digests, which are keyed here
with HMAC(HEROKU_API_KEY) before they are stored, so a short value (DEBUG=true) cannot be guessed
back from the database. When the key changes the config part is re-baselined silently.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Callable, Iterable

import asyncpg
import structlog

from alerts.heroku_detection import AppState, Observation, detect
from alerts.pipeline import AlertPipeline, IngestResult
from alerts.sources import heroku as heroku_source
from alerts.sources.heroku_api import HerokuClient, HerokuError
from storage import audit, envelopes, heroku, incidents, notifications, rollbacks
from storage.envelopes import Envelope

log = structlog.get_logger(__name__)

PARTS = ("dynos", "releases", "config", "addons")
APP_NAME = re.compile(r"^[a-z][a-z0-9-]{1,29}$")
CHANNEL = re.compile(r"^(#[a-z0-9][a-z0-9_\-]{0,79}|[CG][A-Z0-9]{2,})$")


class SettingsError(ValueError):
    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class HerokuSettings:
    apps: tuple[str, ...]
    channel: str
    interval_minutes: int
    updated_by: str | None = None
    updated_at: datetime | None = None


def validate_settings(apps: str | Iterable[str], channel: str, interval: str | int) -> HerokuSettings:
    """The same checks as the environment's (MONITORED_APP_NAME, SLACK_CHANNEL, CHECK_INTERVAL_MINUTES),
    with one message per bad field for the modal."""
    errors: dict[str, str] = {}
    names = [a.strip() for a in (apps.replace("\n", ",").split(",") if isinstance(apps, str) else apps) if a.strip()]
    bad = [n for n in names if not APP_NAME.match(n)]
    if bad:
        errors["apps"] = f"not a Heroku app name: {', '.join(bad[:3])} (lowercase letters, digits, dashes; 2–30 characters)"
    elif len(names) > 200:
        errors["apps"] = "at most 200 apps"
    channel = (channel or "").strip()
    if not CHANNEL.match(channel):
        errors["channel"] = "a channel name like #ops-alerts or a channel ID like C012ABCDEF"
    try:
        minutes = int(str(interval).strip())
        if not 1 <= minutes <= 60:
            raise ValueError
    except ValueError:
        errors["interval_minutes"] = "a whole number of minutes from 1 to 60"
        minutes = 0
    if errors:
        raise SettingsError(errors)
    return HerokuSettings(tuple(dict.fromkeys(names)), channel, minutes)


@dataclass
class PollStatus:
    last_cycle_at: datetime | None = None
    last_success_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    errors_by_app: dict[str, str] = field(default_factory=dict)
    requests_last_cycle: int = 0


UNDER_WAY = "A rollback of this deploy is already under way; its outcome will show on the message."


@dataclass(frozen=True)
class RollbackResult:
    ok: bool
    text: str  # one line for the person who clicked


class HerokuMonitor:
    def __init__(
        self,
        pool: asyncpg.Pool,
        client: HerokuClient,
        pipeline: AlertPipeline,
        *,
        first_settings: HerokuSettings,
        api_key: str | None,
        on_settings_changed: Callable[[], None] | None = None,
        on_rollback: Callable[[str], None] | None = None,
    ):
        self.pool = pool
        self.client = client
        self.pipeline = pipeline
        self.first_settings = first_settings
        self._digest_key = (api_key or "pulser-heroku").encode()
        self.key_id = hashlib.sha256(b"pulser-config-key:" + self._digest_key).hexdigest()[:12]
        self._on_settings_changed = on_settings_changed or (lambda: None)
        self._on_rollback = on_rollback or (lambda outcome: None)
        self.status = PollStatus()

    # --- settings --------------------------------------------------------------------------------

    async def settings(self) -> HerokuSettings:
        row = await heroku.ensure_settings(
            self.pool,
            apps=self.first_settings.apps,
            channel=self.first_settings.channel,
            interval_minutes=self.first_settings.interval_minutes,
        )
        return _settings(row)

    async def save_settings(self, new: HerokuSettings, *, user: str) -> HerokuSettings:
        old = await self.settings()
        async with self.pool.acquire() as conn, conn.transaction():
            row = await heroku.save_settings(
                conn, apps=new.apps, channel=new.channel, interval_minutes=new.interval_minutes, updated_by=user
            )
            await heroku.release_cycle(conn)  # the next poller tick polls at once, with these settings
            await audit.record_action(
                conn, actor=user, action="heroku.settings", target_type="heroku_settings", target_id="1",
                details={
                    "apps": {"from": list(old.apps), "to": list(new.apps)},
                    "channel": {"from": old.channel, "to": new.channel},
                    "interval_minutes": {"from": old.interval_minutes, "to": new.interval_minutes},
                },
            )
        log.info("heroku.settings_changed", apps=list(new.apps), channel=new.channel, interval=new.interval_minutes, by=user)
        self._on_settings_changed()
        return _settings(row)

    @property
    def configured(self) -> bool:
        return self.client.configured

    async def activity(self) -> tuple[bool, str | None]:
        """(ACTIVE?, why not): no API key, or no apps to watch."""
        if not self.client.configured:
            return False, "HEROKU_API_KEY is not set"
        if not (await self.settings()).apps:
            return False, "no apps to monitor: set MONITORED_APP_NAME or use /heroku-status config"
        return True, None

    # --- observations ----------------------------------------------------------------------------

    async def observe(self, obs: Observation, *, polled: bool, envelope_pk: int | None = None) -> list[IngestResult]:
        """Detect and alert for one observation, in one transaction with the state it changes."""
        channel = (await self.settings()).channel
        if obs.config_digest is not None:
            obs = replace(obs, config_digest={name: self._keyed(d) for name, d in obs.config_digest.items()})
        async with self.pool.acquire() as conn, conn.transaction():
            row = await heroku.lock_app_state(conn, obs.app)
            state = AppState.from_json(row["state"]) if row else None
            if state is not None and obs.config_digest is not None and row["config_key_id"] != self.key_id:
                # Digests made with another key: compare nothing, baseline again (no alert).
                state = replace(state, config_digest={}, observed_parts=[p for p in state.observed_parts if p != "config"])
            new_state, alerts = detect(state, obs)
            await heroku.save_app_state(
                conn,
                obs.app,
                state=new_state.to_json(),
                last_release_version=new_state.release_version,
                dynos=new_state.dynos,
                config_hash=_config_hash(new_state.config_digest),
                config_key_id=self.key_id if obs.config_digest is not None else (row or {}).get("config_key_id"),
                addons=new_state.addons,
                polled_at=obs.observed_at if polled else None,
            )
            results = [
                await self.pipeline.ingest_in(conn, alert, now=obs.observed_at, default_channel=channel) for alert in alerts
            ]
            if envelope_pk is not None:
                await envelopes.mark_processed(conn, envelope_pk)
        self.pipeline.after_commit(results)
        if alerts:
            log.info("heroku.detected", app=obs.app, alerts=[a.fingerprint for a in alerts], polled=polled)
        return results

    async def process_webhook(self, envelope: Envelope) -> bool:
        """The ledger worker's processor for `heroku` deliveries: the same detection as a poll.
        True when the row was marked processed with the state it changed."""
        obs = heroku_source.observation_from_event(envelope.payload, envelope.received_at)
        if obs is None:
            return False
        if obs.app not in (await self.settings()).apps:
            log.info("heroku.webhook_for_unmonitored_app", app=obs.app)
            return False
        await self.observe(obs, polled=False, envelope_pk=envelope.id)
        return True

    async def poll_app(self, app: str, parts: Iterable[str], *, now: datetime | None = None) -> Observation:
        """Fetch the given parts of one app (each costs one request) into an Observation."""
        parts = set(parts)
        observed: dict = {}
        if "dynos" in parts:
            observed["dynos"] = await self.client.dynos(app)
            if await self._fewer_dynos_than_before(app, observed["dynos"]):
                # Crashed away, or scaled down on purpose? Only the formation can tell; it costs a
                # request, so it is asked only when a process type shrank.
                formation = await self.client.formation(app)
                observed["formation"] = {str(f["type"]): int(f["quantity"]) for f in formation}
        if "releases" in parts:
            observed["releases"] = await self.client.releases(app, newest=10)
        if "config" in parts:
            observed["config_digest"] = await self.client.config_var_names_and_digest(app)
        if "addons" in parts:
            observed["addons"] = await self.client.addons(app)
        return Observation(app=app, observed_at=now or datetime.now(timezone.utc), **observed)

    async def _fewer_dynos_than_before(self, app: str, dynos: list[dict]) -> bool:
        row = (await heroku.app_states(self.pool, [app])).get(app)
        if row is None:
            return False
        before = AppState.from_json(row["state"]).up_by_type
        now: dict[str, int] = {}
        for dyno in dynos:
            now[str(dyno.get("type"))] = now.get(str(dyno.get("type")), 0) + 1
        return any(now.get(kind, 0) < count for kind, count in before.items())

    def _keyed(self, digest: str) -> str:
        return hmac.new(self._digest_key, digest.encode(), hashlib.sha256).hexdigest()

    # --- status and rollback -----------------------------------------------------------------------

    async def app_summary(self, app: str) -> dict:
        """Live: dynos by type and state, the current release, add-ons; plus what Pulser last saw."""
        dynos = await self.client.dynos(app)
        releases = await self.client.releases(app, newest=5)
        addons = await self.client.addons(app)
        states = await heroku.app_states(self.pool, [app])
        by_type: dict[str, dict[str, int]] = {}
        for dyno in dynos:
            counts = by_type.setdefault(str(dyno.get("type")), {})
            counts[str(dyno.get("state"))] = counts.get(str(dyno.get("state")), 0) + 1
        current = next((r for r in releases if r.get("current")), releases[0] if releases else None)
        return {
            "app": app,
            "dynos": by_type,
            "release": current,
            "addons": [
                {"name": a.get("name"), "service": (a.get("addon_service") or {}).get("name"), "plan": (a.get("plan") or {}).get("name"), "state": a.get("state")}
                for a in addons
            ],
            "last_poll_at": states.get(app, {}).get("last_poll_at"),
            "last_error": self.status.errors_by_app.get(app),
        }

    async def rollback(self, incident_id: int, app: str, release_id: str, version: int, *, user: str) -> RollbackResult:
        """Roll `app` back to release `release_id` (v`version`), and say so on the deploy message.

        At most one attempt per incident runs at a time in all processes together, and a deploy
        rolled back once is not rolled back again: a double click, or two people clicking on two
        replicas, creates one Heroku release."""
        async with rollbacks.claim(self.pool, incident_id) as conn:
            if conn is None:
                log.info("heroku.rollback_already_running", app=app, incident_id=incident_id, by=user)
                return RollbackResult(False, UNDER_WAY)
            if done := await rollbacks.last_success(conn, incident_id):
                by, at = done
                log.info("heroku.rollback_already_done", app=app, incident_id=incident_id, by=user)
                return RollbackResult(
                    False, f"{app} was already rolled back to v{version} by <@{by}> at {at:%Y-%m-%d %H:%M} UTC; nothing was done."
                )
            try:
                new = await self.client.rollback(app, release_id)
            except HerokuError as exc:
                result = RollbackResult(False, f":x: Rollback of {app} to v{version} failed: {exc}")
                outcome = "failed"
            else:
                result = RollbackResult(
                    True, f":rewind: Rolled back {app} to v{version} by <@{user}>: new release v{new.get('version')} ({new.get('status')})"
                )
                outcome = "ok"
            self._on_rollback(outcome)
            # The note and the audit entry commit together with letting go of the claim, so the
            # next attempt sees this one's outcome.
            await heroku.set_incident_note(conn, incident_id, result.text)
            await incidents.render_now(conn, incident_id, now=datetime.now(timezone.utc))
            await notifications.announce(conn)
            await audit.record_action(
                conn, actor=user, action="heroku.rollback", target_type="incident", target_id=incident_id,
                details={"app": app, "to_release": release_id, "to_version": version, "outcome": outcome, "message": result.text},
            )
        log.warning("heroku.rollback", app=app, to_version=version, outcome=outcome, by=user)
        self.pipeline.notify_change()
        return result


def _settings(row: dict) -> HerokuSettings:
    return HerokuSettings(
        apps=tuple(row["apps"]), channel=row["channel"], interval_minutes=row["interval_minutes"],
        updated_by=row.get("updated_by"), updated_at=row.get("updated_at"),
    )


def _config_hash(digests: dict[str, str]) -> str | None:
    if not digests:
        return None
    joined = "\n".join(f"{name}={digests[name]}" for name in sorted(digests))
    return hashlib.sha256(joined.encode()).hexdigest()

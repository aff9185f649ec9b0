"""The incident sweep: escalations due, quiet incidents to auto-close, snoozes that ran out,
held-back incidents whose silence ended or whose inhibiting incident resolved, and the incidents of
heartbeat apps paused or deleted since they fired. Replicas running the same sweep never act twice:
each step claims its rows with SKIP LOCKED, or goes through the pipeline, which locks the incident's
key and finds it resolved already."""

from __future__ import annotations

from datetime import datetime, timezone

import structlog

from alerts.heartbeat_incidents import resolve_unwatched
from alerts.incident_actions import IncidentActions
from alerts.pipeline import AlertPipeline
from storage.database import DATABASE_ERRORS

log = structlog.get_logger(__name__)

INTERVAL_SECONDS = 15


class IncidentSweep:
    def __init__(self, actions: IncidentActions, pipeline: AlertPipeline):
        self.actions = actions
        self.pipeline = pipeline
        self.last_run: datetime | None = None

    async def run_once(self, *, now: datetime | None = None) -> dict[str, int]:
        now = now or datetime.now(timezone.utc)
        try:
            done = await self.actions.sweep(now=now)
            done["released"] = await self.pipeline.release_suppressed(now=now)
            done["unwatched"] = await resolve_unwatched(self.pipeline, now=now)
        except DATABASE_ERRORS as exc:
            log.warning("incident_sweep.database_unavailable", error=f"{type(exc).__name__}: {exc}")
            return {}
        self.last_run = now
        if any(done.values()):
            log.info("incident_sweep.done", **done)
        return done

"""Keeps the database in step with the config file (PULSER_CONFIG): applied at start, on SIGHUP
and when the file changes (its mtime, size and inode polled every couple of seconds: one stat()
call, no watcher thread or extra dependency).

A file that does not check, or whose apply fails, changes nothing: the previous state stays, and
the reason goes to the log, to /health (component `config`, `degraded`) and once per distinct
problem to Slack's default channel. Channel names in the file (#ops-deploy) become channel IDs
where Slack knows them, as they do when saved from Slack or the API. `${VAR}` in outbound channel
settings is filled from this process's environment at every apply: changing a secret is changing
the variable and sending SIGHUP (or restarting).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Awaitable, Callable

import asyncpg
import structlog

from alerts.channels import ChannelResolver
from alerts.config_file import ConfigInvalid, ConfigSpec, KnownNames, check_text
from storage import managed_config

log = structlog.get_logger(__name__)

Notify = Callable[[str], Awaitable[None]]
POLL_SECONDS = 2.0
SHOWN_ERRORS = 10


class ConfigSync:
    def __init__(
        self,
        pool: asyncpg.Pool,
        path: Path,
        *,
        channels: ChannelResolver | None = None,
        notify: Notify | None = None,
        poll_seconds: float = POLL_SECONDS,
    ):
        self.pool = pool
        self.path = path
        self.channels = channels or ChannelResolver()
        self.notify = notify
        self.poll_seconds = poll_seconds
        self.applied_at: datetime | None = None
        self.summary: str | None = None
        self.errors: list[str] = []
        self._seen: tuple | None = None
        self._notified: tuple[str, ...] | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task | None = None

    # --- applying --------------------------------------------------------------------------------

    async def apply(self, reason: str) -> bool:
        """Check and apply the file; True when the database now matches it."""
        async with self._lock:
            self._seen = self._stamp()
            spec = None
            try:
                text = self.path.read_text(encoding="utf-8")
                known = KnownNames(**await managed_config.known_names(self.pool))
                spec = await self._resolved(check_text(text, env=os.environ, known=known))
                result = await managed_config.apply(self.pool, spec, source=self.path.name)
            except ConfigInvalid as exc:
                return await self._failed(reason, [str(e) for e in exc.errors])
            except managed_config.ApplyRefused as exc:  # the database as it stands cannot take the file
                assert spec is not None
                return await self._failed(reason, [str(spec.error_at(loc, message)) for loc, message in exc.problems])
            except (OSError, UnicodeDecodeError) as exc:
                return await self._failed(reason, [f"cannot read {self.path}: {type(exc).__name__}: {exc}"])
            except Exception as exc:  # the database refused: the transaction rolled back, nothing changed
                log.exception("config.apply_error", path=str(self.path), reason=reason)
                return await self._failed(reason, [f"could not apply: {type(exc).__name__}"])
            self.applied_at = datetime.now(timezone.utc)
            self.summary = spec.summary()
            self.errors = []
            self._notified = None
            log.info("config.applied", path=str(self.path), reason=reason, summary=self.summary, changes=result.changes[:50])
            if spec.warnings:  # places and reasons only: a warning never holds a value
                log.warning("config.warnings", path=str(self.path), warnings=[str(w) for w in spec.warnings[:SHOWN_ERRORS]])
            return True

    async def _resolved(self, spec: ConfigSpec) -> ConfigSpec:
        resolve = self.channels.resolve
        rules = [replace(r, channel=await resolve(r.channel)) for r in spec.rules]
        services = [replace(s, channel=await resolve(s.channel)) if s.channel else s for s in spec.services]
        routes = {kind: await resolve(channel) for kind, channel in spec.event_routes.items()}
        return replace(spec, rules=rules, services=services, event_routes=routes)

    async def _failed(self, reason: str, errors: list[str]) -> bool:
        self.errors = errors
        log.error("config.rejected", path=str(self.path), reason=reason, errors=errors[:SHOWN_ERRORS], count=len(errors))
        if self.notify is not None and tuple(errors) != self._notified:
            self._notified = tuple(errors)
            try:
                await self.notify(self.message())
            except Exception as exc:  # Slack being away must not hide the problem from the log and /health
                log.warning("config.notify_failed", error=f"{type(exc).__name__}: {exc}")
        return False

    def message(self) -> str:
        """The Slack text for the current problem (file paths and reasons; never a value from the environment)."""
        shown = "\n".join(f"• {e}" for e in self.errors[:SHOWN_ERRORS])
        more = f"\n…and {len(self.errors) - SHOWN_ERRORS} more" if len(self.errors) > SHOWN_ERRORS else ""
        return (
            f":warning: The config file `{self.path}` was not applied; nothing changed "
            f"({len(self.errors)} error(s)). Fix it and save it again, or run `pulser config check {self.path}`.\n"
            f"{shown}{more}"
        )

    # --- watching --------------------------------------------------------------------------------

    def start_watching(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._watch(), name="config-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            if self._stamp() != self._seen:
                await self.apply("file changed")

    def _stamp(self) -> tuple | None:
        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size, stat.st_ino)

    def reload(self) -> None:
        """SIGHUP: apply again now (from a signal handler, so scheduled rather than awaited)."""
        asyncio.get_running_loop().create_task(self.apply("SIGHUP"), name="config-reload")

    # --- /health ---------------------------------------------------------------------------------

    async def health(self) -> dict:
        part: dict = {
            "status": "degraded" if self.errors else ("up" if self.applied_at else "starting"),
            "path": str(self.path),
            "applied_at": self.applied_at.isoformat() if self.applied_at else None,
        }
        if self.summary:
            part["applied"] = self.summary
        if self.errors:
            part["error"] = f"the file was not applied ({len(self.errors)} error(s)); the last good state stays"
            part["errors"] = self.errors[:SHOWN_ERRORS]
        part["managed"] = await managed_config.managed_counts(self.pool)
        return part

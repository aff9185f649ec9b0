"""Retention: keep the newest HEARTBEAT_HISTORY events per app, a bounded ledger, the newest
OCCURRENCES_KEPT occurrences per incident (Investigate shows ten; the count lives on the incident)
and two weeks of the Slack delivery log.

Processed ledger rows are only needed to recognise redeliveries, which Slack and webhook senders
make within hours; after LEDGER_RETENTION_DAYS they go. Failed rows stay until someone looks.
"""

from __future__ import annotations

import asyncpg
import structlog

from storage import deliveries, envelopes, heartbeats, incidents
from storage.database import DATABASE_ERRORS

log = structlog.get_logger(__name__)

LEDGER_RETENTION_DAYS = 14
DELIVERY_LOG_DAYS = 14
OCCURRENCES_KEPT = 50


async def prune(pool: asyncpg.Pool, *, keep_heartbeats: int) -> dict[str, int]:
    removed = {"heartbeats": 0, "envelopes": 0, "occurrences": 0, "deliveries": 0}
    try:
        while True:
            deleted = await heartbeats.prune_heartbeats(pool, keep=keep_heartbeats)
            removed["heartbeats"] += deleted
            if deleted == 0:
                break
        removed["envelopes"] = await envelopes.delete_processed_before(pool, days=LEDGER_RETENTION_DAYS)
        removed["occurrences"] = await incidents.delete_occurrences_beyond(pool, keep=OCCURRENCES_KEPT)
        removed["deliveries"] = await deliveries.delete_before(pool, days=DELIVERY_LOG_DAYS)
    except DATABASE_ERRORS as exc:
        log.warning("retention.database_unavailable", error=f"{type(exc).__name__}: {exc}")
        return removed
    if any(removed.values()):
        log.info("retention.pruned", **removed)
    return removed

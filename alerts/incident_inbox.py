"""Pages of incidents by filter, for `/pulser incidents`, the App Home saved filters and
`GET /api/incidents`: one place that pages, so the list in Slack and the API agree.

A cursor is opaque to its reader: the sort order and the last row's sort key, as base64url JSON.
A cursor made for another order, or not made here at all, is refused (CursorError), never guessed.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from alerts.incident_detail import state
from alerts.incident_filters import IncidentFilter
from storage import incident_queries

MAX_CURSOR_LENGTH = 500


class CursorError(ValueError):
    """A cursor this API did not hand out for this order."""


@dataclass(frozen=True)
class Page:
    rows: list[dict]  # incident rows with "state" added
    next_cursor: str | None
    total: int | None = None


async def incident_page(
    pool: asyncpg.Pool, f: IncidentFilter, *, now: datetime, limit: int, cursor: str | None = None, count: bool = False
) -> Page:
    after = decode_cursor(cursor, f.sort) if cursor else None
    rows, key = await incident_queries.search_incidents(pool, f, now=now, limit=limit, after=after)
    total = await incident_queries.count_incidents(pool, f, now=now) if count else None
    return Page([{**r, "state": state(r, now)} for r in rows], encode_cursor(f.sort, key) if key else None, total)


def encode_cursor(sort: str, key: list[Any]) -> str:
    data = {"s": sort, "k": [v.isoformat() if isinstance(v, datetime) else v for v in key]}
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> list[Any]:
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise CursorError("too long")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("s") != sort or not isinstance(data.get("k"), list):
            raise CursorError("made for another order")
        key = data["k"]
        if sort == "oldest_unacked":
            acked, first_seen, last_id = key
            if not isinstance(acked, bool) or not _row_id(last_id) or not isinstance(first_seen, str):
                raise CursorError("not a cursor")
            moment = datetime.fromisoformat(first_seen)
            if moment.tzinfo is None:
                raise CursorError("not a cursor")
            return [acked, moment, last_id]
        [last_id] = key
        if not _row_id(last_id):
            raise CursorError("not a cursor")
        return [last_id]
    except CursorError:
        raise
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise CursorError("not a cursor") from None


def _row_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63

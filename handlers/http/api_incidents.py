"""The incidents API: `/api/incidents[/{id}[/ack|snooze|resolve|assign|notes]]`, `/api/alerts`,
`/api/dashboard/overview`, and the seed's names as aliases (`/api/alert-groups/…`).

Bearer `PULSER_ADMIN_TOKEN` on every route (the `api` wrapper). Filters are
`alerts.incident_filters`, the words `/pulser incidents` takes. Actions go through
`alerts.incident_actions.IncidentActions`, the same functions the Slack buttons call: one locked,
audited transaction (actor `api`) that schedules every Slack message of the incident to be
re-rendered in place by the outbox. An action that cannot apply (ack a resolved incident) is a
409 saying why, and changes nothing.
"""

from __future__ import annotations

import dataclasses

import re
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from alerts.home import dashboard_figures
from alerts.incident_actions import SNOOZE_MINUTES, ActionResult, IncidentActions
from alerts.incident_detail import detail_json, load_detail, note_json, occurrence_json, summary_json
from alerts.incident_filters import FilterError, USER_ID, parse_query
from alerts.incident_inbox import CursorError, decode_cursor, encode_cursor, incident_page
from blocks.incident_detail import note_error
from handlers.http.api_applications import POOL, ApiError, api
from handlers.http.json_body import read_json, read_json_object
from storage import dashboard, incident_queries

ACTIONS: web.AppKey[IncidentActions] = web.AppKey("incident_actions", IncidentActions)
INCIDENT_ID = re.compile(r"[0-9]{1,18}")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
ALERT_STATUSES = ("firing", "resolved")
REFUSED = {"ack": "cannot acknowledge", "snooze": "cannot snooze", "resolve": "cannot resolve", "assign": "cannot assign"}


def _now() -> datetime:
    return datetime.now(timezone.utc)


@api
async def list_incidents(request: web.Request) -> web.Response:
    query = request.query
    limit = _limit(query.get("limit"))
    items = [(k, v) for k, v in query.items() if k not in ("limit", "cursor")]
    try:
        parsed = parse_query(items)
        page = await incident_page(request.app[POOL], parsed, now=_now(), limit=limit, cursor=query.get("cursor") or None)
    except FilterError as exc:
        raise ApiError(400, "invalid filter", exc.problems) from None
    except CursorError:
        raise ApiError(400, "invalid filter", {"cursor": "not a cursor this API gave out for this sort; start without one"}) from None
    now = _now()
    return web.json_response({
        "incidents": [summary_json(r, now) for r in page.rows],
        "next_cursor": page.next_cursor,
        "sort": parsed.sort,
        "filters": parsed.as_json(),
    })


@api
async def get_incident(request: web.Request) -> web.Response:
    detail = await load_detail(request.app[POOL], _incident_id(request))
    if detail is None:
        raise _not_found()
    return web.json_response(detail_json(detail, _now()))


@api
async def ack_incident(request: web.Request) -> web.Response:
    await _no_fields(request)
    incident_id = _incident_id(request)
    return _answer("ack", await request.app[ACTIONS].ack(incident_id, "api"))


@api
async def snooze_incident(request: web.Request) -> web.Response:
    data = await read_json_object(request)
    allowed = ", ".join(str(m) for m in sorted(SNOOZE_MINUTES))
    errors = {k: "unknown field; send {\"minutes\": …}" for k in data if k != "minutes"}
    minutes = data.get("minutes")
    if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes not in SNOOZE_MINUTES:
        errors["minutes"] = f"must be one of {allowed}"
    if errors:
        raise ApiError(400, "invalid request", errors)
    return _answer("snooze", await request.app[ACTIONS].snooze(_incident_id(request), "api", minutes))


@api
async def resolve_incident(request: web.Request) -> web.Response:
    await _no_fields(request)
    return _answer("resolve", await request.app[ACTIONS].resolve(_incident_id(request), "api"))


@api
async def assign_incident(request: web.Request) -> web.Response:
    data = await read_json_object(request)
    errors = {k: "unknown field; send {\"assignee\": \"U…\"}" for k in data if k != "assignee"}
    assignee = data.get("assignee")
    if not isinstance(assignee, str) or not USER_ID.match(assignee):
        errors["assignee"] = "must be a Slack user ID such as U0123ABC"
    if errors:
        raise ApiError(400, "invalid request", errors)
    return _answer("assign", await request.app[ACTIONS].assign(_incident_id(request), "api", assignee))


@api
async def add_note(request: web.Request) -> web.Response:
    data = await read_json_object(request)
    errors = {k: "unknown field; send {\"text\": …}" for k in data if k != "text"}
    text = data.get("text")
    if not isinstance(text, str):
        errors["text"] = "must be a string of 1 to 3,000 characters"
    elif problem := note_error(text):
        errors["text"] = problem
    if errors:
        raise ApiError(400, "invalid request", errors)
    result, note = await request.app[ACTIONS].add_note(_incident_id(request), "api", text.strip())
    if note is None or result.incident is None:
        raise _not_found()
    return web.json_response({"note": note_json(note), "incident": summary_json(result.incident, _now())}, status=201)


@api
async def list_alerts(request: web.Request) -> web.Response:
    query = request.query
    limit = _limit(query.get("limit"))
    errors: dict[str, str] = {}
    statuses = tuple(s.strip() for s in query.get("status", "").split(",") if s.strip())
    if any(s not in ALERT_STATUSES for s in statuses):
        errors["status"] = "status=firing|resolved (comma list allowed)"
    incident_id = query.get("incident_id")
    if incident_id is not None and not INCIDENT_ID.fullmatch(incident_id):
        errors["incident_id"] = "must be an incident id (a whole number)"
    before = None
    if cursor := query.get("cursor"):
        try:
            before = decode_cursor(cursor, "alerts")[0]
        except CursorError:
            errors["cursor"] = "not a cursor this API gave out; start without one"
    if query.get("sort"):
        errors["sort"] = "alerts are listed newest first; there is no other order"
    try:
        parsed = parse_query(
            [(k, v) for k, v in query.items() if k not in ("limit", "cursor", "status", "incident_id")]
        )
    except FilterError as exc:
        errors.update(exc.problems)
        parsed = None
    if parsed is not None and parsed.assignee:
        errors["assignee"] = "alerts have no assignee; filter incidents by assignee instead"
    if errors or parsed is None:
        raise ApiError(400, "invalid filter", errors)
    rows, last_id = await incident_queries.search_occurrences(
        request.app[POOL], parsed, now=_now(), limit=limit, statuses=statuses,
        incident_id=int(incident_id) if incident_id else None, before_id=before,
    )
    return web.json_response({
        "alerts": [occurrence_json(r) for r in rows],
        "next_cursor": encode_cursor("alerts", [last_id]) if last_id is not None else None,
    })


@api
async def dashboard_overview(request: web.Request) -> web.Response:
    pool = request.app[POOL]
    now = _now()
    figures = await dashboard_figures(pool, now)
    figures["quiet"] = await dashboard.quiet_figures(pool, now=now)
    return web.json_response(_jsonable(figures))


# --- helpers -------------------------------------------------------------------------------------------


def _answer(action: str, result: ActionResult) -> web.Response:
    if result.incident is None:
        raise _not_found()
    if not result.changed and action != "assign":
        raise ApiError(409, REFUSED[action], _plain(result.note or "nothing to change"))
    if not result.changed and result.incident["status"] != "firing":
        raise ApiError(409, REFUSED[action], _plain(result.note or "nothing to change"))
    return web.json_response({"incident": summary_json(result.incident, _now()), "changed": result.changed})


async def _no_fields(request: web.Request) -> None:
    """Ack and resolve take no body; an empty one or `{}` is fine, anything else says so."""
    if not await request.read():
        return
    data = await read_json(request)
    if data is None or data == {}:
        return
    if not isinstance(data, dict):
        raise ApiError(400, "invalid request", {"body": "send no body, or {}"})
    raise ApiError(400, "invalid request", {k: "unknown field; this action takes no body" for k in data})


def _incident_id(request: web.Request) -> int:
    text = request.match_info["id"]
    if not INCIDENT_ID.fullmatch(text):
        raise _not_found()
    return int(text)


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_LIMIT:
        raise ApiError(400, "invalid filter", {"limit": f"must be a whole number from 1 to {MAX_LIMIT}"})
    return int(text)


def _not_found() -> ApiError:
    return ApiError(404, "incident not found")


def _plain(note: str) -> str:
    """A Slack-worded note (`<@U1>`) as the API says it (`U1`)."""
    return re.sub(r"<@([A-Z0-9]+)>", r"\1", note)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def add_routes(app: web.Application, actions: IncidentActions) -> None:
    app[ACTIONS] = actions
    for prefix in ("/api/incidents", "/api/alert-groups"):
        app.router.add_get(prefix, list_incidents)
        app.router.add_get(prefix + "/{id}", get_incident)
        app.router.add_post(prefix + "/{id}/ack", ack_incident)
        app.router.add_post(prefix + "/{id}/snooze", snooze_incident)
        app.router.add_post(prefix + "/{id}/resolve", resolve_incident)
    app.router.add_post("/api/incidents/{id}/assign", assign_incident)
    app.router.add_post("/api/incidents/{id}/notes", add_note)
    app.router.add_get("/api/alerts", list_alerts)
    app.router.add_get("/api/dashboard/overview", dashboard_overview)


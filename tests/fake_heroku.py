"""`FakeHeroku`: a local Heroku Platform API v3 for tests, served by aiohttp on 127.0.0.1.

It speaks the protocol facts of Heroku's Platform API reference — the Accept header (406
without it), bearer auth (401), `RateLimit-Remaining` on every response, 429 `rate_limit` when the
budget is spent, Range paging with 206 + `Next-Range`, `{"id", "message"}` error bodies — and
answers with the field sets of the `api-*.schema-example.json` files. Tests arrange state with
`add_app`, `add_release`, `set_dynos`, `set_config`, `set_addons`, inject failures with
`fail_next`, and read what the client sent in `requests`.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable

from aiohttp import web

ACCEPT_PREFIX = "application/vnd.heroku+json"
DEFAULT_BUDGET = 4500  # Heroku's bucket size
MAX_RANGE = 1000  # Heroku's largest `max=`
DEFAULT_RANGE = 200

# What Heroku answers for each status when a test injects a failure without a body of its own.
DEFAULT_ERRORS = {
    400: ("bad_request", "Invalid request."),
    401: ("unauthorized", "Invalid credentials provided."),
    402: ("delinquent", "This account is delinquent."),
    403: ("forbidden", "You do not have access to that app."),
    404: ("not_found", "Couldn't find that app."),
    409: ("conflict", "A conflicting operation is in progress."),
    416: ("requested_range_not_satisfiable", "Range header is not satisfiable."),
    422: ("invalid_params", "Invalid parameters."),
    429: ("rate_limit", "Your account reached the API rate limit. Please wait a few minutes before making new requests."),
    500: ("internal_server_error", "Internal server error."),
    502: ("bad_gateway", "Bad gateway."),
    503: ("service_unavailable", "Service unavailable."),
}

# Fields a Range header may sort on, per list endpoint (Heroku's Accept-Ranges).
RANGE_FIELDS = {
    "apps": ("id", "name"),
    "dynos": ("id", "name"),
    "releases": ("id", "version"),
    "addons": ("id", "name"),
    "formation": ("id", "type"),
}


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _id() -> str:
    return str(uuid.uuid4())


# --- builders for the shapes tests hand in -----------------------------------------------------------


def dyno(
    name: str,
    type: str | None = None,
    state: str = "up",
    *,
    release_version: int = 1,
    size: str = "standard-1X",
    command: str | None = None,
) -> dict:
    """A dyno in the API's list shape; `set_dynos` fills in `app` and the release id."""
    process_type = type or name.split(".")[0]
    return {
        "attach_url": None,
        "command": command or ("bash" if process_type == "run" else f"bin/{process_type}"),
        "created_at": _now(),
        "id": _id(),
        "name": name,
        "release": {"id": None, "version": release_version},
        "app": {"name": None, "id": None},
        "size": size,
        "state": state,
        "type": process_type,
        "updated_at": _now(),
    }


def addon(name: str, service: str, plan: str, state: str = "provisioned", *, config_vars: Iterable[str] = ()) -> dict:
    """An add-on in the API's list shape; `plan` may be `essential-0` or `heroku-postgresql:essential-0`."""
    plan_name = plan if ":" in plan else f"{service}:{plan}"
    return {
        "actions": [],
        "addon_service": {"id": _id(), "name": service},
        "billing_entity": {"id": None, "name": None, "type": "app"},
        "app": {"id": None, "name": None},
        "billed_price": {"cents": 0, "contract": False, "unit": "month"},
        "config_vars": list(config_vars),
        "created_at": _now(),
        "id": _id(),
        "name": name,
        "plan": {"id": _id(), "name": plan_name},
        "provider_id": uuid.uuid4().hex[:8],
        "provision_message": None,
        "state": state,
        "updated_at": _now(),
        "web_url": f"https://addons-sso.heroku.com/apps/{name}",
    }


# --- recording and faults ------------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    """One request as the fake saw it; `headers` never include Authorization."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any


@dataclass
class _Fault:
    method: str | None
    prefix: str
    status: int
    times: int
    retry_after: float | None
    body: dict | str | None


@dataclass
class _App:
    info: dict
    dynos: list[dict] = field(default_factory=list)
    releases: list[dict] = field(default_factory=list)
    config: dict[str, str] = field(default_factory=dict)
    addons: list[dict] = field(default_factory=list)
    formation: list[dict] = field(default_factory=list)


class _Refusal(Exception):
    """Raised inside a handler to answer with a Heroku error body."""

    def __init__(self, status: int, id: str, message: str, resource: str | None = None) -> None:
        super().__init__(message)
        self.status, self.id, self.message, self.resource = status, id, message, resource


@dataclass
class _Range:
    field: str
    start: Any = None
    start_exclusive: bool = False
    end: Any = None
    max: int | None = None
    order: str | None = None


class FakeHeroku:
    """A Heroku account holding a few apps in memory, behind a real HTTP server."""

    def __init__(
        self,
        api_key: str = "heroku-test-api-key",
        *,
        page_size: int = DEFAULT_RANGE,
        budget: int = DEFAULT_BUDGET,
        account_email: str = "owner@example.com",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.api_key = api_key
        self.page_size = page_size
        self.budget = budget
        self.account = {"id": _id(), "email": account_email}
        self.host = host
        self.port = port
        self.requests: list[RecordedRequest] = []
        self.promotions: list[dict] = []  # pipeline promotions created, as answered
        self._apps: dict[str, _App] = {}
        self._faults: list[_Fault] = []
        self._holds: list[tuple[str | None, str, asyncio.Event]] = []
        self._runner: web.AppRunner | None = None

    # --- lifecycle ----------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        app = web.Application(middlewares=[self._protocol])
        app.router.add_get("/account", self._get_account)
        app.router.add_get("/account/rate-limits", self._get_rate_limits)
        app.router.add_get("/apps", self._list_apps)
        app.router.add_get("/apps/{app}", self._get_app)
        app.router.add_get("/apps/{app}/dynos", self._list_dynos)
        app.router.add_get("/apps/{app}/releases", self._list_releases)
        app.router.add_get("/apps/{app}/releases/{release}", self._get_release)
        app.router.add_post("/apps/{app}/releases", self._create_release)
        app.router.add_get("/apps/{app}/config-vars", self._get_config_vars)
        app.router.add_get("/apps/{app}/addons", self._list_addons)
        app.router.add_get("/apps/{app}/formation", self._list_formation)
        app.router.add_post("/pipeline-promotions", self._create_promotion)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> "FakeHeroku":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- arranging state ----------------------------------------------------------------------------

    def add_app(self, name: str, *, region: str = "us", stack: str = "heroku-24") -> dict:
        app_id = _id()
        info = {
            "acm": False,
            "archived_at": None,
            "buildpack_provided_description": "Python",
            "build_stack": {"id": _id(), "name": stack},
            "created_at": _now(),
            "git_url": f"https://git.heroku.com/{name}.git",
            "id": app_id,
            "internal_routing": None,
            "maintenance": False,
            "name": name,
            "owner": dict(self.account),
            "organization": None,
            "team": None,
            "region": {"id": _id(), "name": region},
            "released_at": None,
            "repo_size": None,
            "slug_size": None,
            "space": None,
            "stack": {"id": _id(), "name": stack},
            "updated_at": _now(),
            "web_url": f"https://{name}-0123456789ab.herokuapp.com/",
        }
        self._apps[name] = _App(info=info)
        return info

    def add_release(
        self,
        app: str,
        version: int,
        status: str = "succeeded",
        *,
        description: str | None = None,
        user_email: str = "dev@example.com",
        eligible_for_rollback: bool = True,
        current: bool | None = None,
    ) -> dict:
        """Add a release. `current=None` makes it current when it succeeded and is the newest."""
        state = self._app(app)
        newest = max((r["version"] for r in state.releases), default=0)
        if current is None:
            current = status == "succeeded" and version > newest
        slug_id = _id()
        release = {
            "addon_plan_names": sorted(a["plan"]["name"] for a in state.addons),
            "artifacts": [{"type": "slug", "id": slug_id}],
            "app": {"name": state.info["name"], "id": state.info["id"]},
            "created_at": _now(),
            "description": description or f"Deploy {uuid.uuid4().hex[:8]}",
            "id": _id(),
            "updated_at": _now(),
            "slug": {"id": slug_id},
            "status": status,
            "user": {"id": _id(), "email": user_email},
            "version": version,
            "current": bool(current),
            "output_stream_url": None,
            "eligible_for_rollback": eligible_for_rollback,
        }
        if current:
            for other in state.releases:
                other["current"] = False
            state.info["released_at"] = release["created_at"]
        state.releases.append(release)
        return release

    def releases_of(self, app: str) -> list[dict]:
        """Every release of `app`, oldest first (what the fake holds, not what the API answers)."""
        return sorted(self._app(app).releases, key=lambda r: r["version"])

    def set_dynos(self, app: str, dynos: list[dict]) -> None:
        state = self._app(app)
        by_version = {r["version"]: r["id"] for r in state.releases}
        for d in dynos:
            d["app"] = {"name": state.info["name"], "id": state.info["id"]}
            d["release"]["id"] = by_version.get(d["release"]["version"]) or d["release"]["id"] or _id()
        state.dynos = list(dynos)

    def set_config(self, app: str, values: dict[str, str]) -> None:
        self._app(app).config = dict(values)

    def set_addons(self, app: str, addons: list[dict]) -> None:
        state = self._app(app)
        for a in addons:
            a["app"] = {"id": state.info["id"], "name": state.info["name"]}
            a["billing_entity"] = {"id": state.info["id"], "name": state.info["name"], "type": "app"}
        state.addons = list(addons)

    def set_formation(self, app: str, quantities: dict[str, int]) -> None:
        """The app's process formation (`heroku ps:scale`), in the API's shape."""
        state = self._app(app)
        state.formation = [
            {
                "app": {"id": state.info["id"], "name": state.info["name"]},
                "command": f"bin/{kind}",
                "created_at": "2026-01-01T00:00:00Z",
                "id": _id(),
                "quantity": quantity,
                "size": "standard-1X",
                "type": kind,
                "updated_at": "2026-01-01T00:00:00Z",
            }
            for kind, quantity in quantities.items()
        ]

    def refill(self, n: int) -> None:
        self.budget += n

    def fail_next(
        self,
        path_prefix_or_method_path: str,
        status: int,
        times: int = 1,
        retry_after: float | None = None,
        *,
        body: dict | str | None = None,
    ) -> None:
        """Answer the next `times` matching requests with `status` (and a Heroku error body).

        Match on a path prefix (`/apps/web`) or a method and path prefix (`POST /apps/web/releases`).
        A `str` body is sent as HTML, for clients that must cope with a proxy's error page.
        """
        method, _, prefix = path_prefix_or_method_path.rpartition(" ")
        self._faults.append(_Fault(method.upper() or None, prefix, status, times, retry_after, body))

    def hold(self, method_path: str) -> asyncio.Event:
        """Matching requests (`POST /apps/web/releases`: a method and a path prefix) are recorded,
        then wait unanswered until the returned event is set: a Heroku call still under way."""
        method, _, prefix = method_path.rpartition(" ")
        released = asyncio.Event()
        self._holds.append((method.upper() or None, prefix, released))
        return released

    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method and r.path == path]

    # --- the protocol layer --------------------------------------------------------------------------

    @web.middleware
    async def _protocol(self, request: web.Request, handler) -> web.StreamResponse:
        body = await _body(request)
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        self.requests.append(RecordedRequest(request.method, request.path, headers, body))
        for method, prefix, released in self._holds:
            if method in (None, request.method) and request.path.startswith(prefix):
                await released.wait()

        response = self._injected_fault(request) or self._refusal(request)
        if response is None:
            try:
                response = await handler(request)
            except _Refusal as refusal:
                response = _error(refusal.status, refusal.id, refusal.message, resource=refusal.resource)
            except web.HTTPNotFound:
                response = _error(404, "not_found", "The requested API endpoint was not found.")
            except web.HTTPMethodNotAllowed:
                response = _error(405, "method_not_allowed", "Method not allowed.")
        response.headers["RateLimit-Remaining"] = str(max(0, self.budget))
        return response

    def _injected_fault(self, request: web.Request) -> web.Response | None:
        for fault in self._faults:
            if fault.method not in (None, request.method) or not request.path.startswith(fault.prefix):
                continue
            fault.times -= 1
            if fault.times <= 0:
                self._faults.remove(fault)
            if isinstance(fault.body, str):
                response = web.Response(status=fault.status, text=fault.body, content_type="text/html")
            elif fault.body is not None:
                response = web.json_response(fault.body, status=fault.status)
            else:
                id_, message = DEFAULT_ERRORS.get(fault.status, (f"http_{fault.status}", "Injected failure."))
                response = _error(fault.status, id_, message)
            if fault.retry_after is not None:
                response.headers["Retry-After"] = f"{fault.retry_after:g}"
            return response
        return None

    def _refusal(self, request: web.Request) -> web.Response | None:
        """Accept header, then credentials, then the rate budget — in the order Heroku checks them."""
        accept = request.headers.get("Accept", "")
        if not accept.startswith(ACCEPT_PREFIX) or "version=3" not in accept:
            return _error(406, "not_acceptable", "Please specify a version along with Heroku's API MIME type.")
        if request.headers.get("Authorization", "") != f"Bearer {self.api_key}":
            return _error(401, "unauthorized", DEFAULT_ERRORS[401][1])
        if request.path == "/account/rate-limits":
            return None  # free: does not count against the budget
        if self.budget <= 0:
            return _error(429, "rate_limit", DEFAULT_ERRORS[429][1])
        self.budget -= 1
        return None

    # --- endpoints -------------------------------------------------------------------------------------

    async def _get_account(self, request: web.Request) -> web.Response:
        return web.json_response(self.account)

    async def _get_rate_limits(self, request: web.Request) -> web.Response:
        return web.json_response({"remaining": max(0, self.budget)})

    async def _list_apps(self, request: web.Request) -> web.Response:
        return self._paginate(request, [a.info for a in self._apps.values()], "apps")

    async def _get_app(self, request: web.Request) -> web.Response:
        return web.json_response(self._find_app(request).info)

    async def _list_dynos(self, request: web.Request) -> web.Response:
        return self._paginate(request, self._find_app(request).dynos, "dynos")

    async def _list_formation(self, request: web.Request) -> web.Response:
        return self._paginate(request, self._find_app(request).formation, "formation")

    async def _list_releases(self, request: web.Request) -> web.Response:
        return self._paginate(request, self._find_app(request).releases, "releases")

    async def _get_release(self, request: web.Request) -> web.Response:
        release = _find_release(self._find_app(request), request.match_info["release"])
        if release is None:
            raise _Refusal(404, "not_found", "Couldn't find that release.", resource="release")
        return web.json_response(release)

    async def _create_release(self, request: web.Request) -> web.Response:
        """Only the Rollback form of "create release": `{"release": <id or version>}`."""
        state = self._find_app(request)
        body = await _body(request)
        if not isinstance(body, dict) or not body.get("release"):
            raise _Refusal(422, "invalid_params", "Missing required param: release.")
        target = _find_release(state, str(body["release"]))
        if target is None:
            raise _Refusal(404, "not_found", "Couldn't find that release.", resource="release")
        if not target["eligible_for_rollback"]:
            raise _Refusal(422, "invalid_params", f"Release v{target['version']} is not eligible for rollback.")
        newest = max(r["version"] for r in state.releases)
        release = self.add_release(
            state.info["name"],
            newest + 1,
            description=f"Rollback to v{target['version']}",
            user_email=self.account["email"],
            current=True,
        )
        release["slug"] = dict(target["slug"]) if target["slug"] else None
        release["artifacts"] = [dict(a) for a in target["artifacts"]]
        release["addon_plan_names"] = list(target["addon_plan_names"])
        return web.json_response(release, status=201)

    async def _create_promotion(self, request: web.Request) -> web.Response:
        """`{"pipeline": {"id"}, "source": {"app": {id|name}}, "targets": [{"app": {id|name}}]}` → pending."""
        body = await _body(request)
        pipeline = (body.get("pipeline") or {}).get("id") if isinstance(body, dict) else None
        source = ((body.get("source") or {}).get("app") or {}) if isinstance(body, dict) else {}
        targets = body.get("targets") if isinstance(body, dict) else None
        if not pipeline or not source or not isinstance(targets, list) or not targets:
            raise _Refusal(422, "invalid_params", "Missing required params: pipeline, source, targets.")
        source_app = self._app_by_ref(source)
        for target in targets:
            self._app_by_ref((target or {}).get("app") or {})
        current = next((r for r in source_app.releases if r["current"]), None)
        promotion = {
            "created_at": _now(),
            "id": _id(),
            "pipeline": {"id": pipeline},
            "source": {"app": {"id": source_app.info["id"]}, "release": {"id": current["id"] if current else None}},
            "status": "pending",
            "updated_at": _now(),
            "targets": [t["app"] for t in targets],
        }
        self.promotions.append(promotion)
        return web.json_response({k: v for k, v in promotion.items() if k != "targets"}, status=201)

    def _app_by_ref(self, ref: dict) -> _App:
        key = ref.get("id") or ref.get("name")
        for state in self._apps.values():
            if key in (state.info["name"], state.info["id"]):
                return state
        raise _Refusal(404, "not_found", "Couldn't find that app.", resource="app")

    async def _get_config_vars(self, request: web.Request) -> web.Response:
        return web.json_response(self._find_app(request).config)

    async def _list_addons(self, request: web.Request) -> web.Response:
        return self._paginate(request, self._find_app(request).addons, "addons")

    # --- helpers ---------------------------------------------------------------------------------------

    def _app(self, name: str) -> _App:
        try:
            return self._apps[name]
        except KeyError:
            raise KeyError(f"FakeHeroku has no app {name!r}; call add_app first") from None

    def _find_app(self, request: web.Request) -> _App:
        key = request.match_info["app"]
        for state in self._apps.values():
            if key in (state.info["name"], state.info["id"]):
                return state
        raise _Refusal(404, "not_found", "Couldn't find that app.", resource="app")

    def _paginate(self, request: web.Request, items: list[dict], kind: str) -> web.Response:
        """Heroku's Range protocol: sort, cut at the start bound, answer 206 + Next-Range if more remain."""
        fields = RANGE_FIELDS[kind]
        wanted = _parse_range(request.headers.get("Range"), fields)
        descending = wanted.order == "desc"

        def key(item: dict) -> Any:
            return item[wanted.field]

        def after_start(item: dict) -> bool:
            if wanted.start is None:
                return True
            if descending:
                return key(item) < wanted.start if wanted.start_exclusive else key(item) <= wanted.start
            return key(item) > wanted.start if wanted.start_exclusive else key(item) >= wanted.start

        def before_end(item: dict) -> bool:
            if wanted.end is None:
                return True
            return key(item) >= wanted.end if descending else key(item) <= wanted.end

        selected = [i for i in sorted(items, key=key, reverse=descending) if after_start(i) and before_end(i)]
        page_max = min(wanted.max or DEFAULT_RANGE, self.page_size)
        page = selected[:page_max]
        headers = {"Accept-Ranges": ", ".join(fields)}
        if page:
            headers["Content-Range"] = f"{wanted.field} {key(page[0])}..{key(page[-1])}"
        status = 200
        if len(selected) > page_max:
            status = 206
            order = f", order={wanted.order}" if wanted.order else ""
            headers["Next-Range"] = f"{wanted.field} ]{key(page[-1])}..; max={page_max}{order}"
        return web.json_response(page, status=status, headers=headers)


# --- module helpers ---------------------------------------------------------------------------------------


_RANGE_RE = re.compile(r"^\s*(?P<field>\w+)\s+(?P<excl>\]?)(?P<start>[^;]*?)\.\.(?P<end>[^;]*?)\s*(?:;(?P<params>.*))?$")


def _parse_range(raw: str | None, fields: tuple[str, ...]) -> _Range:
    """`<field> [start]..[end]; max=<n>, order=<asc|desc>`; anything else is a 416."""
    if not raw:
        return _Range(field="id")
    match = _RANGE_RE.match(raw)
    if not match or match["field"] not in fields:
        raise _Refusal(416, "requested_range_not_satisfiable", f"Range must be one of: {', '.join(fields)}.")
    wanted = _Range(field=match["field"], start_exclusive=bool(match["excl"]))
    try:
        convert = int if wanted.field == "version" else str
        wanted.start = convert(match["start"].strip()) if match["start"].strip() else None
        wanted.end = convert(match["end"].strip()) if match["end"].strip() else None
        for param in re.split(r"[;,]", match["params"] or ""):
            name, _, value = param.strip().partition("=")
            if name == "max":
                wanted.max = int(value)
            elif name == "order":
                wanted.order = value.strip()
            elif name:
                raise ValueError(name)
    except ValueError:
        raise _Refusal(416, "requested_range_not_satisfiable", "Range header is not satisfiable.") from None
    if wanted.order not in (None, "asc", "desc") or (wanted.max is not None and not 1 <= wanted.max <= MAX_RANGE):
        raise _Refusal(416, "requested_range_not_satisfiable", "Range header is not satisfiable.")
    return wanted


async def _body(request: web.Request) -> Any:
    """The JSON body (aiohttp caches the bytes, so reading twice is free); text if not JSON."""
    raw = await request.read()
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode("utf-8", "replace")


def _find_release(state: _App, key: str) -> dict | None:
    for release in state.releases:
        if key == release["id"] or (key.isdigit() and int(key) == release["version"]):
            return release
    return None


def _error(status: int, id: str, message: str, *, resource: str | None = None) -> web.Response:
    body = {"id": id, "message": message}
    if resource:
        body["resource"] = resource
    return web.json_response(body, status=status)

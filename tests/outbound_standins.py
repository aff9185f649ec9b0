"""Local stand-ins for the services Pulser's outbound channels talk to, for tests.

`OutboundStandins` is one aiohttp app on 127.0.0.1 (a random port) answering on the services' own
paths, with their status codes and body shapes, and refusing what they would refuse:

- Discord webhooks      `POST /api/webhooks/{id}/{token}[?wait=true]`      (limits, 404 Unknown Webhook)
- Teams                 `POST /workflows/{id}/triggers/manual/paths/invoke?…&sig=…` (202) and the
                        legacy connector `POST /webhookb2/…/IncomingWebhook/…` (200 "1")
- a webhook receiver    `POST /hooks/{name}` that checks `X-Pulser-Signature` as the docs say
- GitHub issues         `/repos/{owner}/{repo}/issues[/{n}[/comments]]` (token, JSON, 422s)
- Twilio Messages       `POST /2010-04-01/Accounts/{sid}/Messages.json` (basic auth, E.164 `To`)
- PagerDuty Events v2   `POST /v2/enqueue` (required fields, severities, routing key length)

Every accepted request is kept (`received("discord")`); every request, accepted or not, in
`attempts(...)`. A test makes the next answers of one service fail with `fail_next(service,
status, times=…, retry_after=…)` (a 5xx, a 429, a 401 in that service's own error shape) or
slow with `delay_next(service, seconds)` (longer than the client's timeout).

`SmtpStandin` is an aiosmtpd server in the test's event loop: AUTH PLAIN/LOGIN for one user
(others get 535), STARTTLS or implicit TLS with a certificate made at test time, 550 for
`unknown@…` and 451 for `greylisted@…` recipients; each message is kept, parsed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import re
import secrets
import ssl
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

SERVICES = ("discord", "teams", "webhook", "github", "twilio", "pagerduty")
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
PD_SEVERITIES = ("critical", "error", "warning", "info")


@dataclass
class Received:
    """One request as a stand-in saw it. `headers` leave out Authorization; `at` is when its body
    had arrived (time.time()), so a benchmark can time a page from its cause to its arrival."""

    service: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    answer: int = 0
    at: float = field(default_factory=time.time)

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def form(self) -> dict[str, str]:
        return {key: values[-1] for key, values in parse_qs(self.body.decode(), keep_blank_values=True).items()}


@dataclass
class _Fault:
    status: int | None  # None: only the delay
    times: int
    retry_after: float | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class _Answer(Exception):
    """Raised by a handler to answer at once with a service's error."""

    def __init__(self, response: web.StreamResponse):
        self.response = response


def _json(body: Any, status: int, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers)


def _now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- each service's own error shape ------------------------------------------------------------------


def discord_error(status: int, retry_after: float | None = None) -> web.Response:
    if status == 429:
        wait = retry_after if retry_after is not None else 1.2
        body = {"message": "You are being rate limited.", "retry_after": wait, "global": False}
        return _json(body, 429, {"Retry-After": str(int(wait) + 1), "X-RateLimit-Scope": "user"})
    bodies = {
        401: {"message": "Invalid Webhook Token", "code": 50027},
        403: {"message": "Missing Permissions", "code": 50013},
        404: {"message": "Unknown Webhook", "code": 10015},
    }
    return _json(bodies.get(status, {"message": f"{status}: Internal Server Error", "code": 0}), status)


def teams_error(status: int, retry_after: float | None = None) -> web.Response:
    codes = {401: "DirectApiAuthorizationRequired", 404: "WorkflowNotFound", 429: "WorkflowTriggeredTooFrequently"}
    body = {"error": {"code": codes.get(status, "InternalServerError"), "message": f"The request failed with status {status}."}}
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
    return _json(body, status, headers)


def github_error(status: int, retry_after: float | None = None) -> web.Response:
    messages = {
        401: "Bad credentials",
        403: "Resource not accessible by personal access token",
        404: "Not Found",
        410: "Issues are disabled for this repo",
        429: "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
    }
    body = {"message": messages.get(status, "Server Error"), "documentation_url": "https://docs.github.com/rest", "status": str(status)}
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
    return _json(body, status, headers)


def twilio_error(status: int, retry_after: float | None = None, code: int | None = None, message: str | None = None) -> web.Response:
    defaults = {401: (20003, "Authenticate"), 404: (20404, "The requested resource was not found"), 429: (20429, "Too Many Requests")}
    default_code, default_message = defaults.get(status, (20500, "Internal Server Error"))
    code = code or default_code
    body = {"code": code, "message": message or default_message, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
    return _json(body, status, headers)


def pagerduty_error(status: int, retry_after: float | None = None, errors: list[str] | None = None) -> web.Response:
    if status == 400:
        body: Any = {"status": "invalid event", "message": "Event object is invalid", "errors": errors or ["Invalid event"]}
    elif status == 429:
        body = {"status": "throttle exceeded", "message": "Requests for this service are arriving too quickly. Please retry later."}
    else:
        body = {"status": "unrecognized object", "message": "Internal Server Error"}
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
    return _json(body, status, headers)


def webhook_error(status: int, retry_after: float | None = None) -> web.Response:
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
    return web.Response(status=status, text=f"receiver says {status}", headers=headers)


ERRORS = {
    "discord": discord_error,
    "teams": teams_error,
    "github": github_error,
    "twilio": twilio_error,
    "pagerduty": pagerduty_error,
    "webhook": webhook_error,
}


def _service_of(path: str) -> str | None:
    for prefix, service in (
        ("/api/webhooks/", "discord"),
        ("/workflows/", "teams"),
        ("/webhookb2/", "teams"),
        ("/hooks/", "webhook"),
        ("/repos/", "github"),
        ("/2010-04-01/", "twilio"),
        ("/v2/enqueue", "pagerduty"),
    ):
        if path.startswith(prefix):
            return service
    return None


class OutboundStandins:
    """Discord, Teams, a webhook receiver, GitHub, Twilio and PagerDuty behind one local server."""

    # Discord
    discord_id = "1234567890123456789"
    discord_token = "dIsCoRd-WeBhOoK-tOkEn-" + "x" * 40
    # Teams
    teams_workflow_id = "4f3c2b1a0e9d8c7b6a5f4e3d2c1b0a99"
    teams_sig = "TeAmS-SiGnAtUrE-" + "s" * 27
    teams_connector_path = "/webhookb2/0a1b2c3d-aaaa-bbbb-cccc-000000000001@0a1b2c3d-aaaa-bbbb-cccc-000000000002/IncomingWebhook/5e6f7a8b9c0d4e1f/0a1b2c3d-aaaa-bbbb-cccc-000000000003"
    # the webhook receiver
    webhook_secret = "whsec-pulser-receiver-signing-secret"
    # GitHub
    github_token = "github_pat_11AAAAAAA0" + "t" * 40
    github_repository = "acme/ops"
    # Twilio
    twilio_sid = "AC" + "0123456789abcdef" * 2
    twilio_token = "tWiLiO-aUtH-tOkEn-" + "9" * 14
    twilio_landline = "+14155550199"
    # PagerDuty
    pagerduty_key = "R0UTINGKEY0123456789ABCDEFGHIJKL"

    def __init__(self) -> None:
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self._faults: dict[str, list[_Fault]] = {service: [] for service in SERVICES}
        self._attempts: list[Received] = []
        self._ids = itertools.count(1)
        # GitHub: repository → issues (number → issue) and comments (number → [comment])
        self.github_issues: dict[str, dict[int, dict]] = {self.github_repository: {}}
        self.github_comments: dict[str, dict[int, list[dict]]] = {self.github_repository: {}}
        # PagerDuty: dedup key → {"status", "triggers", "payload"}
        self.pagerduty_alerts: dict[str, dict] = {}

    # --- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_post("/api/webhooks/{id}/{token}", self._discord)
        app.router.add_post("/workflows/{id}/triggers/manual/paths/invoke", self._teams_workflow)
        app.router.add_post("/webhookb2/{tail:.+}", self._teams_connector)
        app.router.add_post("/hooks/{name}", self._webhook)
        app.router.add_get("/repos/{owner}/{repo}/issues", self._github_list)
        app.router.add_post("/repos/{owner}/{repo}/issues", self._github_create)
        app.router.add_patch("/repos/{owner}/{repo}/issues/{number}", self._github_update)
        app.router.add_post("/repos/{owner}/{repo}/issues/{number}/comments", self._github_comment)
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._twilio)
        app.router.add_post("/v2/enqueue", self._pagerduty)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        self._stopping.set()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> "OutboundStandins":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- addresses and credentials ---------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def discord_url(self) -> str:
        return f"{self.base_url}/api/webhooks/{self.discord_id}/{self.discord_token}"

    @property
    def teams_workflow_url(self) -> str:
        query = f"api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={self.teams_sig}"
        return f"{self.base_url}/workflows/{self.teams_workflow_id}/triggers/manual/paths/invoke?{query}"

    @property
    def teams_connector_url(self) -> str:
        return self.base_url + self.teams_connector_path

    def webhook_url(self, name: str = "pulser") -> str:
        return f"{self.base_url}/hooks/{name}"

    @property
    def pagerduty_url(self) -> str:
        return f"{self.base_url}/v2/enqueue"

    # --- what arrived, and faults ----------------------------------------------------------------------

    def received(self, service: str) -> list[Received]:
        """The requests `service` accepted (a 2xx), oldest first."""
        return [r for r in self._attempts if r.service == service and 200 <= r.answer < 300]

    def attempts(self, service: str) -> list[Received]:
        """Every request `service` saw, whatever it answered."""
        return [r for r in self._attempts if r.service == service]

    def fail_next(
        self,
        service: str,
        status: int,
        *,
        times: int = 1,
        retry_after: float | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """The next `times` requests to `service` get `status`, in the service's own error shape
        (or `body`: a dict is sent as JSON, a str as text)."""
        self._faults[service].append(_Fault(status, times, retry_after, body, dict(headers or {})))

    def delay_next(self, service: str, seconds: float, *, times: int = 1) -> None:
        """The next `times` requests to `service` are answered only after `seconds`."""
        self._faults[service].append(_Fault(None, times, delay=seconds))

    def add_github_issue(self, title: str, body: str, *, labels: tuple[str, ...] = ("pulser",), state: str = "open") -> dict:
        """An issue that is already there (one Pulser created before a crash, or anyone's)."""
        return self._new_issue(self.github_repository, {"title": title, "body": body, "labels": list(labels)}, state=state)

    # --- plumbing ------------------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler) -> web.StreamResponse:
        service = _service_of(request.path)
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        seen = Received(service or "unknown", request.method, request.path, dict(request.query), headers, body)
        self._attempts.append(seen)
        response = await self._answer(service, request, handler)
        seen.answer = response.status
        return response

    async def _answer(self, service: str | None, request: web.Request, handler) -> web.StreamResponse:
        if service is not None and self._faults[service]:
            fault = self._faults[service][0]
            fault.times -= 1
            if fault.times <= 0:
                self._faults[service].pop(0)
            if fault.delay:
                try:
                    await asyncio.wait_for(self._stopping.wait(), fault.delay)
                except asyncio.TimeoutError:
                    pass
            if fault.status is not None:
                return self._fault_response(service, fault)
        try:
            return await handler(request)
        except _Answer as answer:
            return answer.response

    def _fault_response(self, service: str, fault: _Fault) -> web.StreamResponse:
        if fault.body is None:
            response = ERRORS[service](fault.status, fault.retry_after)
        elif isinstance(fault.body, (dict, list)):
            response = _json(fault.body, fault.status)
        else:
            response = web.Response(status=fault.status, text=str(fault.body))
        if fault.retry_after is not None and "Retry-After" not in response.headers:
            response.headers["Retry-After"] = f"{fault.retry_after:g}"
        response.headers.update(fault.headers)
        return response

    @staticmethod
    async def _json_body(request: web.Request, refuse) -> Any:
        try:
            return json.loads(await request.read())
        except ValueError:
            raise _Answer(refuse()) from None

    # --- Discord ---------------------------------------------------------------------------------------

    async def _discord(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["id"] != self.discord_id:
            return discord_error(404)
        if request.match_info["token"] != self.discord_token:
            return discord_error(401)
        body = await self._json_body(request, lambda: _json({"message": "The request body contains invalid JSON.", "code": 50109}, 400))
        errors = _discord_errors(body)
        if errors:
            return _json({"code": 50035, "errors": errors, "message": "Invalid Form Body"}, 400)
        if not body.get("content") and not body.get("embeds"):
            return _json({"message": "Cannot send an empty message", "code": 50006}, 400)
        if request.query.get("wait") != "true":
            return web.Response(status=204)
        content = body.get("content") or ""
        allowed = body.get("allowed_mentions")
        everyone_allowed = allowed is None or "everyone" in (allowed.get("parse") or [])
        message = {
            "id": str(1_300_000_000_000_000_000 + next(self._ids)),
            "type": 0,
            "content": content,
            "channel_id": "1111111111111111111",
            "author": {"bot": True, "id": self.discord_id, "username": "Pulser", "discriminator": "0000"},
            "embeds": body.get("embeds") or [],
            "mentions": [],
            "mention_roles": [],
            "mention_everyone": "@everyone" in content and everyone_allowed,
            "timestamp": datetime.now(timezone.utc).isoformat(),
            "webhook_id": self.discord_id,
        }
        return _json(message, 200)

    # --- Teams ---------------------------------------------------------------------------------------

    async def _teams_workflow(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["id"] != self.teams_workflow_id:
            return teams_error(404)
        if request.query.get("sig") != self.teams_sig or request.query.get("api-version") != "2016-06-01":
            return teams_error(401)
        body = await self._json_body(request, lambda: teams_error(400))
        problem = _teams_problem(body)
        if problem:
            return _json({"error": {"code": "TriggerInputSchemaMismatch", "message": problem}}, 400)
        return web.Response(status=202)

    async def _teams_connector(self, request: web.Request) -> web.StreamResponse:
        if request.path != self.teams_connector_path:
            return web.Response(status=404, text="Webhook not found")
        body = await self._json_body(request, lambda: web.Response(status=400, text="Bad payload received by generic incoming webhook."))
        if _teams_problem(body):
            return web.Response(status=400, text="Bad payload received by generic incoming webhook.")
        return web.Response(status=200, text="1")

    # --- the webhook receiver -------------------------------------------------------------------------

    async def _webhook(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        timestamp = request.headers.get("X-Pulser-Timestamp", "")
        signature = request.headers.get("X-Pulser-Signature", "")
        expected = "sha256=" + hmac.new(self.webhook_secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        fresh = timestamp.isdigit() and abs(time.time() - int(timestamp)) < 300
        if not (fresh and hmac.compare_digest(expected, signature)):
            return web.Response(status=401, text="signature does not match")
        try:
            payload = json.loads(body)
        except ValueError:
            return web.Response(status=400, text="not JSON")
        if not isinstance(payload, dict) or not {"action", "incident", "sent_at"} <= payload.keys():
            return web.Response(status=400, text="missing action, incident or sent_at")
        return _json({"ok": True}, 200)

    # --- GitHub ----------------------------------------------------------------------------------------

    def _github_repo(self, request: web.Request) -> str:
        auth = request.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() not in ("bearer", "token") or token != self.github_token:
            raise _Answer(github_error(401))
        version = request.headers.get("X-GitHub-Api-Version")
        if version is not None and version != "2022-11-28":
            raise _Answer(_json({"message": f"Invalid API version: {version}", "documentation_url": "https://docs.github.com/rest"}, 400))
        repository = f"{request.match_info['owner']}/{request.match_info['repo']}"
        if repository not in self.github_issues:
            raise _Answer(github_error(404))
        return repository

    def _github_headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": "4999",
            "x-ratelimit-reset": str(int(time.time()) + 3600),
            "x-github-request-id": uuid.uuid4().hex[:16].upper(),
        }

    async def _github_list(self, request: web.Request) -> web.StreamResponse:
        repository = self._github_repo(request)
        issues = list(self.github_issues[repository].values())
        state = request.query.get("state", "open")
        if state != "all":
            issues = [i for i in issues if i["state"] == state]
        wanted = [label for label in request.query.get("labels", "").split(",") if label]
        issues = [i for i in issues if set(wanted) <= {label["name"] for label in i["labels"]}]
        issues.sort(key=lambda i: i["number"], reverse=request.query.get("direction", "desc") == "desc")
        per_page = min(int(request.query.get("per_page", "30")), 100)
        page = int(request.query.get("page", "1"))
        return _json(issues[(page - 1) * per_page : page * per_page], 200, self._github_headers())

    async def _github_create(self, request: web.Request) -> web.StreamResponse:
        repository = self._github_repo(request)
        body = await self._json_body(request, lambda: _json({"message": "Problems parsing JSON"}, 400))
        if not isinstance(body, dict) or not body.get("title"):
            return _github_invalid("Issue", "title", "missing_field")
        issue = self._new_issue(repository, body)
        return _json(issue, 201, self._github_headers())

    def _new_issue(self, repository: str, body: dict, *, state: str = "open") -> dict:
        number = len(self.github_issues[repository]) + 1
        owner, name = repository.split("/")
        issue = {
            "id": 2_000_000 + number,
            "node_id": f"I_kw{number:08d}",
            "number": number,
            "title": body["title"],
            "body": body.get("body"),
            "state": state,
            "state_reason": None,
            "labels": [{"id": 9000 + i, "name": label, "color": "ededed", "default": False} for i, label in enumerate(body.get("labels") or [])],
            "comments": 0,
            "user": {"login": "pulser-bot", "id": 42, "type": "Bot"},
            "html_url": f"https://github.com/{owner}/{name}/issues/{number}",
            "url": f"{self.base_url}/repos/{owner}/{name}/issues/{number}",
            "created_at": _now_iso(),
            "updated_at": _now_iso(),
            "closed_at": None,
        }
        self.github_issues[repository][number] = issue
        self.github_comments[repository][number] = []
        return issue

    def _github_issue(self, repository: str, request: web.Request) -> dict:
        number = request.match_info["number"]
        issue = self.github_issues[repository].get(int(number)) if number.isdigit() else None
        if issue is None:
            raise _Answer(github_error(404))
        return issue

    async def _github_update(self, request: web.Request) -> web.StreamResponse:
        repository = self._github_repo(request)
        issue = self._github_issue(repository, request)
        body = await self._json_body(request, lambda: _json({"message": "Problems parsing JSON"}, 400))
        if body.get("state") not in (None, "open", "closed"):
            return _github_invalid("Issue", "state", "invalid")
        if body.get("state_reason") not in (None, "completed", "not_planned", "reopened"):
            return _github_invalid("Issue", "state_reason", "invalid")
        if body.get("state"):
            issue["state"] = body["state"]
            issue["closed_at"] = _now_iso() if body["state"] == "closed" else None
        if "state_reason" in body:
            issue["state_reason"] = body["state_reason"]
        issue["updated_at"] = _now_iso()
        return _json(issue, 200, self._github_headers())

    async def _github_comment(self, request: web.Request) -> web.StreamResponse:
        repository = self._github_repo(request)
        issue = self._github_issue(repository, request)
        body = await self._json_body(request, lambda: _json({"message": "Problems parsing JSON"}, 400))
        if not isinstance(body, dict) or not body.get("body"):
            return _github_invalid("IssueComment", "body", "missing_field")
        comment = {
            "id": 3_000_000 + next(self._ids),
            "body": body["body"],
            "user": {"login": "pulser-bot", "id": 42, "type": "Bot"},
            "issue_url": issue["url"],
            "html_url": f"{issue['html_url']}#issuecomment-{next(self._ids)}",
            "created_at": _now_iso(),
        }
        self.github_comments[repository][issue["number"]].append(comment)
        issue["comments"] += 1
        return _json(comment, 201, self._github_headers())

    # --- Twilio ----------------------------------------------------------------------------------------

    async def _twilio(self, request: web.Request) -> web.StreamResponse:
        user, password = _basic_auth(request)
        if user != self.twilio_sid or password != self.twilio_token:
            return twilio_error(401)
        if request.match_info["sid"] != self.twilio_sid:
            return twilio_error(404)
        if not request.content_type == "application/x-www-form-urlencoded":
            return twilio_error(400, code=21620, message="Invalid media URL(s)")  # Twilio reads only forms
        form = {key: values[-1] for key, values in parse_qs((await request.read()).decode(), keep_blank_values=True).items()}
        to = form.get("To", "")
        if not to:
            return twilio_error(400, code=21604, message="A 'To' phone number is required.")
        if not E164.match(to):
            return twilio_error(400, code=21211, message=f"The 'To' number {to} is not a valid phone number.")
        if to == self.twilio_landline:
            return twilio_error(400, code=21614, message=f"'To' number {to} is not a valid mobile number")
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return twilio_error(400, code=21603, message="A 'From' phone number is required.")
        text = form.get("Body", "")
        if not text:
            return twilio_error(400, code=21602, message="Message body is required.")
        if len(text) > 1600:
            return twilio_error(400, code=21617, message="The concatenated message body exceeds the 1600 character limit.")
        sid = "SM" + secrets.token_hex(16)
        gsm = all(ord(c) < 128 for c in text)
        segments = 1 if len(text) <= (160 if gsm else 70) else -(-len(text) // (153 if gsm else 67))
        message = {
            "account_sid": self.twilio_sid,
            "api_version": "2010-04-01",
            "body": text,
            "date_created": datetime.now(timezone.utc).strftime("%a, %d %b %Y %H:%M:%S +0000"),
            "date_sent": None,
            "date_updated": datetime.now(timezone.utc).strftime("%a, %d %b %Y %H:%M:%S +0000"),
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From") or None,
            "messaging_service_sid": form.get("MessagingServiceSid") or None,
            "num_media": "0",
            "num_segments": str(segments),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if form.get("MessagingServiceSid") else "queued",
            "subresource_uris": {"media": f"/2010-04-01/Accounts/{self.twilio_sid}/Messages/{sid}/Media.json"},
            "to": to,
            "uri": f"/2010-04-01/Accounts/{self.twilio_sid}/Messages/{sid}.json",
        }
        return _json(message, 201)

    # --- PagerDuty -------------------------------------------------------------------------------------

    async def _pagerduty(self, request: web.Request) -> web.StreamResponse:
        body = await self._json_body(request, lambda: pagerduty_error(400, errors=["Invalid JSON"]))
        if not isinstance(body, dict):
            return pagerduty_error(400, errors=["Event object is invalid"])
        errors = _pagerduty_errors(body)
        if not errors and body["routing_key"] != self.pagerduty_key:
            errors = ["Invalid routing key"]
        if errors:
            return pagerduty_error(400, errors=errors)
        action = body["event_action"]
        key = body.get("dedup_key") or uuid.uuid4().hex
        alert = self.pagerduty_alerts.setdefault(key, {"status": "triggered", "triggers": 0, "payload": None})
        if action == "trigger":
            alert["triggers"] += 1
            alert["payload"] = body["payload"]
            if alert["status"] == "resolved":
                alert["status"] = "triggered"
        elif alert["status"] != "resolved":
            alert["status"] = "acknowledged" if action == "acknowledge" else "resolved"
        return _json({"status": "success", "message": "Event processed", "dedup_key": key}, 202)


# --- validation the services do ----------------------------------------------------------------------


def _length_error(limit: int) -> dict:
    return {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": f"Must be {limit} or fewer in length."}]}


def _discord_errors(body: Any) -> dict:
    """Discord's 50035 "Invalid Form Body" errors, nested by field, for what breaks its limits."""
    if not isinstance(body, dict):
        return {"_errors": [{"code": "DICT_TYPE_CONVERT", "message": "Only dictionaries may be used in a DictType"}]}
    errors: dict = {}
    if len(body.get("content") or "") > 2000:
        errors["content"] = _length_error(2000)
    embeds = body.get("embeds") or []
    if len(embeds) > 10:
        errors["embeds"] = _length_error(10)
        return errors
    total = 0
    for index, embed in enumerate(embeds):
        problems: dict = {}
        for name, limit in (("title", 256), ("description", 4096)):
            if len(embed.get(name) or "") > limit:
                problems[name] = _length_error(limit)
        fields = embed.get("fields") or []
        if len(fields) > 25:
            problems["fields"] = _length_error(25)
        for position, item in enumerate(fields[:25]):
            if not item.get("name") or not item.get("value"):
                problems.setdefault("fields", {})[str(position)] = {"_errors": [{"code": "BASE_TYPE_REQUIRED", "message": "This field is required"}]}
            elif len(item["name"]) > 256 or len(item["value"]) > 1024:
                problems.setdefault("fields", {})[str(position)] = _length_error(1024)
        if len((embed.get("footer") or {}).get("text") or "") > 2048:
            problems["footer"] = _length_error(2048)
        if not isinstance(embed.get("color", 0), int) or not 0 <= embed.get("color", 0) <= 0xFFFFFF:
            problems["color"] = {"_errors": [{"code": "NUMBER_TYPE_MAX", "message": "int value should be less than or equal to 16777215."}]}
        total += len(embed.get("title") or "") + len(embed.get("description") or "") + len((embed.get("footer") or {}).get("text") or "")
        total += sum(len(item.get("name") or "") + len(item.get("value") or "") for item in fields)
        if problems:
            errors.setdefault("embeds", {})[str(index)] = problems
    if total > 6000:
        errors.setdefault("embeds", {}).setdefault("_errors", []).append(
            {"code": "MAX_EMBED_SIZE_EXCEEDED", "message": "Embed size exceeds maximum size of 6000"}
        )
    return errors


def _teams_problem(body: Any) -> str | None:
    """What Teams (and the workflow template's trigger schema) refuses in a card message."""
    if not isinstance(body, dict) or body.get("type") != "message":
        return "The property 'type' must be 'message'."
    attachments = body.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return "Required property 'attachments' expects a non-empty array."
    for attachment in attachments:
        if attachment.get("contentType") != "application/vnd.microsoft.card.adaptive":
            return "An attachment's contentType must be application/vnd.microsoft.card.adaptive."
        card = attachment.get("content")
        if not isinstance(card, dict) or card.get("type") != "AdaptiveCard" or not card.get("version"):
            return "An attachment's content must be an AdaptiveCard with a version."
        if not isinstance(card.get("body"), list):
            return "An AdaptiveCard's body must be an array."
    if len(json.dumps(body)) > 28_000:
        return "Message size exceeds the 28 KB limit."
    return None


def _github_invalid(resource: str, field_name: str, code: str) -> web.Response:
    body = {
        "message": "Validation Failed",
        "errors": [{"resource": resource, "code": code, "field": field_name}],
        "documentation_url": "https://docs.github.com/rest/issues/issues#create-an-issue",
        "status": "422",
    }
    return _json(body, 422)


def _pagerduty_errors(body: dict) -> list[str]:
    errors = []
    key = body.get("routing_key")
    if not key:
        errors.append("'routing_key' is missing or blank")
    elif len(key) != 32:
        errors.append("Length of 'routing_key' is incorrect (should be 32 characters)")
    action = body.get("event_action")
    if action not in ("trigger", "acknowledge", "resolve"):
        errors.append("'event_action' is invalid (must be one of: trigger, acknowledge, resolve)")
    if action in ("acknowledge", "resolve") and not body.get("dedup_key"):
        errors.append("'dedup_key' is missing or blank")
    if len(body.get("dedup_key") or "") > 255:
        errors.append("'dedup_key' is too long (must be at most 255 characters)")
    if action == "trigger":
        payload = body.get("payload")
        if not isinstance(payload, dict):
            errors.append("'payload' is missing or blank")
        else:
            for name in ("summary", "source"):
                if not payload.get(name):
                    errors.append(f"'payload.{name}' is missing or blank")
            if len(payload.get("summary") or "") > 1024:
                errors.append("'payload.summary' is too long (must be at most 1024 characters)")
            if payload.get("severity") not in PD_SEVERITIES:
                errors.append("'payload.severity' is invalid (must be one of: critical, error, warning, info)")
    return errors


def _basic_auth(request: web.Request) -> tuple[str, str]:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return "", ""
    try:
        user, _, password = base64.b64decode(value).decode().partition(":")
    except ValueError:
        return "", ""
    return user, password


# --- SMTP ---------------------------------------------------------------------------------------------


class SmtpStandin:
    """An SMTP server in the running event loop: `security` "starttls" (STARTTLS offered and
    required before AUTH), "tls" (TLS from the first byte) or "none"."""

    username = "pulser"
    password = "smtp-PaSsWoRd-4-tests"

    def __init__(self, security: str, server_context: ssl.SSLContext | None) -> None:
        self.security = security
        self.server_context = server_context
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.logins: list[str] = []
        self.port = 0
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        starttls = self.security == "starttls"

        def protocol() -> SMTP:
            return SMTP(
                self,
                hostname="smtp.standin.test",
                tls_context=self.server_context if starttls else None,
                require_starttls=starttls,
                auth_require_tls=starttls,  # with implicit TLS the whole session is encrypted already
                authenticator=self._authenticate,
                loop=loop,
            )

        ssl_context = self.server_context if self.security == "tls" else None
        self._server = await loop.create_server(protocol, "127.0.0.1", 0, ssl=ssl_context)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        if isinstance(auth_data, LoginPassword) and (auth_data.login.decode(), auth_data.password.decode()) == (self.username, self.password):
            self.logins.append(auth_data.login.decode())
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    async def handle_RCPT(self, server, session, envelope, address: str, rcpt_options) -> str:
        if address.startswith("unknown@"):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown in local recipient table"
        if address.startswith("greylisted@"):
            return "451 4.7.1 Greylisted, please try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(message_from_bytes(envelope.original_content or envelope.content, policy=policy.default))
        return "250 2.0.0 Ok: queued"


# --- pages to send ------------------------------------------------------------------------------------


def sample_page(**changes: Any):
    """A firing critical incident with every field set; `changes` replace any of them."""
    from alerts.outbound.channels.base import Page

    fields: dict[str, Any] = {
        "action": "trigger",
        "dedup_key": "pulser-incident-42",
        "title": "Checkout answers 500",
        "severity": "critical",
        "status": "firing",
        "service": "checkout",
        "env": "production",
        "source": "sentry",
        "description": "ZeroDivisionError in cart.total()\n<script>alert(1)</script> & more",
        "link": "https://pulser.example.com/incidents/42",
        "incident_id": 42,
        "count": 3,
        "first_seen": datetime(2026, 3, 1, 12, 30, tzinfo=timezone.utc),
        "labels": {"team": "payments"},
    }
    fields.update(changes)
    return Page(**fields)

"""Async client for the Heroku Platform API v3: what the Heroku poller and the Rollback button call.

Why a hand-written client: we need six endpoints, and the things that matter here are policies no
generic client gets right for us — which failures are safe to retry, how to stay inside the
per-account rate budget, and never holding on to config-var values.

Policies (all waiting goes through the injected `sleep`, so tests run instantly):

- Retries. GETs are retried on 5xx and on network errors (`httpx.TransportError`) with exponential
  backoff (0.5 s, 1 s, 2 s, … plus up to 10 % jitter), at most `max_retries` times. A POST creates
  something (a rollback is a new release), so once Heroku has answered — even with a 5xx — it is
  never repeated; only failures that happened before the request left (`httpx.ConnectError`,
  `ConnectTimeout`, `PoolTimeout`) are retried.
- 429 `rate_limit`. Heroku refused the request without acting on it, so any method waits and
  retries: `Retry-After` seconds when given, else the refill time of one token (60/75 s, Heroku
  refills ~75 a minute) doubling per try; never more than 60 s per wait. After `max_retries` waits
  it raises `HerokuError(429, "rate_limit")`.
- Rate awareness. Every response's `RateLimit-Remaining` goes into `budget`. Before a request, the
  remaining budget is estimated (last figure + refill since it was seen); below `low_budget` the
  client sleeps `(low_budget - remaining) / low_budget` seconds (at most 2 s), so a poller sharing
  an account with people and CI slows down smoothly instead of hitting zero.
- Other 4xx raise `HerokuError` at once, with Heroku's `id` and `message` (`http_<status>` when the
  body is not JSON).
- Secrets. The API key lives only in the request header. Response bodies are never logged, and
  config-var values are reduced to SHA-256 digests the moment they arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable
from urllib.parse import quote

import httpx
import structlog

from alerts.tls import client_context

log = structlog.get_logger(__name__)

ACCEPT = "application/vnd.heroku+json; version=3"
USER_AGENT = "pulser"
DEFAULT_BASE_URL = "https://api.heroku.com"

BACKOFF_FIRST = 0.5
TOKEN_REFILL_SECONDS = 60 / 75  # Heroku refills the bucket at about 75 tokens a minute
MAX_RATE_LIMIT_WAIT = 60.0
MAX_SPACING = 2.0
MAX_PAGES = 1000  # a Next-Range that never ends is a server bug, not a reason to loop forever

# Failures where the request certainly never reached Heroku: safe to repeat even for a POST.
NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

Sleep = Callable[[float], Awaitable[Any]]


class HerokuError(Exception):
    """Heroku said no, or could not be reached. `str()` is one line meant for people."""

    def __init__(self, status: int, id: str, message: str = "") -> None:
        self.status = status
        self.id = id
        self.message = " ".join(str(message).split())[:300]
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"Heroku {self.status} {self.id}" if self.status else f"Heroku {self.id}"
        return f"{where}: {self.message}" if self.message else where


class HerokuNotConfigured(HerokuError):
    """No API key: the Heroku features are off, and nothing was sent."""

    def __init__(self) -> None:
        super().__init__(0, "not_configured", "HEROKU_API_KEY is not set, so Heroku monitoring is off.")


@dataclass
class RateBudget:
    """The last `RateLimit-Remaining` Heroku reported, and when (time.monotonic())."""

    remaining: int | None = None
    observed_at: float = field(default_factory=time.monotonic)

    def estimate(self, now: float) -> float | None:
        """Remaining tokens now, counting the refill since the figure was seen."""
        if self.remaining is None:
            return None
        return self.remaining + max(0.0, now - self.observed_at) / TOKEN_REFILL_SECONDS


class HerokuClient:
    """One Heroku account's API client. Create once, share, `close()` on shutdown."""

    def __init__(
        self,
        api_key: str | None,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: float = 10.0,
        max_retries: int = 3,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        low_budget: int = 200,
    ) -> None:
        self._api_key = api_key or None
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.low_budget = low_budget
        self.budget = RateBudget()
        self.requests_made = 0
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            verify=client_context(),
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout),
            transport=transport,
            headers={"Accept": ACCEPT, "User-Agent": USER_AGENT},
        )

    def __repr__(self) -> str:  # the key must not show up in a traceback's locals either
        return f"HerokuClient(base_url={self.base_url!r}, configured={self.configured})"

    @property
    def configured(self) -> bool:
        return self._api_key is not None

    async def close(self) -> None:
        await self._http.aclose()

    # --- generic verbs ----------------------------------------------------------------------------

    async def get(self, path: str) -> Any:
        """GET one object (or whatever the endpoint returns as a whole)."""
        response = await self._request("GET", path)
        return _json(response)

    async def list(self, path: str, *, range_: str | None = None) -> list[dict]:
        """GET a list, following 206 + `Next-Range` until Heroku answers 200 with the last page."""
        items: list[dict] = []
        async for page in self._pages(path, range_):
            items.extend(page)
        return items

    async def post(self, path: str, body: dict) -> Any:
        """POST a JSON body; repeated only if the request never left (see the module docstring)."""
        response = await self._request("POST", path, json=body)
        return _json(response)

    async def rate_limit_remaining(self) -> int:
        """Ask Heroku for the remaining budget; this call does not cost a token."""
        data = await self.get("/account/rate-limits")
        return int(data["remaining"])

    # --- conveniences (app = name or id) ----------------------------------------------------------

    async def app(self, app: str) -> dict:
        return await self.get(_app_path(app))

    async def dynos(self, app: str) -> list[dict]:
        return await self.list(_app_path(app, "dynos"))

    async def formation(self, app: str) -> list[dict]:
        """The process formation: one entry per process type with its `quantity`."""
        return await self.list(_app_path(app, "formation"))

    async def releases(self, app: str, *, newest: int = 10) -> list[dict]:
        """The `newest` latest releases, newest first (the Heroku CLI's own Range)."""
        wanted = max(1, min(newest, 1000))
        items: list[dict] = []
        pages = self._pages(_app_path(app, "releases"), f"version ..; max={wanted}, order=desc")
        async with contextlib.aclosing(pages):
            async for page in pages:
                items.extend(page)
                if len(items) >= wanted:
                    break
        return items[:wanted]

    async def config_var_names_and_digest(self, app: str) -> dict[str, str]:
        """Config var name → SHA-256 hex of its value, enough to see what changed; values are dropped here."""
        response = await self._request("GET", _app_path(app, "config-vars"))
        values = _json(response)
        if not isinstance(values, dict):
            raise HerokuError(response.status_code, "bad_response", "config vars are not an object")
        return {name: _digest(value) for name, value in values.items()}

    async def addons(self, app: str) -> list[dict]:
        return await self.list(_app_path(app, "addons"))

    async def rollback(self, app: str, release_id: str) -> dict:
        """Roll `app` back to the release `release_id`; returns the new release Heroku created."""
        return await self.post(_app_path(app, "releases"), {"release": release_id})

    # --- the request loop -------------------------------------------------------------------------

    async def _pages(self, path: str, range_: str | None):
        """Yield each page of a list endpoint."""
        for _ in range(MAX_PAGES):
            headers = {"Range": range_} if range_ else None
            response = await self._request("GET", path, headers=headers)
            page = _json(response)
            if not isinstance(page, list):
                raise HerokuError(response.status_code, "bad_response", f"expected a list from {path}")
            yield page
            next_range = response.headers.get("Next-Range")
            if response.status_code != 206 or not next_range:
                return
            range_ = next_range
        log.warning("heroku.paging_stopped", path=path, pages=MAX_PAGES)

    async def _request(self, method: str, path: str, *, json: dict | None = None, headers: dict | None = None) -> httpx.Response:
        """Send one logical request, retrying as the module policy says; returns a 2xx response."""
        if self._api_key is None:
            raise HerokuNotConfigured()
        retries_left_5xx = self.max_retries
        retries_left_429 = self.max_retries
        attempt = 0
        just_waited_out_429 = False
        while True:
            if not just_waited_out_429:  # that wait already was the spacing
                await self._space_out()
            just_waited_out_429 = False
            attempt += 1
            self.requests_made += 1
            try:
                response = await self._http.request(
                    method, path, json=json, headers={**(headers or {}), "Authorization": f"Bearer {self._api_key}"}
                )
            except httpx.TransportError as exc:
                retryable = method == "GET" or isinstance(exc, NOT_SENT_ERRORS)
                if not retryable or retries_left_5xx <= 0:
                    unknown = "" if retryable else "; Heroku may have acted on it"
                    raise HerokuError(0, "network_error", f"{method} {path} failed: {type(exc).__name__}{unknown}") from None
                delay = _backoff(self.max_retries - retries_left_5xx)
                retries_left_5xx -= 1
                log.warning("heroku.retry", method=method, path=path, error=type(exc).__name__, attempt=attempt, delay=delay)
                await self._sleep(delay)
                continue

            self._observe_budget(response)
            status = response.status_code
            log.debug("heroku.response", method=method, path=path, status=status, remaining=self.budget.remaining)
            if status < 300:
                return response
            if status == 429:
                if retries_left_429 <= 0:
                    raise _error_from(response)
                delay = _rate_limit_wait(response, self.max_retries - retries_left_429)
                retries_left_429 -= 1
                log.warning("heroku.rate_limited", method=method, path=path, attempt=attempt, delay=delay)
                await self._sleep(delay)
                just_waited_out_429 = True
                continue
            if status >= 500 and method == "GET" and retries_left_5xx > 0:
                delay = _backoff(self.max_retries - retries_left_5xx)
                retries_left_5xx -= 1
                log.warning("heroku.retry", method=method, path=path, status=status, attempt=attempt, delay=delay)
                await self._sleep(delay)
                continue
            raise _error_from(response)

    def _observe_budget(self, response: httpx.Response) -> None:
        """Keep `budget` at Heroku's latest figure; a 429 means empty whatever the header says."""
        remaining: int | None = 0 if response.status_code == 429 else None
        try:
            remaining = int(response.headers["RateLimit-Remaining"]) if remaining is None else remaining
        except (KeyError, ValueError):
            return
        self.budget.remaining = remaining
        self.budget.observed_at = time.monotonic()

    async def _space_out(self) -> None:
        """Below `low_budget`, sleep a little before each request, longer the emptier the bucket."""
        estimate = self.budget.estimate(time.monotonic())
        if estimate is None or estimate >= self.low_budget or self.low_budget <= 0:
            return
        delay = min(MAX_SPACING, (self.low_budget - estimate) / self.low_budget)
        if delay > 0:
            log.debug("heroku.slow_down", remaining=self.budget.remaining, delay=round(delay, 3))
            await self._sleep(delay)


# --- helpers ---------------------------------------------------------------------------------------


def _app_path(app: str, *rest: str) -> str:
    return "/".join(["/apps", quote(app, safe=""), *rest])


def _digest(value: Any) -> str:
    text = value if isinstance(value, str) else ("" if value is None else str(value))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _backoff(retry_index: int) -> float:
    """0.5 s, 1 s, 2 s, … with up to 10 % jitter so a fleet of pollers does not retry in step."""
    return BACKOFF_FIRST * (2**retry_index) * (1 + random.random() * 0.1)


def _rate_limit_wait(response: httpx.Response, retry_index: int) -> float:
    """Retry-After when Heroku gives one, else one token's refill time doubling per try; ≤ 60 s."""
    raw = response.headers.get("Retry-After")
    if raw is not None:
        try:
            return max(0.0, min(MAX_RATE_LIMIT_WAIT, float(raw)))
        except ValueError:
            pass  # an HTTP-date: fall back to our own estimate
    return min(MAX_RATE_LIMIT_WAIT, TOKEN_REFILL_SECONDS * (2**retry_index))


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise HerokuError(response.status_code, "bad_response", "Heroku answered with something that is not JSON") from None


def _error_from(response: httpx.Response) -> HerokuError:
    """Heroku's `{"id", "message"}` error body, or `http_<status>` when the body is something else."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("id"), str):
        return HerokuError(status, body["id"], str(body.get("message") or ""))
    return HerokuError(status, f"http_{status}", response.reason_phrase or "")

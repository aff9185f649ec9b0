"""Socket Mode, ledger first: every envelope is recorded in Postgres before Bolt sees it.

`LedgerSocketModeHandler` reads every text frame itself (a raw message listener in place of the
SDK's request listener, which silently drops frames without type, payload or envelope_id). Every
envelope with an envelope_id is acked, whatever happens to it, so Slack never redelivers it:
- a malformed one (bot/socket_envelopes.py says what is wrong) is recorded `failed` with that
  reason and no retry; one without an id cannot be acked and is recorded and logged all the same;
- a duplicate gets a bare ack and no processing;
- a new one is dispatched to Bolt with `ledger_pk` and `envelope_id` in its context; Bolt's listener
  start, error and completion hooks report back, so the row ends `processed`, or `failed` with the
  error. One no listener matches (a bogus action_id or callback_id) is `failed` without retry.

`ConnectionSupervisor` watches the connection. slack_sdk reconnects by itself after a close frame
or a `disconnect` message, but after a failed handshake it retries the *same* URL forever; the
supervisor clears that URL so the SDK's next try asks `apps.connections.open` for a fresh one, and
kicks a reconnect itself when the SDK is not trying at all.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable

import asyncpg
import structlog
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import send_async_response
from slack_bolt.adapter.socket_mode.internals import build_headers
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.listener.async_listener_completion_handler import AsyncListenerCompletionHandler
from slack_bolt.listener.async_listener_start_handler import AsyncListenerStartHandler
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.request.internals import extract_team_id
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from bot.metrics import Metrics
from bot.socket_envelopes import Frame, describe, envelope_problem, read_frame
from storage import envelopes
from storage.database import DATABASE_ERRORS
from storage.envelopes import Envelope

log = structlog.get_logger(__name__)

SOURCE = "slack"
DB_DOWN_TEXT = ":warning: Pulser cannot reach its database right now, so it did nothing. Try again in a minute."
LISTENER_FAILED_TEXT = (
    ":warning: Something went wrong while Pulser ran this command. The error is in Pulser's log;"
    " try again, and tell your Pulser admin if it keeps happening."
)
NO_LISTENER = "no listener for "


def ledger_key(req_type: str, payload: dict, envelope_id: str) -> str:
    """The idempotency key of an envelope: Events API retries keep `event_id` but may carry a new
    envelope_id, so events dedupe on event_id; commands and interactivity have only envelope_id."""
    if req_type == "events_api" and payload.get("event_id"):
        return "event:" + str(payload["event_id"])
    return envelope_id


@dataclass
class _Outcome:
    started: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    error: str | None = None
    ack_response: Any = None


class OutcomeTracker:
    """Collects what Bolt's listener hooks report for each in-flight ledger row."""

    def __init__(self) -> None:
        self._outcomes: dict[int, _Outcome] = {}

    def open(self, ledger_pk: int) -> _Outcome:
        outcome = self._outcomes[ledger_pk] = _Outcome()
        return outcome

    def close(self, ledger_pk: int) -> None:
        self._outcomes.pop(ledger_pk, None)

    def _for(self, request: AsyncBoltRequest) -> _Outcome | None:
        ledger_pk = request.context.get("ledger_pk") if request is not None else None
        return self._outcomes.get(ledger_pk) if ledger_pk is not None else None

    def started(self, request: AsyncBoltRequest) -> None:
        if outcome := self._for(request):
            outcome.started.set()

    def failed(self, request: AsyncBoltRequest, error: BaseException) -> None:
        if outcome := self._for(request):
            outcome.error = f"{type(error).__name__}: {error}"
            outcome.ack_response = request.context.ack.response

    def completed(self, request: AsyncBoltRequest) -> None:
        if outcome := self._for(request):
            # Bolt 1.30 resets ack.response to None when a listener raises after acking; if its
            # dispatcher had not polled the ack yet, the ack would be lost. Put it back.
            if outcome.ack_response is not None and request.context.ack.response is None:
                request.context.ack.response = outcome.ack_response
            outcome.done.set()

    @property
    def in_flight(self) -> list[int]:
        return list(self._outcomes)


class _StartHook(AsyncListenerStartHandler):
    def __init__(self, tracker: OutcomeTracker):
        self.tracker = tracker

    async def handle(self, request: AsyncBoltRequest, response: Any) -> None:
        self.tracker.started(request)


class _CompletionHook(AsyncListenerCompletionHandler):
    def __init__(self, tracker: OutcomeTracker):
        self.tracker = tracker

    async def handle(self, request: AsyncBoltRequest, response: Any) -> None:
        self.tracker.completed(request)


def attach_outcome_hooks(app: AsyncApp, tracker: OutcomeTracker) -> None:
    """Wire Bolt's listener lifecycle into the tracker.

    The error handler is public API (`app.error`); start/completion hooks have no public setter in
    slack-bolt 1.30, hence the pinned version and these two private attributes.
    """

    async def on_error(error: BaseException, request: AsyncBoltRequest, body: dict) -> None:
        tracker.failed(request, error)
        log.error(
            "slack.listener_failed",
            error=f"{type(error).__name__}: {error}",
            envelope_id=request.context.get("envelope_id") if request else None,
            exc_info=error,
        )

    app.error(on_error)
    runner = app._async_listener_runner  # noqa: SLF001 — see docstring
    runner.listener_start_handler = _StartHook(tracker)
    runner.listener_completion_handler = _CompletionHook(tracker)


class ReconnectBackoff:
    """Every request for a Socket Mode URL (`apps.connections.open`) waits its turn here.

    Three parties may want a new connection at once: the SDK's connect loop, the SDK's session
    monitor and our supervisor. Letting each retry on its own timer made ~70 calls a minute while
    Slack was unreachable. Here they share one gate: the first try after a drop goes at once (a
    single drop reconnects in about a second), then each further try waits twice as long as the
    last, up to `cap`, with jitter so that many Pulsers do not retry in step. A connection that
    holds (`connected`) resets it.
    """

    def __init__(self, *, first: float = 1.0, cap: float = 30.0, rng: random.Random | None = None, clock=time.monotonic):
        self.first = first
        self.cap = cap
        self._rng = rng or random.Random()
        self._clock = clock
        self._lock = asyncio.Lock()
        self.failures = 0  # tries since the last connection that held
        self._next_at = 0.0
        self.attempts = 0

    def delay(self) -> float:
        """How long the next try waits after the previous one: 0, then ~1, 2, 4 … `cap` seconds."""
        if self.failures == 0:
            return 0.0
        ceiling = min(self.cap, self.first * 2 ** (self.failures - 1))
        return ceiling * self._rng.uniform(0.5, 1.0)

    async def turn(self) -> None:
        async with self._lock:
            wait = self._next_at - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)
            self.attempts += 1
            self.failures += 1
            self._next_at = self._clock() + self.delay()

    def connected(self) -> None:
        self.failures = 0
        self._next_at = 0.0


class LedgerSocketModeHandler(AsyncSocketModeHandler):
    """Bolt's Socket Mode handler with the envelope ledger in front. Build it inside a running loop."""

    # How long a matched listener may run before its row is marked failed.
    listener_timeout: float = 300.0
    # How long after dispatch a listener has to start; none starting means nothing matched.
    start_grace: float = 1.0

    def __init__(
        self,
        app: AsyncApp,
        app_token: str,
        *,
        pool: asyncpg.Pool,
        metrics: Metrics,
        worker: str,
        max_attempts: int,
        ping_interval: float = 2.0,
    ):
        super().__init__(app, app_token, ping_interval=ping_interval)
        self.pool = pool
        self.metrics = metrics
        self.worker = worker
        self.max_attempts = max_attempts
        self.tracker = OutcomeTracker()
        self.accepting = True
        attach_outcome_hooks(app, self.tracker)
        # One entry point for every frame: the SDK's request listener never sees a frame that lacks
        # type, payload or envelope_id, so nothing would ack (or record) it.
        self.client.socket_mode_request_listeners.remove(self.handle)
        self.client.message_listeners.append(self.on_frame)
        # Whoever asks for a new Socket Mode URL waits for the shared backoff first.
        self.backoff = ReconnectBackoff()
        issue_url = self.client.issue_new_wss_url

        async def issue_url_in_turn(*args, **kwargs):
            await self.backoff.turn()
            return await issue_url(*args, **kwargs)

        self.client.issue_new_wss_url = issue_url_in_turn  # type: ignore[method-assign]

    async def on_frame(self, client: AsyncBaseSocketModeClient, message: dict, raw_message: str) -> None:
        """Every text frame the SDK could read. It parses only frames starting with `{` (else
        `message` is {}), so anything else is parsed here again to say what it is."""
        try:
            if raw_message.startswith("{"):
                frame = Frame(message=message, raw=raw_message, problem=envelope_problem(message))
            else:
                frame = read_frame(raw_message)
            if frame.is_connection_frame:
                return
            if frame.problem is None:
                request = SocketModeRequest.from_dict(frame.message)
                if request is not None:
                    await self.handle(client, request)
                    return
            await self.reject(client, frame)
        except Exception as exc:  # one bad frame must never take the connection down
            log.error("socket.frame_failed", error=f"{type(exc).__name__}: {exc}", exc_info=exc)

    async def reject(self, client: AsyncBaseSocketModeClient, frame: Frame) -> None:
        """A malformed envelope: recorded `failed` with its reason (no retry can fix it), then acked
        so Slack does not redeliver it. Without an envelope_id there is nothing to ack with."""
        if not self.accepting:
            return
        started_at = time.perf_counter()
        bound = log.bind(envelope_id=frame.envelope_id, type=frame.type or None)
        try:
            await self._record_malformed(frame, bound)
        finally:
            if frame.envelope_id is not None:
                await client.send_socket_mode_response(SocketModeResponse(envelope_id=frame.envelope_id))
                self.metrics.ack_latency.observe(time.perf_counter() - started_at)

    async def _record_malformed(self, frame: Frame, bound: Any) -> None:
        problem = frame.problem or "malformed envelope"
        payload = frame.message if frame.is_object else {"frame": frame.raw[:4000]}
        try:
            ledger_pk = await envelopes.record_envelope(
                self.pool,
                source=SOURCE,
                scope=_team_of(frame.payload),
                envelope_id=frame.ledger_id(),
                kind=frame.type,
                payload=payload,
                headers={"envelope_id": frame.envelope_id, "malformed": problem},
                claimed_by=self.worker,
            )
            if ledger_pk is None:
                self.metrics.envelopes.labels(SOURCE, "duplicate").inc()
                bound.info("ledger.duplicate")
                return
            await envelopes.mark_failed(self.pool, ledger_pk, problem, max_attempts=1)
        except DATABASE_ERRORS as exc:
            bound.error("ledger.record_failed", problem=problem, error=f"{type(exc).__name__}: {exc}")
        self.metrics.envelopes.labels(SOURCE, "failed").inc()
        self.metrics.errors.labels("envelope").inc()
        bound.warning("socket.envelope_malformed", problem=problem, acked=frame.envelope_id is not None)

    async def handle(self, client: AsyncBaseSocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        started_at = time.perf_counter()
        if not self.accepting:
            return  # shutting down: no ack, so Slack redelivers the envelope to another connection
        scope = _team_of(req.payload)
        key = ledger_key(req.type, req.payload, req.envelope_id)
        bound = log.bind(envelope_id=req.envelope_id, type=req.type, team=scope)
        try:
            ledger_pk = await envelopes.record_envelope(
                self.pool,
                source=SOURCE,
                scope=scope,
                envelope_id=key,
                kind=req.type,
                payload=req.payload,
                headers={"envelope_id": req.envelope_id, "retry_attempt": req.retry_attempt},
                claimed_by=self.worker,
                lease=timedelta(seconds=self.listener_timeout + 60),
            )
        except DATABASE_ERRORS as exc:
            self.metrics.envelopes.labels(SOURCE, "failed").inc()
            bound.error("ledger.record_failed", error=f"{type(exc).__name__}: {exc}")
            if req.type == "slash_commands":
                await client.send_socket_mode_response(
                    SocketModeResponse(req.envelope_id, payload={"response_type": "ephemeral", "text": DB_DOWN_TEXT})
                )
            return  # events and clicks get no ack: Slack retries events, and a click shows an error

        if ledger_pk is None:
            self.metrics.envelopes.labels(SOURCE, "duplicate").inc()
            bound.info("ledger.duplicate")
            await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
            return

        outcome = self.tracker.open(ledger_pk)
        unhandled = False
        try:
            request = self._bolt_request(req.payload, build_headers(req), ledger_pk, req.envelope_id)
            response = await self.app.async_dispatch(request)
            # Bolt sends no ack for anything but a 200: a 404 (no listener matched, or one that
            # never called ack()) or a 500 (it raised first). Slack would redeliver; ack anyway.
            if response.status != 200:
                unhandled = response.status == 404 and not outcome.started.is_set()
                await client.send_socket_mode_response(self._fallback_ack(req, unhandled))
            else:
                await send_async_response(client, req, response, started_at)
            self.metrics.ack_latency.observe(time.perf_counter() - started_at)
            error = None if unhandled else await self._await_outcome(outcome)
        finally:
            self.tracker.close(ledger_pk)
        if unhandled:
            error = NO_LISTENER + describe(req.type, req.payload)
            await self._record_outcome(ledger_pk, error, bound, retry=False)
            return
        await self._record_outcome(ledger_pk, error, bound)

    @staticmethod
    def _fallback_ack(req: SocketModeRequest, unhandled: bool) -> SocketModeResponse:
        """The ack Bolt did not send: a failed slash command tells its user so; anything else
        (nothing listens, or a click or modal whose listener failed) gets a bare ack."""
        if req.type == "slash_commands" and not unhandled:
            return SocketModeResponse(req.envelope_id, payload={"response_type": "ephemeral", "text": LISTENER_FAILED_TEXT})
        return SocketModeResponse(envelope_id=req.envelope_id)

    async def reprocess(self, row: Envelope) -> None:
        """Ledger-worker processor: dispatch a stored envelope again. Its ack went (or not) long ago,
        so none is sent now; listeners can see `context["ledger_retry"]`. Raises on failure."""
        if row.headers.get("malformed"):  # its failure was not recorded in time; no retry can fix it
            raise RuntimeError(str(row.headers["malformed"]))
        outcome = self.tracker.open(row.id)
        try:
            request = self._bolt_request(row.payload, None, row.id, str(row.headers.get("envelope_id", row.envelope_id)))
            request.context["ledger_retry"] = True
            await self.app.async_dispatch(request)
            error = await self._await_outcome(outcome)
        finally:
            self.tracker.close(row.id)
        if error:
            raise RuntimeError(error)

    def _bolt_request(self, payload: dict, headers: Any, ledger_pk: int, envelope_id: str) -> AsyncBoltRequest:
        return AsyncBoltRequest(
            mode="socket_mode",
            body=payload,
            headers=headers,
            context={"ledger_pk": ledger_pk, "envelope_id": envelope_id},
        )

    async def _await_outcome(self, outcome: _Outcome) -> str | None:
        """Wait until the listener Bolt started has finished; returns its error, if any."""
        if outcome.error and not outcome.started.is_set():
            return outcome.error  # a middleware failed before any listener ran
        try:
            await asyncio.wait_for(outcome.started.wait(), self.start_grace)
        except asyncio.TimeoutError:
            return outcome.error  # no listener matched (or a middleware answered): nothing more will run
        try:
            await asyncio.wait_for(outcome.done.wait(), self.listener_timeout)
        except asyncio.TimeoutError:
            return outcome.error or f"listener still running after {self.listener_timeout:.0f} s"
        return outcome.error

    async def _record_outcome(self, ledger_pk: int, error: str | None, bound: Any, *, retry: bool = True) -> None:
        try:
            if error is None:
                await envelopes.mark_processed(self.pool, ledger_pk)
                self.metrics.envelopes.labels(SOURCE, "processed").inc()
            else:
                max_attempts = self.max_attempts if retry else 1
                retry_at = await envelopes.mark_failed(self.pool, ledger_pk, error, max_attempts=max_attempts)
                self.metrics.envelopes.labels(SOURCE, "failed").inc()
                self.metrics.errors.labels("slack_listener").inc()
                bound.warning("ledger.failed", error=error, next_attempt_at=retry_at)
        except DATABASE_ERRORS as exc:
            # The row keeps its lease; the ledger worker picks it up when the lease runs out.
            bound.error("ledger.outcome_not_recorded", error=f"{type(exc).__name__}: {exc}")

    async def drain(self, timeout: float) -> list[int]:
        """Stop taking envelopes and wait for in-flight ones; returns the ledger ids still unfinished."""
        self.accepting = False
        deadline = time.monotonic() + timeout
        while self.tracker.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return self.tracker.in_flight


def _team_of(payload: Any) -> str:
    """The workspace an envelope belongs to ('' when a garbled payload does not say)."""
    if not isinstance(payload, dict):
        return ""
    try:
        team = extract_team_id(payload)
    except (AttributeError, TypeError, KeyError, IndexError):  # Bolt's reader assumes well-formed fields
        return ""
    return team if isinstance(team, str) else ""


class ConnectionSupervisor:
    """Keeps the Socket Mode connection up and reports its state (for /health and metrics)."""

    def __init__(
        self,
        client: AsyncBaseSocketModeClient,
        metrics: Metrics,
        *,
        poll_interval: float = 0.25,
        fresh_url_after: float = 1.0,
        kick_after: float = 2.5,
        on_change: Callable[[bool], None] | None = None,
        backoff: ReconnectBackoff | None = None,
        holds_after: float = 5.0,
    ):
        self.client = client
        # A connection that has stayed up this long resets the reconnect backoff.
        self.backoff = backoff
        self.holds_after = holds_after
        self.up_since: float | None = None
        self.metrics = metrics
        self.poll_interval = poll_interval
        self.fresh_url_after = fresh_url_after
        self.kick_after = kick_after
        self.on_change = on_change or (lambda connected: None)
        self.connected = False
        self.ever_connected = False
        self.down_since: float | None = time.monotonic()
        self._kick: asyncio.Task | None = None
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="socket-supervisor")

    async def stop(self) -> None:
        for task in (self._task, self._kick):
            if task and not task.done():
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass

    async def check(self) -> bool:
        """One supervision step; returns whether the socket is connected."""
        connected = await self.client.is_connected()
        now = time.monotonic()
        if connected != self.connected:
            self.connected = connected
            self.metrics.socket_connected.set(1 if connected else 0)
            if connected:
                if self.ever_connected:
                    self.metrics.socket_reconnects.inc()
                down_for = now - self.down_since if self.down_since else 0.0
                log.info("socket.connected", reconnect=self.ever_connected, down_seconds=round(down_for, 3))
                self.ever_connected = True
                self.down_since = None
                self.up_since = now
            else:
                self.down_since = now
                self.up_since = None
                log.warning("socket.disconnected")
            self.on_change(connected)
        if connected and self.backoff is not None and self.up_since is not None and now - self.up_since >= self.holds_after:
            self.backoff.connected()
        if not connected and not self.client.closed:
            down_for = now - (self.down_since or now)
            if down_for >= self.fresh_url_after:
                # The SDK re-uses its last URL on every retry; None makes its next try fetch a new one.
                self.client.wss_uri = None  # type: ignore[assignment]
            lock_free = not self.client.connect_operation_lock.locked()
            if down_for >= self.kick_after and lock_free and (self._kick is None or self._kick.done()):
                self._kick = asyncio.create_task(self._reconnect(), name="socket-kick")
        return connected

    async def _run(self) -> None:
        while True:
            try:
                await self.check()
            except Exception as exc:  # the supervisor must outlive any one failure
                log.error("socket.supervisor_error", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(self.poll_interval)

    async def _reconnect(self) -> None:
        log.info("socket.reconnect_forced")
        try:
            # Long enough to wait out the reconnect backoff's longest turn, then connect.
            cap = self.backoff.cap if self.backoff is not None else 0.0
            await asyncio.wait_for(self.client.connect_to_new_endpoint(force=True), timeout=cap + 15)
        except Exception as exc:
            log.warning("socket.reconnect_failed", error=f"{type(exc).__name__}: {exc}")

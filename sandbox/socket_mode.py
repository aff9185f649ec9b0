"""The Socket Mode half: tickets, the ``/link/`` WebSocket, envelopes out, acks back.

Behaviours copied from how slack_sdk's aiohttp SocketModeClient actually works:

* The SDK retries a failed handshake forever on the *same* URL, so tickets stay valid until
  ``kill_issued_urls()``; a burned ticket answers HTTP 401, which is what strands a real client.
* The SDK acks on whatever socket is current, which after a reconnect may not be the one the
  envelope went out on, so acks are matched by ``envelope_id`` across all connections.
* The SDK measures staleness from pong payloads, so the server socket uses ``autoping=True``
  (aiohttp echoes the ping payload).
* Frames the SDK reads must start with ``{``; ``json.dumps`` of a dict always does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from .state import Notifier

log = logging.getLogger("sandbox.socket_mode")

#: Slack closes a socket roughly this long after a ``disconnect`` frame if the client has not.
DISCONNECT_GRACE_SECONDS = 1.0


@dataclass
class Connection:
    """One accepted WebSocket. ``draining`` ones (told to disconnect) get no new envelopes."""

    number: int
    ticket: str
    ws: web.WebSocketResponse
    transport: asyncio.BaseTransport | None
    draining: bool = False
    frames_in: int = 0
    closed_event: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def open(self) -> bool:
        return not self.ws.closed and not self.closed_event.is_set()


class SocketModeHub:
    """Owns every Socket Mode connection and the envelope/ack bookkeeping."""

    def __init__(self, *, app_id: str, notifier: Notifier) -> None:
        self.app_id = app_id
        self._notifier = notifier
        self.tickets: dict[str, bool] = {}  # ticket -> still accepted
        self.connections: list[Connection] = []
        self.connections_opened = 0
        self.rejected_handshakes = 0
        self.envelopes_sent: list[dict[str, Any]] = []
        self.acks: list[dict[str, Any]] = []
        self.stray_acks: list[dict[str, Any]] = []
        self.other_frames: list[Any] = []
        self._pending: dict[str, deque[asyncio.Future[dict[str, Any]]]] = {}
        self._round_robin = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False

    # ---- tickets ----------------------------------------------------------------------

    def issue_url(self, host: str) -> str:
        ticket = str(uuid.uuid4())
        self.tickets[ticket] = True
        return f"ws://{host}/link/?ticket={ticket}&app_id={self.app_id}"

    def kill_issued_urls(self) -> None:
        for ticket in self.tickets:
            self.tickets[ticket] = False
        self.drop_reset()

    # ---- connection state -------------------------------------------------------------

    def open_connections(self) -> list[Connection]:
        return [c for c in self.connections if c.open]

    def usable_connections(self) -> list[Connection]:
        return [c for c in self.connections if c.open and not c.draining]

    # ---- the /link/ endpoint ----------------------------------------------------------

    async def handle_link(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if self._stopping or not self.tickets.get(ticket):
            self.rejected_handshakes += 1
            return web.json_response({"ok": False, "error": "invalid_ticket"}, status=401)

        ws = web.WebSocketResponse(autoping=True, timeout=2.0)
        await ws.prepare(request)
        conn = Connection(number=self.connections_opened + 1, ticket=ticket, ws=ws, transport=request.transport)
        hello = {
            "type": "hello",
            "num_connections": len(self.open_connections()) + 1,
            "connection_info": {"app_id": self.app_id},
            "debug_info": {"host": "sandbox", "build_number": 1, "approximate_connection_time": 3600},
        }
        try:
            await ws.send_str(json.dumps(hello))
        except Exception:  # the client vanished during the handshake
            return ws
        self.connections.append(conn)
        self.connections_opened += 1
        self._notifier.notify()
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    conn.frames_in += 1
                    self._on_text(msg.data)
                elif msg.type == WSMsgType.ERROR:
                    break
        except Exception:  # a reset mid-read; the socket is gone either way
            log.debug("sandbox: connection %s ended abruptly", conn.number, exc_info=True)
        finally:
            conn.closed_event.set()
            with contextlib.suppress(ValueError):
                self.connections.remove(conn)
            self._notifier.notify()
        return ws

    def _on_text(self, data: str) -> None:
        try:
            frame = json.loads(data)
        except ValueError:
            self.other_frames.append(data)
            return
        if not isinstance(frame, dict) or "envelope_id" not in frame:
            self.other_frames.append(frame)
            return
        self.acks.append(frame)
        waiters = self._pending.get(str(frame["envelope_id"]))
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(frame)
                break
        else:
            self.stray_acks.append(frame)
        if waiters is not None and not waiters:
            self._pending.pop(str(frame["envelope_id"]), None)
        self._notifier.notify()

    # ---- envelopes out ----------------------------------------------------------------

    async def send_envelope(self, envelope: dict[str, Any], timeout: float) -> dict[str, Any]:
        envelope_id = envelope.get("envelope_id")
        if not envelope_id:
            raise ValueError("envelope has no envelope_id")
        return await self._deliver(json.dumps(envelope), envelope, envelope_id, timeout)

    async def send_frame(self, frame: Any, timeout: float) -> dict[str, Any] | None:
        """Send any frame as it is (a ``str`` verbatim, anything else as JSON): a malformed envelope,
        a bare list, garbage. Waits for the ack when the frame carries a non-empty ``envelope_id``;
        without one nothing can be acked, so it returns None once the frame is on the wire."""
        text = frame if isinstance(frame, str) else json.dumps(frame)
        envelope_id = frame.get("envelope_id") if isinstance(frame, dict) else None
        if envelope_id in (None, ""):
            await self._deliver(text, frame, None, timeout)
            return None
        return await self._deliver(text, frame, envelope_id, timeout)

    async def _deliver(self, text: str, envelope: Any, envelope_id: Any, timeout: float) -> Any:
        """Put ``text`` on one usable socket; with an ``envelope_id``, wait for its ack."""
        targets = self.usable_connections()
        if not targets:
            raise RuntimeError("no Socket Mode connection is open (is the bot connected?)")
        if envelope_id is None:
            await self._send_text(text, envelope, targets)
            return None

        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        waiters = self._pending.setdefault(str(envelope_id), deque())
        waiters.append(fut)
        try:
            await self._send_text(text, envelope, targets)
            return await asyncio.wait_for(fut, timeout)
        finally:
            if fut in waiters:
                waiters.remove(fut)
            if not waiters and self._pending.get(str(envelope_id)) is waiters:
                del self._pending[str(envelope_id)]

    async def _send_text(self, text: str, envelope: Any, targets: list[Connection]) -> None:
        start = self._round_robin
        self._round_robin += 1
        for i in range(len(targets)):
            conn = targets[(start + i) % len(targets)]
            try:
                await conn.ws.send_str(text)
            except Exception:  # closing under us; try the next socket
                continue
            self.envelopes_sent.append(envelope)
            return
        raise RuntimeError("no Socket Mode connection accepted the envelope")

    # ---- fault injection --------------------------------------------------------------

    async def drop(self, mode: str, reason: str) -> None:
        if mode == "close":
            conns = self.open_connections()
            for conn in conns:
                conn.draining = True
            await asyncio.gather(*(self._close(c, WSCloseCode.GOING_AWAY) for c in conns))
        elif mode == "reset":
            self.drop_reset()
        elif mode == "disconnect":
            frame = json.dumps({"type": "disconnect", "reason": reason, "debug_info": {"host": "sandbox"}})
            for conn in self.open_connections():
                conn.draining = True
                with contextlib.suppress(Exception):
                    await conn.ws.send_str(frame)
                self._spawn(self._close_after_grace(conn))
        else:
            raise ValueError(f"unknown drop mode {mode!r}; use 'close', 'reset' or 'disconnect'")

    def drop_reset(self) -> None:
        """Abort every transport: no close frame, as if the TCP connection were reset."""
        for conn in self.open_connections():
            conn.draining = True
            if conn.transport is not None:
                conn.transport.abort()

    async def _close_after_grace(self, conn: Connection) -> None:
        try:
            await asyncio.wait_for(conn.closed_event.wait(), DISCONNECT_GRACE_SECONDS)
        except asyncio.TimeoutError:
            await self._close(conn, WSCloseCode.GOING_AWAY)

    @staticmethod
    async def _close(conn: Connection, code: int) -> None:
        with contextlib.suppress(Exception):
            await conn.ws.close(code=code, message=b"sandbox")

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- shutdown ---------------------------------------------------------------------

    def reopen(self) -> None:
        """Accept handshakes again after a ``shutdown()`` (the sandbox was restarted)."""
        self._stopping = False

    async def shutdown(self) -> None:
        self._stopping = True
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        conns = self.open_connections()
        await asyncio.gather(*(self._close(c, WSCloseCode.GOING_AWAY) for c in conns))
        for conn in conns:  # a client that never answers the close gets cut off
            if conn.open and conn.transport is not None:
                conn.transport.abort()
        for waiters in self._pending.values():
            for fut in waiters:
                if not fut.done():
                    fut.set_exception(RuntimeError("sandbox stopped before the ack arrived"))
        self._pending.clear()

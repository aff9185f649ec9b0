"""Bearer-token authorization for the admin API (`PULSER_ADMIN_TOKEN`).

With no token configured the API is closed, not open: every call gets 401 saying so. Tokens are
compared in constant time so response timing does not leak how much of a guess was right.
"""

from __future__ import annotations

import hmac
from functools import wraps

from aiohttp import web

from handlers.http.errors import Handler, json_error

ADMIN_TOKEN: web.AppKey[str | None] = web.AppKey("admin_token", str)

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="pulser"'}
INVALID_TOKEN = {"WWW-Authenticate": 'Bearer realm="pulser", error="invalid_token"'}  # RFC 6750


def unauthorized(request: web.Request) -> web.Response | None:
    """None when the request carries the admin token; otherwise the 401 to answer with."""
    expected = request.app.get(ADMIN_TOKEN)
    if not expected:
        return json_error(
            401, "admin API disabled", "PULSER_ADMIN_TOKEN is not set; set it to use /api/*", headers=CHALLENGE
        )
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return json_error(401, "unauthorized", "send Authorization: Bearer <PULSER_ADMIN_TOKEN>", headers=CHALLENGE)
    # surrogatepass: header bytes that are not UTF-8 arrive as surrogates and are simply a wrong token.
    if not hmac.compare_digest(given.strip().encode("utf-8", "surrogatepass"), expected.encode()):
        return json_error(401, "unauthorized", "wrong bearer token", headers=INVALID_TOKEN)
    return None


def require_admin(handler: Handler) -> Handler:
    @wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        refusal = unauthorized(request)
        if refusal is not None:
            return refusal
        return await handler(request)

    return guarded

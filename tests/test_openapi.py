"""The OpenAPI document at `GET /api/openapi.json`: valid OpenAPI 3.1, served without a token,
describing every route the sidecar serves; and the conformance check (tests/openapi_conformance.py)
that holds every answer of the suite to it really catches an answer that differs."""

from __future__ import annotations

import httpx
from aiohttp import web
from openapi_spec_validator import validate

from bot.runtime import Runtime
from handlers.http.openapi import document
from tests import openapi_conformance
from tests.open_sidecar import ADMIN, http, sidecar  # noqa: F401 — fixtures, used by name


def undocumented(app: web.Application) -> set[tuple[str, str]]:
    """(method, path) of the routes `app` serves that the document leaves out. HEAD is aiohttp's
    automatic twin of every GET route, answered like it."""
    paths = document()["paths"]
    served = {
        (route.method.lower(), openapi_conformance.openapi_path(route.resource.canonical))
        for route in app.router.routes()
        if route.method != "HEAD"
    }
    return {(method.upper(), path) for method, path in served if method not in paths.get(path, {})}


def answer(body: dict, status: int = 200):
    async def handler(request: web.Request) -> web.Response:
        return web.json_response(body, status=status)

    return handler


def test_the_document_is_valid_openapi_3_1():
    validate(document())
    assert document()["openapi"] == "3.1.0"


async def test_the_document_is_served_without_a_token(http):
    response = await http.get("/api/openapi.json")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("application/json")
    assert response.json() == document()


async def test_every_route_the_sidecar_serves_is_documented(sidecar: Runtime):
    assert undocumented(sidecar.http_runner.app) == set()


def test_a_route_left_out_of_the_document_is_found():
    app = web.Application()
    app.router.add_get("/health", answer({}))
    app.router.add_post("/api/unheard-of/{id}", answer({}))
    assert undocumented(app) == {("POST", "/api/unheard-of/{id}")}


def test_aiohttp_patterns_become_openapi_parameters():
    assert openapi_conformance.openapi_path("/heartbeat/{uuid}/{signal:start|fail|-?[0-9]+}") == "/heartbeat/{uuid}/{signal}"


async def test_the_suites_answers_are_checked(http):
    before = len(openapi_conformance.seen)
    await http.get("/api/rules", headers=ADMIN)
    await http.get("/api/rules")
    assert openapi_conformance.seen[before:] == [("get", "/api/rules", 200), ("get", "/api/rules", 401)]


async def test_an_answer_that_differs_from_the_document_is_caught():
    """A stand-in /health that answers a body of the wrong shape, checked the way the suite's are."""

    @web.middleware
    async def observed(request: web.Request, handler):
        response = await handler(request)
        await openapi_conformance.check(request, response)
        return response

    app = web.Application(middlewares=[observed])
    app.router.add_get("/health", answer({"status": 1}))
    app.router.add_get("/api/rules", answer({}, status=418))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            await client.get("/health")
            await client.get("/api/rules")
        found = list(openapi_conformance.failures)
    finally:
        openapi_conformance.failures.clear()  # caught on purpose: not this test's failure
        await runner.cleanup()
    assert any(f.startswith("GET /health → 200: response at (top): 'version' is a required property") for f in found)
    assert "GET /api/rules → 418: status not documented (documented: 200, 401, 413, 500, 503)" in found

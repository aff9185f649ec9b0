"""A pytest plugin: every answer a sidecar gives during the suite is checked against the OpenAPI
document (`handlers.http.openapi`), and every request body it accepted (2xx) against the documented
request schema. A mismatch fails the test that caused it, in its teardown, naming the route,
the status and what differs.

It works through `bot.sidecar.RESPONSE_OBSERVERS`, which the production sidecar leaves empty.
Routes the document does not describe are not checked here (tests/test_openapi.py fails for
those); nor are answers to unmatched paths.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import jsonschema
import pytest
from aiohttp import web
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from bot import sidecar
from handlers.http.openapi import document

DOCUMENT_URI = "urn:pulser:openapi"
_PATTERN = re.compile(r"\{([^}:]+):[^}]*\}")

seen: list[tuple[str, str, int]] = []  # (method, path, status) of every checked answer, for the suite's own test
failures: list[str] = []


def openapi_path(canonical: str) -> str:
    """aiohttp's `/heartbeat/{uuid}/{signal:start|fail|-?[0-9]+}` → OpenAPI's `/heartbeat/{uuid}/{signal}`."""
    return _PATTERN.sub(r"{\1}", canonical)


@cache
def _registry() -> Registry:
    return Registry().with_resource(DOCUMENT_URI, Resource.from_contents(document(), default_specification=DRAFT202012))


@cache
def _validator(pointer: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator({"$ref": f"{DOCUMENT_URI}#{pointer}"}, registry=_registry())


def _pointer(*parts: str) -> str:
    return "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


async def check(request: web.Request, response: web.StreamResponse) -> None:
    route = request.match_info.route
    resource = getattr(route, "resource", None)
    if resource is None:
        return  # an unmatched path: the 404/405 of the error middleware, not a documented route
    path = openapi_path(resource.canonical)
    method = "get" if request.method == "HEAD" else request.method.lower()
    operation = document()["paths"].get(path, {}).get(method)
    if operation is None:
        return
    where = f"{request.method} {path} → {response.status}"
    seen.append((method, path, response.status))
    documented = operation["responses"].get(str(response.status))
    if documented is None:
        failures.append(f"{where}: status not documented (documented: {', '.join(operation['responses'])})")
        return
    content = documented.get("content") or {}
    body = getattr(response, "body", None)
    if "application/json" in content and request.method != "HEAD":
        if response.content_type != "application/json":
            failures.append(f"{where}: Content-Type {response.content_type}, documented application/json")
            return
        if isinstance(body, (bytes, bytearray)):
            _validate(where, "response", json.loads(body), _pointer("paths", path, method, "responses", str(response.status),
                                                                    "content", "application/json", "schema"))
    elif "text/plain" in content and not response.content_type.startswith("text/plain"):
        failures.append(f"{where}: Content-Type {response.content_type}, documented text/plain")
    elif not content and body:
        failures.append(f"{where}: a body where the document says there is none")
    schema = ((operation.get("requestBody") or {}).get("content") or {}).get("application/json")
    if schema is not None and 200 <= response.status < 300:
        raw = await request.read()
        if raw:
            _validate(where, "request body", json.loads(raw),
                      _pointer("paths", path, method, "requestBody", "content", "application/json", "schema"))


def _validate(where: str, what: str, value: Any, pointer: str) -> None:
    errors = sorted(_validator(pointer).iter_errors(value), key=lambda e: list(e.path))
    for error in errors[:3]:
        at = "/".join(str(p) for p in error.path) or "(top)"
        failures.append(f"{where}: {what} at {at}: {error.message[:300]}")


sidecar.RESPONSE_OBSERVERS.append(check)


@pytest.fixture(autouse=True)
def responses_match_the_openapi_document():
    """Fails the test whose sidecar answered something the document does not say."""
    failures.clear()
    yield
    if failures:
        found = list(dict.fromkeys(failures))
        failures.clear()
        pytest.fail("answers that do not match the OpenAPI document:\n" + "\n".join(found[:20]), pytrace=False)

"""FakeHeroku's own protocol, seen with a plain HTTP client: what a Heroku client must cope with."""

from __future__ import annotations

from typing import AsyncIterator

import httpx
import pytest

from tests.fake_heroku import FakeHeroku

ACCEPT = "application/vnd.heroku+json; version=3"


@pytest.fixture
async def heroku() -> AsyncIterator[FakeHeroku]:
    async with FakeHeroku(page_size=2) as fake:
        fake.add_app("shop")
        for version in range(1, 6):
            fake.add_release("shop", version)
        yield fake


@pytest.fixture
async def http(heroku: FakeHeroku) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Accept": ACCEPT, "Authorization": f"Bearer {heroku.api_key}"}
    async with httpx.AsyncClient(base_url=heroku.base_url, headers=headers) as client:
        yield client


async def test_a_request_without_the_version_accept_header_is_not_acceptable(heroku, http):
    response = await http.get("/apps/shop", headers={"Accept": "application/json"})
    assert response.status_code == 406 and response.json()["id"] == "not_acceptable"


async def test_a_request_without_the_right_token_is_unauthorized(heroku, http):
    response = await http.get("/apps/shop", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401 and response.json()["id"] == "unauthorized"


async def test_the_recorded_requests_leave_out_the_authorization_header(heroku, http):
    await http.get("/apps/shop")
    assert "Authorization" not in heroku.requests[0].headers


async def test_a_descending_version_range_pages_with_an_exclusive_next_range(heroku, http):
    first = await http.get("/apps/shop/releases", headers={"Range": "version ..; max=10, order=desc"})
    assert first.status_code == 206
    assert [r["version"] for r in first.json()] == [5, 4]
    assert first.headers["Next-Range"] == "version ]4..; max=2, order=desc"

    second = await http.get("/apps/shop/releases", headers={"Range": first.headers["Next-Range"]})
    third = await http.get("/apps/shop/releases", headers={"Range": second.headers["Next-Range"]})
    assert [r["version"] for r in second.json()] == [3, 2]
    assert (third.status_code, [r["version"] for r in third.json()]) == (200, [1])


async def test_a_range_on_a_field_the_endpoint_does_not_sort_by_is_416(heroku, http):
    response = await http.get("/apps/shop/releases", headers={"Range": "name ..; max=2"})
    assert response.status_code == 416 and response.json()["id"] == "requested_range_not_satisfiable"


async def test_every_request_spends_a_token_except_asking_for_the_rate_limit(heroku, http):
    heroku.budget = 2
    first = await http.get("/apps/shop")
    second = await http.get("/apps/shop")
    spent = await http.get("/apps/shop")
    free = await http.get("/account/rate-limits")

    assert [first.headers["RateLimit-Remaining"], second.headers["RateLimit-Remaining"]] == ["1", "0"]
    assert spent.status_code == 429 and spent.json()["id"] == "rate_limit"
    assert free.status_code == 200 and free.json() == {"remaining": 0}

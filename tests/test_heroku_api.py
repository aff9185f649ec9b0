"""The Heroku Platform API client against FakeHeroku: shapes, paging, retries, rate limits, rollback, secrets."""

from __future__ import annotations

import hashlib
import logging
import socket
from typing import AsyncIterator

import pytest
from structlog.testing import capture_logs

from alerts.sources.heroku_api import HerokuClient, HerokuError, HerokuNotConfigured
from tests.fake_heroku import FakeHeroku, addon, dyno

# Field sets of the reference schema examples (api-*.schema-example.json).
DYNO_FIELDS = {"attach_url", "command", "created_at", "id", "name", "release", "app", "size", "state", "type", "updated_at"}
RELEASE_FIELDS = {
    "addon_plan_names", "artifacts", "app", "created_at", "description", "id", "updated_at", "slug", "status",
    "user", "version", "current", "output_stream_url", "eligible_for_rollback",
}  # fmt: skip
ADDON_FIELDS = {
    "actions", "addon_service", "billing_entity", "app", "billed_price", "config_vars", "created_at", "id", "name",
    "plan", "provider_id", "provision_message", "state", "updated_at", "web_url",
}  # fmt: skip


class Sleeps:
    """Stands in for asyncio.sleep: records each wait at once, and can run something in the meantime."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.meanwhile = None

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self.meanwhile is not None:
            await self.meanwhile()


@pytest.fixture
async def heroku() -> AsyncIterator[FakeHeroku]:
    fake = FakeHeroku()
    await fake.start()
    fake.add_app("shop")
    yield fake
    await fake.stop()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def client(heroku: FakeHeroku, sleeps: Sleeps) -> AsyncIterator[HerokuClient]:
    c = HerokuClient(heroku.api_key, heroku.base_url, sleep=sleeps, max_retries=3)
    yield c
    await c.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- what the conveniences return ------------------------------------------------------------------------


async def test_app_returns_the_app_by_name(client):
    app = await client.app("shop")
    assert app["name"] == "shop" and app["id"]


async def test_dynos_come_back_in_the_api_shape(heroku, client):
    heroku.add_release("shop", 7)
    heroku.set_dynos("shop", [dyno("web.1", state="up", release_version=7), dyno("worker.1", state="crashed", release_version=7)])

    dynos = await client.dynos("shop")

    assert {d["name"]: d["state"] for d in dynos} == {"web.1": "up", "worker.1": "crashed"}
    assert all(set(d) == DYNO_FIELDS for d in dynos)
    assert {d["type"] for d in dynos} == {"web", "worker"}
    assert all(d["release"]["version"] == 7 and d["app"]["name"] == "shop" for d in dynos)


async def test_releases_are_the_newest_first_and_no_more_than_asked(heroku, client):
    for version in range(1, 16):
        heroku.add_release("shop", version, description=f"Deploy v{version}")

    releases = await client.releases("shop", newest=5)

    assert [r["version"] for r in releases] == [15, 14, 13, 12, 11]
    assert all(set(r) == RELEASE_FIELDS for r in releases)
    assert releases[0]["current"] is True and not any(r["current"] for r in releases[1:])
    assert heroku.requests[-1].headers["Range"] == "version ..; max=5, order=desc"


async def test_releases_follow_pages_when_heroku_pages_smaller_than_asked(heroku, client):
    heroku.page_size = 4
    for version in range(1, 21):
        heroku.add_release("shop", version)

    releases = await client.releases("shop", newest=10)

    assert [r["version"] for r in releases] == list(range(20, 10, -1))
    assert len(heroku.requests_to("GET", "/apps/shop/releases")) == 3


async def test_addons_come_back_in_the_api_shape(heroku, client):
    heroku.set_addons("shop", [addon("shop-db", "heroku-postgresql", "essential-0", "provisioning", config_vars=["DATABASE_URL"])])

    [db] = await client.addons("shop")

    assert set(db) == ADDON_FIELDS
    assert (db["name"], db["addon_service"]["name"], db["plan"]["name"], db["state"]) == (
        "shop-db", "heroku-postgresql", "heroku-postgresql:essential-0", "provisioning",
    )  # fmt: skip
    assert db["config_vars"] == ["DATABASE_URL"]


async def test_config_vars_come_back_as_names_and_sha256_digests(heroku, client):
    heroku.set_config("shop", {"FEATURE_FLAG": "on", "LOG_LEVEL": "debug"})

    digests = await client.config_var_names_and_digest("shop")

    assert digests == {
        "FEATURE_FLAG": hashlib.sha256(b"on").hexdigest(),
        "LOG_LEVEL": hashlib.sha256(b"debug").hexdigest(),
    }


async def test_config_var_values_never_reach_the_result_or_the_logs(heroku, client, caplog):
    secret_values = ["postgres://u:hunter2-db-pass@db:5432/shop", "sk_live_stripe_value_123"]
    heroku.set_config("shop", {"DATABASE_URL": secret_values[0], "STRIPE_KEY": secret_values[1]})
    heroku.fail_next("GET /apps/shop/config-vars", 500)  # a retry, so there are log lines to inspect
    caplog.set_level(logging.DEBUG)

    with capture_logs() as logs:
        digests = await client.config_var_names_and_digest("shop")

    assert set(digests) == {"DATABASE_URL", "STRIPE_KEY"}
    assert logs, "the retry should have been logged"
    for value in secret_values:
        assert value not in repr(digests)
        assert value not in repr(logs)
        assert value not in caplog.text


async def test_an_app_name_is_url_quoted_so_it_cannot_reach_another_endpoint(client):
    with pytest.raises(HerokuError) as raised:
        await client.app("shop/dynos")
    assert (raised.value.status, raised.value.id) == (404, "not_found")


# --- the protocol -------------------------------------------------------------------------------------------


async def test_requests_carry_the_version_accept_header_and_a_user_agent(heroku, client):
    await client.app("shop")

    [request] = heroku.requests
    assert request.headers["Accept"] == "application/vnd.heroku+json; version=3"
    assert request.headers["User-Agent"] == "pulser"


async def test_paging_follows_next_range_to_the_last_page(heroku, client):
    heroku.page_size = 3
    heroku.set_dynos("shop", [dyno(f"web.{n}") for n in range(1, 9)])

    dynos = await client.dynos("shop")

    assert sorted(d["name"] for d in dynos) == [f"web.{n}" for n in range(1, 9)]
    pages = heroku.requests_to("GET", "/apps/shop/dynos")
    assert len(pages) == 3
    assert "Range" not in pages[0].headers
    assert pages[1].headers["Range"].startswith("id ]") and pages[2].headers["Range"].startswith("id ]")


async def test_the_rate_budget_follows_every_response(heroku, client):
    heroku.budget = 1234

    await client.app("shop")
    await client.dynos("shop")

    assert client.budget.remaining == 1232
    assert client.requests_made == 2


async def test_rate_limit_remaining_asks_heroku_without_spending_a_token(heroku, client):
    heroku.budget = 900

    assert await client.rate_limit_remaining() == 900
    assert heroku.budget == 900


# --- retries -------------------------------------------------------------------------------------------------


async def test_a_500_is_retried_after_a_short_backoff_and_then_succeeds(heroku, client, sleeps):
    heroku.fail_next("/apps/shop", 500)

    app = await client.app("shop")

    assert app["name"] == "shop"
    assert len(heroku.requests_to("GET", "/apps/shop")) == 2
    assert len(sleeps.waits) == 1 and 0.5 <= sleeps.waits[0] < 0.6


async def test_backoff_doubles_and_gives_up_after_max_retries(heroku, client, sleeps):
    heroku.fail_next("/apps/shop", 503, times=10)

    with pytest.raises(HerokuError) as raised:
        await client.app("shop")

    assert (raised.value.status, raised.value.id) == (503, "service_unavailable")
    assert len(heroku.requests_to("GET", "/apps/shop")) == 4  # the first try and 3 retries
    assert [round(w * 2) / 2 for w in sleeps.waits] == [0.5, 1.0, 2.0]


async def test_an_unreachable_api_is_retried_then_reported_as_a_network_error(sleeps):
    client = HerokuClient("key", f"http://127.0.0.1:{free_port()}", sleep=sleeps, max_retries=2)
    try:
        with pytest.raises(HerokuError) as raised:
            await client.app("shop")
    finally:
        await client.close()

    assert (raised.value.status, raised.value.id) == (0, "network_error")
    assert len(sleeps.waits) == 2


async def test_a_429_waits_as_long_as_retry_after_says_then_retries(heroku, client, sleeps):
    heroku.fail_next("/apps/shop", 429, retry_after=7)

    app = await client.app("shop")

    assert app["name"] == "shop"
    assert sleeps.waits == [7]


async def test_a_spent_budget_is_waited_out_until_heroku_refills_it(heroku, client, sleeps):
    heroku.budget = 0
    sleeps.meanwhile = lambda: _refill(heroku, 4000)

    app = await client.app("shop")

    assert app["name"] == "shop"
    assert len(sleeps.waits) == 1 and sleeps.waits[0] > 0


async def test_a_budget_that_never_comes_back_raises_rate_limit(heroku, client, sleeps):
    heroku.budget = 0

    with pytest.raises(HerokuError) as raised:
        await client.app("shop")

    assert (raised.value.status, raised.value.id) == (429, "rate_limit")
    assert len(heroku.requests_to("GET", "/apps/shop")) == 4
    assert len(sleeps.waits) == 3 and all(0 < w <= 60 for w in sleeps.waits)


async def test_requests_are_spaced_out_when_the_budget_runs_low(heroku, client, sleeps):
    heroku.budget = 51  # below low_budget=200 once the first answer says 50

    await client.app("shop")
    await client.app("shop")

    assert len(sleeps.waits) == 1
    assert 0.7 < sleeps.waits[0] <= 0.76  # (200 - 50) / 200, a hair less for the refill since


async def test_a_healthy_budget_adds_no_waiting(heroku, client, sleeps):
    await client.app("shop")
    await client.app("shop")

    assert sleeps.waits == []


# --- errors that are not retried ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_id"), [(401, "unauthorized"), (403, "forbidden"), (404, "not_found"), (422, "invalid_params")]
)
async def test_client_errors_raise_at_once_with_herokus_id_and_message(heroku, client, sleeps, status, error_id):
    heroku.fail_next("/apps/shop", status)

    with pytest.raises(HerokuError) as raised:
        await client.app("shop")

    assert (raised.value.status, raised.value.id) == (status, error_id)
    assert raised.value.message
    assert len(heroku.requests) == 1 and sleeps.waits == []


async def test_an_unknown_app_reads_as_one_line_for_people(client):
    with pytest.raises(HerokuError) as raised:
        await client.app("nope")
    assert str(raised.value) == "Heroku 404 not_found: Couldn't find that app."


async def test_a_wrong_api_key_is_unauthorized_and_the_key_never_shows(heroku, sleeps):
    client = HerokuClient("wrong-key-abc123", heroku.base_url, sleep=sleeps)
    try:
        with pytest.raises(HerokuError) as raised:
            await client.app("shop")
    finally:
        await client.close()

    assert (raised.value.status, raised.value.id) == (401, "unauthorized")
    assert "wrong-key-abc123" not in str(raised.value) and "wrong-key-abc123" not in repr(client)


async def test_an_error_page_that_is_not_json_gets_an_http_status_id(heroku, client):
    heroku.fail_next("/apps/shop", 403, body="<html><body>Forbidden by proxy</body></html>")

    with pytest.raises(HerokuError) as raised:
        await client.app("shop")

    assert (raised.value.status, raised.value.id) == (403, "http_403")
    assert "<html>" not in str(raised.value)


async def test_a_missing_api_key_raises_not_configured_before_any_request(heroku, sleeps):
    client = HerokuClient(None, heroku.base_url, sleep=sleeps)
    try:
        with pytest.raises(HerokuNotConfigured) as raised:
            await client.dynos("shop")
    finally:
        await client.close()

    assert (raised.value.status, raised.value.id) == (0, "not_configured")
    assert "HEROKU_API_KEY" in str(raised.value)
    assert heroku.requests == []


# --- rollback ------------------------------------------------------------------------------------------------


async def test_rollback_posts_the_release_id_and_returns_the_new_release(heroku, client):
    v7 = heroku.add_release("shop", 7)
    heroku.add_release("shop", 8)

    new = await client.rollback("shop", v7["id"])

    [post] = heroku.requests_to("POST", "/apps/shop/releases")
    assert post.json == {"release": v7["id"]}
    assert (new["version"], new["description"], new["current"]) == (9, "Rollback to v7", True)
    assert new["slug"] == v7["slug"]
    assert [r["version"] for r in heroku.releases_of("shop") if r["current"]] == [9]


async def test_rollback_is_not_repeated_after_heroku_answered_500(heroku, client, sleeps):
    v7 = heroku.add_release("shop", 7)
    heroku.add_release("shop", 8)
    heroku.fail_next("POST /apps/shop/releases", 500)

    with pytest.raises(HerokuError) as raised:
        await client.rollback("shop", v7["id"])

    assert raised.value.status == 500
    assert len(heroku.requests_to("POST", "/apps/shop/releases")) == 1
    assert sleeps.waits == []


async def test_rollback_is_retried_when_the_connection_was_refused(sleeps):
    heroku = FakeHeroku(port=free_port())
    heroku.add_app("shop")
    v1 = heroku.add_release("shop", 1)
    heroku.add_release("shop", 2)
    sleeps.meanwhile = heroku.start  # Heroku comes back during the backoff
    client = HerokuClient(heroku.api_key, heroku.base_url, sleep=sleeps)
    try:
        new = await client.rollback("shop", v1["id"])
    finally:
        await client.close()
        await heroku.stop()

    assert new["description"] == "Rollback to v1"
    assert len(heroku.requests_to("POST", "/apps/shop/releases")) == 1


async def test_rollback_waits_out_a_rate_limit_since_heroku_did_nothing(heroku, client, sleeps):
    v7 = heroku.add_release("shop", 7)
    heroku.add_release("shop", 8)
    heroku.fail_next("POST /apps/shop/releases", 429, retry_after=3)

    new = await client.rollback("shop", v7["id"])

    assert new["version"] == 9 and sleeps.waits == [3]


async def test_rollback_to_a_release_not_eligible_is_refused(heroku, client):
    old = heroku.add_release("shop", 3, eligible_for_rollback=False)
    heroku.add_release("shop", 4)

    with pytest.raises(HerokuError) as raised:
        await client.rollback("shop", old["id"])

    assert (raised.value.status, raised.value.id) == (422, "invalid_params")
    assert [r["version"] for r in heroku.releases_of("shop")] == [3, 4]


async def test_rollback_to_an_unknown_release_is_not_found(heroku, client):
    heroku.add_release("shop", 1)

    with pytest.raises(HerokuError) as raised:
        await client.rollback("shop", "01234567-89ab-cdef-0123-456789abcdef")

    assert (raised.value.status, raised.value.id) == (404, "not_found")


async def _refill(heroku: FakeHeroku, n: int) -> None:
    heroku.refill(n)

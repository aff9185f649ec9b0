"""The GitHub issue channel against the GitHub issues stand-in: one issue per incident (also
across a crash before its number was saved), comments, closing, and GitHub's refusals."""

from __future__ import annotations

import time

import pytest

from alerts.outbound import channels
from alerts.outbound.channels import DeliveryFailed
from tests.outbound_standins import sample_page


def settings_for(standins, **changes) -> dict:
    return {"repository": standins.github_repository, "token": standins.github_token, "api_url": standins.base_url, **changes}


async def send(standins, http, ref: str | None = None, settings: dict | None = None, **page_changes):
    return await channels.send("github", settings or settings_for(standins), sample_page(**page_changes), ref, http)


def issues(standins) -> list[dict]:
    return list(standins.github_issues[standins.github_repository].values())


async def test_a_trigger_opens_a_labelled_issue_carrying_the_marker(standins, outbound_http):
    result = await send(standins, outbound_http)
    [issue] = issues(standins)
    assert result.ref == "1" and issue["number"] == 1
    assert issue["title"] == "[CRITICAL] Checkout answers 500 (checkout / production)"
    assert [label["name"] for label in issue["labels"]] == ["pulser"]
    assert "<!-- pulser:pulser-incident-42 -->" in issue["body"] and "| Service | checkout |" in issue["body"]
    create = standins.received("github")[-1]
    assert create.headers["Accept"] == "application/vnd.github+json" and create.headers["X-GitHub-Api-Version"] == "2022-11-28"


async def test_a_trigger_after_a_crash_finds_the_issue_instead_of_opening_a_second(standins, outbound_http):
    await send(standins, outbound_http)  # created; the ref was never saved
    result = await send(standins, outbound_http, ref=None)
    assert result.ref == "1" and len(issues(standins)) == 1
    search = standins.received("github")[-1]
    assert search.method == "GET" and search.query == {
        "state": "all", "per_page": "50", "sort": "created", "direction": "desc", "labels": "pulser"
    }


async def test_the_search_ignores_other_incidents_issues(standins, outbound_http):
    standins.add_github_issue("Other incident", "<!-- pulser:pulser-incident-7 -->")
    result = await send(standins, outbound_http)
    assert result.ref == "2" and len(issues(standins)) == 2


async def test_a_marker_quoted_in_another_issues_description_does_not_count(standins, outbound_http):
    await send(standins, outbound_http, dedup_key="pulser-incident-7", description="see <!-- pulser:pulser-incident-42 -->")
    result = await send(standins, outbound_http)
    assert result.ref == "2" and len(issues(standins)) == 2


async def test_a_trigger_with_a_ref_changes_nothing(standins, outbound_http):
    await send(standins, outbound_http)
    before = len(standins.attempts("github"))
    result = await send(standins, outbound_http, ref="1")
    assert result.ref == "1" and len(standins.attempts("github")) == before


async def test_an_escalation_comments_on_the_issue(standins, outbound_http):
    await send(standins, outbound_http)
    await send(standins, outbound_http, ref="1", action="escalate", step="L2 of Production paging")
    [comment] = standins.github_comments[standins.github_repository][1]
    assert comment["body"].startswith("**Escalated (L2 of Production paging): [CRITICAL] Checkout answers 500")


async def test_a_resolve_closes_the_issue_as_completed_and_says_who(standins, outbound_http):
    await send(standins, outbound_http)
    result = await send(standins, outbound_http, ref="1", action="resolve", status="resolved", resolved_by="Ana")
    [issue] = issues(standins)
    assert issue["state"] == "closed" and issue["state_reason"] == "completed"
    assert standins.github_comments[standins.github_repository][1][0]["body"].startswith("**Resolved by Ana:")
    assert result.detail == "issue acme/ops#1 closed"


async def test_an_acknowledge_without_an_issue_creates_none(standins, outbound_http):
    result = await send(standins, outbound_http, action="acknowledge", acked_by="Ana")
    assert issues(standins) == [] and "nothing to acknowledge" in result.detail


async def test_an_exhausted_rate_limit_403_waits_until_the_reset(standins, outbound_http):
    reset = int(time.time()) + 120
    standins.fail_next(
        "github", 403,
        body={"message": "API rate limit exceeded for user ID 1.", "documentation_url": "https://docs.github.com/rest"},
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)},
    )
    with pytest.raises(DeliveryFailed) as failed:
        await send(standins, outbound_http)
    assert failed.value.retryable and 100 < failed.value.retry_after <= 120


async def test_a_permission_403_is_not_retried_and_says_which_permission(standins, outbound_http):
    standins.fail_next("github", 403)
    with pytest.raises(DeliveryFailed) as failed:
        await send(standins, outbound_http)
    assert not failed.value.retryable and "Issues: write" in failed.value.reason


async def test_an_unknown_repository_is_not_retried(standins, outbound_http):
    with pytest.raises(DeliveryFailed) as failed:
        await send(standins, outbound_http, settings=settings_for(standins, repository="acme/nope"))
    assert not failed.value.retryable and "acme/nope does not exist or the token cannot see it" in failed.value.reason


async def test_a_wrong_token_is_not_retried_and_not_shown(standins, outbound_http):
    token = "ghp_" + "W" * 36
    with pytest.raises(DeliveryFailed) as failed:
        await send(standins, outbound_http, settings=settings_for(standins, token=token))
    assert not failed.value.retryable and "paste a new token" in failed.value.reason and token not in failed.value.reason


async def test_a_test_page_opens_a_test_issue(standins, outbound_http):
    result = await send(standins, outbound_http, action="test", dedup_key="pulser-test", severity="info")
    assert issues(standins)[0]["title"].startswith("[Pulser test] [INFO]") and result.ref == "1"

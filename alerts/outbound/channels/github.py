"""GitHub issues: one issue per incident, commented on as it changes, closed when it resolves.

trigger (and escalate or acknowledge or resolve without a ref) first looks for an issue that
already carries the incident's marker `<!-- pulser:{dedup_key} -->` among the newest 50 of the
label's issues: if Pulser created the issue and crashed before the outbox saved its number, the
retry finds that issue instead of opening a second one. The ref is the issue number.

- trigger: create the issue (or find it). A trigger that already has a ref changes nothing.
- escalate: a comment on the issue (or create it, as trigger, when there is none yet).
- acknowledge: a comment.
- resolve: close the issue (`state_reason: completed`), then comment why. Closing first keeps a
  retry harmless: closing twice changes nothing.
- test: a new issue titled "[Pulser test] …", to prove the token may write issues.

Auth is a token with Issues: write on the repository (a fine-grained token, a classic `repo`
token or a GitHub App installation token) sent as `Authorization: Bearer`. A 403 with
`x-ratelimit-remaining: 0` (or a `Retry-After`: the secondary limit) waits until
`x-ratelimit-reset`; any other 403 is a permission to fix.
"""

from __future__ import annotations

import re
import time
from urllib.parse import quote

import httpx
from pydantic import Field, field_validator

from alerts.outbound.channels import answers
from alerts.outbound.channels.base import DeliveryFailed, Page, SendResult
from alerts.outbound.channels.fields import ChannelSettings, Secret, service_url
from alerts.outbound.channels.render import cut, facts, headline, safe_link, subject

KIND = "github"
LABEL = "GitHub issue"
SECRET_FIELDS = ("token",)
ACTIONS = frozenset({"trigger", "escalate", "acknowledge", "resolve", "test"})

REPOSITORY = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
TITLE_LIMIT = 256
BODY_LIMIT = 60_000  # GitHub takes 65,536 characters; the table and marker fit in the rest.
SEARCH_DEPTH = 50


class GitHubSettings(ChannelSettings):
    repository: str
    token: Secret
    api_url: str = "https://api.github.com"
    labels: list[str] = Field(default_factory=lambda: ["pulser"], max_length=10)

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str) -> str:
        if not REPOSITORY.match(value):
            raise ValueError("must be owner/name, like acme/ops")
        return value

    @field_validator("api_url", mode="before")
    @classmethod
    def _api_url(cls, value):
        return service_url(value).rstrip("/")

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: list[str]) -> list[str]:
        if any(not label.strip() or len(label) > 50 or "," in label for label in value):
            raise ValueError("each label must be 1-50 characters without commas")
        return [label.strip() for label in value]


def marker(page: Page) -> str:
    return f"<!-- pulser:{page.dedup_key} -->"


def issue_body(page: Page) -> str:
    rows = "\n".join(f"| {name} | {_cell(value)} |" for name, value in facts(page))
    parts = [f"**{_cell(headline(page))}**", "", "| | |", "| --- | --- |", rows]
    if page.description:
        description = cut(page.description, BODY_LIMIT)
        fence = "`" * max(3, max((len(run) for run in re.findall(r"`+", description)), default=0) + 1)
        parts += ["", fence + "text", description, fence]  # a fence longer than any run of backticks inside
    if link := safe_link(page):
        parts += ["", f"[Open incident]({link})"]
    parts += ["", marker(page)]
    return "\n".join(parts)


def comment_body(page: Page) -> str:
    lines = [f"**{_cell(headline(page))}**"]
    if page.step:
        lines.append(f"Escalation step: {_cell(page.step)}")
    if page.count > 1:
        lines.append(f"{page.count} alerts so far")
    if link := safe_link(page):
        lines.append(f"[Open incident]({link})")
    return "\n\n".join(lines)


def _cell(text: str) -> str:
    """Text safe inside a Markdown table row."""
    return " ".join(str(text).split()).replace("|", "\\|")


class _Repo:
    """The calls this channel makes, against one repository."""

    def __init__(self, settings: GitHubSettings, http: httpx.AsyncClient):
        self.settings = settings
        self.http = http
        token = settings.token.get_secret_value()
        self.secrets = answers.secret_values(token)
        owner, name = settings.repository.split("/")
        self.base = f"{settings.api_url}/repos/{quote(owner)}/{quote(name)}"
        self.headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "Authorization": f"Bearer {token}",
        }

    async def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        response = await answers.call(
            self.http, method, self.base + path, service="GitHub", secrets=self.secrets, headers=self.headers, **kwargs
        )
        if not response.is_success:
            raise self.refused(response)
        return response

    def refused(self, response: httpx.Response) -> DeliveryFailed:
        body = answers.json_or_none(response)
        said = body.get("message") if isinstance(body, dict) else None
        if isinstance(body, dict) and isinstance(body.get("errors"), list) and body["errors"]:
            first = body["errors"][0]
            said = f"{said}: {first.get('message') or first.get('code') if isinstance(first, dict) else first}"
        headers = response.headers
        if response.status_code in (403, 429) and (headers.get("x-ratelimit-remaining") == "0" or "retry-after" in headers):
            wait = answers.retry_after(response)
            if wait is None and headers.get("x-ratelimit-reset", "").isdigit():
                wait = max(int(headers["x-ratelimit-reset"]) - time.time(), 0.0)
            reason = f"GitHub answered {response.status_code}: rate limited" + (f"; retrying after {wait:.0f} s" if wait is not None else "")
            return DeliveryFailed(answers.scrub(reason, self.secrets), retryable=True, retry_after=wait)
        repository = self.settings.repository
        hints = {
            401: "the token is wrong or expired; paste a new token",
            403: f"the token may not write issues on {repository}; give it Issues: write",
            404: f"{repository} does not exist or the token cannot see it; check the repository and the token's access",
            410: f"issues are turned off on {repository}; turn them on or choose another repository",
            422: "GitHub refused the issue",
        }
        return answers.refused("GitHub", response, secrets=self.secrets, hints=hints, detail=said)

    async def find(self, page: Page) -> int | None:
        """The number of the issue carrying this incident's marker, among the newest of the label."""
        params = {"state": "all", "per_page": str(SEARCH_DEPTH), "sort": "created", "direction": "desc"}
        if self.settings.labels:
            params["labels"] = self.settings.labels[0]
        response = await self.request("GET", "/issues", params=params)
        wanted = marker(page)
        issues = answers.json_or_none(response)
        if not isinstance(issues, list):
            raise DeliveryFailed("GitHub answered the issue list with something else than a list; will retry", retryable=True)
        for issue in issues:
            # The marker is the body's last line: one quoted inside a description does not count.
            if isinstance(issue, dict) and "pull_request" not in issue and (issue.get("body") or "").rstrip().endswith(wanted):
                return int(issue["number"])
        return None

    async def create(self, page: Page, *, title_prefix: str = "") -> int:
        title = cut(title_prefix + subject(page), TITLE_LIMIT)
        response = await self.request(
            "POST", "/issues", json={"title": title, "body": issue_body(page), "labels": list(self.settings.labels)}
        )
        created = answers.json_or_none(response)
        if not isinstance(created, dict) or not isinstance(created.get("number"), int):
            raise DeliveryFailed("GitHub created the issue but did not say its number; will look for it", retryable=True)
        return created["number"]

    async def comment(self, number: int, page: Page) -> None:
        await self.request("POST", f"/issues/{number}/comments", json={"body": comment_body(page)})

    async def close(self, number: int) -> None:
        await self.request("PATCH", f"/issues/{number}", json={"state": "closed", "state_reason": "completed"})


def _number(ref: str | None) -> int | None:
    return int(ref) if ref and ref.isdigit() else None


async def send(settings: GitHubSettings, page: Page, ref: str | None, http: httpx.AsyncClient) -> SendResult:
    repo = _Repo(settings, http)
    where = settings.repository
    if page.action == "test":
        number = await repo.create(page, title_prefix="[Pulser test] ")
        return SendResult(detail=f"test issue {where}#{number} created", ref=str(number))
    number = _number(ref)
    if number is None:
        number = await repo.find(page)
        if number is None:
            if page.action in ("acknowledge", "resolve"):
                return SendResult(detail=f"no issue in {where} for this incident; nothing to {page.action}")
            number = await repo.create(page)
            return SendResult(detail=f"issue {where}#{number} created", ref=str(number))
        if page.action == "trigger":
            return SendResult(detail=f"issue {where}#{number} found (created earlier)", ref=str(number))
    if page.action == "trigger":
        return SendResult(detail=f"issue {where}#{number} already open for this incident", ref=str(number))
    if page.action == "resolve":
        await repo.close(number)
        await repo.comment(number, page)
        return SendResult(detail=f"issue {where}#{number} closed", ref=str(number))
    await repo.comment(number, page)
    return SendResult(detail=f"comment on {where}#{number}", ref=str(number))

"""`/pulser me`: how the person running it wants to be paged — their contacts and notification
rules in a form — and **Send test page**.

Only the person edits their own rules: the form opens for whoever runs the command and is saved
for that same person (admins may read anyone's through the API). A modal cannot act on what it
has not saved yet, so Send test page lives in the ephemeral posted after saving (and
`/pulser me test` sends one straight away). Validation and the audit are `alerts.escalation.people`,
the same the API uses.
"""

from __future__ import annotations

from typing import Any

import structlog
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError

from alerts.escalation import people
from alerts.escalation.engine import EscalationEngine
from blocks.escalation import (
    PERSON_CALLBACK,
    PERSON_TEST,
    ephemeral,
    person_form,
    person_form_errors,
    person_modal,
    rules_saved,
    sent_test_pages,
)
from handlers.slack.payloads import view_metadata
from handlers.slack.services import SlackServices

log = structlog.get_logger(__name__)

METHOD_CHOICES = [(m, people.METHOD_LABELS[m]) for m in people.METHODS]
NOT_YOURS = "This form is someone else's: each person sets their own rules with /pulser me."


def engine_of(services: SlackServices) -> Any:
    """The runtime's escalation engine; a bare one (its `reach` needs nothing of the loop) when
    listeners run without it."""
    return services.escalation or EscalationEngine(services.pool)


async def me_command(*, ack: AsyncAck, command: dict, args: str = "", client, respond, services: SlackServices,
                     **_: Any) -> None:
    user = command["user_id"]
    if args.strip().lower() == "test":
        await ack(**await _test_pages(services, user))
        return
    await ack()
    current = await people.load(services.pool, user)
    view = person_modal(
        metadata={"channel_id": command.get("channel_id"), "user_id": user},
        email=current["contacts"]["email"], phone=current["contacts"]["phone"], rules=current["rules"],
        methods=METHOD_CHOICES,
    )
    try:
        await client.views_open(trigger_id=command["trigger_id"], view=view)
    except SlackApiError as exc:  # most often expired_trigger_id: Slack was slow to deliver the command
        error = exc.response.get("error")
        log.warning("slack.person_modal_failed", user=user, error=error)
        await respond(response_type="ephemeral",
                      text=f":warning: Slack did not open the form ({error}). Please run `/pulser me` again.")


async def _test_pages(services: SlackServices, user: str) -> dict:
    results = await people.send_test_pages(services.pool, engine_of(services), user, user)
    log.info("person.test_pages", user=user, deliveries=[r["delivery_id"] for r in results])
    return sent_test_pages([people.describe_test_page(r, user) for r in results])


def register(app: AsyncApp, services: SlackServices) -> None:
    pool = services.pool

    @app.view(PERSON_CALLBACK)
    async def on_saved(ack: AsyncAck, body: dict, view: dict, client) -> None:
        user = body["user"]["id"]
        metadata = view_metadata(view)
        if metadata.get("user_id") != user:
            await ack(response_action="errors", errors={"email": NOT_YOURS})
            return
        data, row_of_rule, form_errors = person_form(view["state"]["values"])
        if form_errors:
            await ack(response_action="errors", errors=form_errors)
            return
        try:
            saved = await people.save_rules(pool, user, data, actor=user)
        except people.RulesValidationError as exc:
            await ack(response_action="errors", errors=person_form_errors(exc.errors, row_of_rule))
            return
        await ack()
        log.info("person.rules_saved", user=user, rules=len(saved["rules"]))
        lines = _rule_lines(saved)
        await _tell(client, metadata.get("channel_id"), user, rules_saved(user, lines, defaulted=saved["uses_default"]))

    @app.action(PERSON_TEST)
    async def on_test(ack: AsyncAck, body: dict, respond) -> None:
        await ack()
        user = body["user"]["id"]
        owner = ((body.get("actions") or [{}])[0]).get("value")
        if owner and owner != user:
            await respond(replace_original=False, **ephemeral("That button sends someone else's test page; "
                                                              "use `/pulser me test` for your own."))
            return
        await respond(replace_original=False, **await _test_pages(services, user))


def _rule_lines(saved: dict) -> list[str]:
    """The rules in words, each with where it goes (the person reads their own contacts back)."""
    contacts = saved["contacts"]
    lines = []
    for rule in saved["rules"] or [dict(r) for r in people.DEFAULT_RULES]:
        line = people.describe_rule(rule)
        if rule["method"] == "sms":
            line += f" to {contacts['phone']}"
        elif rule["method"] == "email":
            line += f" to {contacts['email']}"
        lines.append(line)
    return lines


async def _tell(client, channel: str | None, user: str, message: dict) -> None:
    """An ephemeral where the command was run; in a DM with somebody else (where Pulser may not
    post), a message in the person's own DM with Pulser instead."""
    body = {k: v for k, v in message.items() if k != "response_type"}
    if channel:
        try:
            await client.chat_postEphemeral(channel=channel, user=user, **body)
            return
        except SlackApiError as exc:
            log.info("slack.person_ephemeral_not_posted", channel=channel, error=exc.response.get("error"))
    try:
        await client.chat_postMessage(channel=user, **body)
    except SlackApiError as exc:  # the rules are saved all the same
        log.info("slack.person_dm_not_posted", user=user, error=exc.response.get("error"))

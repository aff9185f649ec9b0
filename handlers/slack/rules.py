"""Alert routing rules from Slack: `/pulser rules` (the ordered list with Edit, Move up/down, Delete
and Add rule buttons) and the add/edit modal.

Thin on purpose: parse the payload, check admin rights, validate with `alerts.routing`, change
`storage.routing_rules`, audit, answer with `blocks.rules`. Anyone may list; only admins change.
Clicks answer by replacing the list they sat on (respond replace_original); a modal submission
has no list to replace, so it posts a fresh one as an ephemeral in the channel the list was in.
"""

from __future__ import annotations

from typing import Any

import structlog
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError

from alerts.normalized import SEVERITIES, SOURCE_NAMES
from alerts.routing import (
    RoutingRule,
    RuleValidationError,
    describe_actions,
    describe_conditions,
    rule_changes,
    validate_rule,
)
from blocks.rules import (
    ADD,
    ADD_CALLBACK,
    DELETE,
    EDIT,
    EDIT_CALLBACK,
    MOVE_DOWN,
    MOVE_UP,
    RuleLine,
    admin_only,
    change_notice,
    form_errors,
    rule_modal,
    rules_list,
    submitted_fields,
)
from alerts.managed import is_managed, managed_notice
from handlers.slack.admin import is_admin, refusal
from handlers.slack.payloads import as_int, channel_of, clicked_id, view_metadata
from handlers.slack.services import SlackServices
from storage import escalation
from storage import routing_rules as store
from storage.audit import record_action

log = structlog.get_logger(__name__)

ACTION_WORDS = "change routing rules"
DELETED_MEANWHILE = "This rule was deleted meanwhile; close this form."


def rule_line(rule: RoutingRule) -> RuleLine:
    return RuleLine(
        id=rule.id, position=rule.position, name=rule.name,
        conditions=describe_conditions(rule), actions=describe_actions(rule), managed=rule.managed_by is not None,
    )


async def rules_message(services: SlackServices, notice: str | None = None) -> dict:
    rules = [RoutingRule.from_row(row) for row in await store.list_rules(services.pool)]
    return rules_list([rule_line(r) for r in rules], default_channel=services.default_channel, notice=notice)


async def rules_command(*, ack: AsyncAck, services: SlackServices, **_: Any) -> None:
    """Anyone may list; the answer rides on the ack, so there is no extra round trip."""
    await ack(**await rules_message(services))


def register(app: AsyncApp, services: SlackServices) -> None:
    pool = services.pool

    # --- list buttons --------------------------------------------------------------------------

    @app.action(ADD)
    async def on_add(ack: AsyncAck, body: dict, client, respond) -> None:
        await ack()
        user = body["user"]["id"]
        if not await _allowed(client, user, respond, "add", None):
            return
        metadata = {"channel_id": channel_of(body), "user_id": user}
        await _open(client, body, respond, rule_modal(metadata=metadata, **_DOMAIN))

    @app.action(EDIT)
    async def on_edit(ack: AsyncAck, body: dict, client, respond) -> None:
        await ack()
        user, rule = await _clicked_rule(body, client, respond, "edit")
        if rule is None:
            return
        metadata = {"rule_id": rule.id, "channel_id": channel_of(body), "user_id": user}
        policy = await escalation.get_policy(pool, rule.escalation_policy_id) if rule.escalation_policy_id else None
        await _open(client, body, respond, rule_modal(metadata=metadata, rule=rule, policy_name=policy and policy["name"], **_DOMAIN))

    @app.action(DELETE)
    async def on_delete(ack: AsyncAck, body: dict, client, respond) -> None:
        await ack()
        user, rule = await _clicked_rule(body, client, respond, "delete")
        if rule is None:
            return
        if await store.delete_rule(pool, rule.id):
            await _audit(user, "rule.delete", rule.id, {**rule.spec.as_json(), "position": rule.position})
            notice = change_notice("deleted", rule.name)
        else:
            notice = change_notice("missing")
        await respond(replace_original=True, **await rules_message(services, notice))

    @app.action(MOVE_UP)
    async def on_move_up(ack: AsyncAck, body: dict, client, respond) -> None:
        await ack()
        await _move(body, client, respond, step=-1)

    @app.action(MOVE_DOWN)
    async def on_move_down(ack: AsyncAck, body: dict, client, respond) -> None:
        await ack()
        await _move(body, client, respond, step=1)

    async def _move(body: dict, client, respond, *, step: int) -> None:
        """One place up or down from where the rule is now (the list may be stale)."""
        user, rule = await _clicked_rule(body, client, respond, "move")
        if rule is None:
            return
        row = await store.move_rule(pool, rule.id, rule.position + step)
        if row is None:
            notice = change_notice("missing")
        else:
            moved = RoutingRule.from_row(row)
            if moved.position != rule.position:
                details = {"name": rule.name, "from": rule.position, "to": moved.position}
                await _audit(user, "rule.move", rule.id, details)
            notice = change_notice("moved", moved.name, moved.position)
        await respond(replace_original=True, **await rules_message(services, notice))

    # --- modal submissions ---------------------------------------------------------------------

    async def _with_policy_id(fields: dict[str, Any]) -> dict[str, Any]:
        """The form names a policy; the rule stores its id. An unknown name is the field's error."""
        fields = await services.channels.resolve_field(fields)
        name = fields.pop("escalation_policy", None)
        fields["escalation_policy_id"] = None
        if name:
            policy_id = await escalation.policy_id_by_name(pool, name.strip())
            if policy_id is None:
                known = ", ".join(p["name"] for p in await escalation.list_policies(pool)) or "none yet"
                raise RuleValidationError({"escalation_policy": f"no escalation policy is called {name.strip()!r} (known: {known})"})
            fields["escalation_policy_id"] = policy_id
        return fields

    @app.view(ADD_CALLBACK)
    async def on_add_submitted(ack: AsyncAck, body: dict, view: dict, client) -> None:
        user = body["user"]["id"]
        if not await is_admin(client, user, services.admins):  # rights may have gone since the form opened
            await ack(response_action="errors", errors={"name": refusal(ACTION_WORDS)})
            return
        try:
            spec = validate_rule(await _with_policy_id(submitted_fields(view["state"]["values"])))
        except RuleValidationError as exc:
            await ack(response_action="errors", errors=form_errors(exc.errors))
            return
        created = RoutingRule.from_row(await store.create_rule(pool, spec.as_row(), created_by=user))
        await _audit(user, "rule.create", created.id, {**spec.as_json(), "position": created.position})
        await ack()
        log.info("rule.created", rule_id=created.id, position=created.position, user=user)
        await _post_list(client, view, user, change_notice("added", created.name, created.position))

    @app.view(EDIT_CALLBACK)
    async def on_edit_submitted(ack: AsyncAck, body: dict, view: dict, client) -> None:
        user = body["user"]["id"]
        if not await is_admin(client, user, services.admins):
            await ack(response_action="errors", errors={"name": refusal(ACTION_WORDS)})
            return
        rule_id = as_int(view_metadata(view).get("rule_id"))
        row = await store.get_rule(pool, rule_id) if rule_id is not None else None
        if row is None:
            await ack(response_action="errors", errors={"name": DELETED_MEANWHILE})
            return
        current = RoutingRule.from_row(row)
        if is_managed(current):  # the config file took it over while the form was open
            await ack(response_action="errors", errors={"name": managed_notice("This rule", current.name)})
            return
        try:
            spec = validate_rule(await _with_policy_id(submitted_fields(view["state"]["values"])))
        except RuleValidationError as exc:
            await ack(response_action="errors", errors=form_errors(exc.errors))
            return
        changes = rule_changes(current.spec, spec)
        if not changes:  # saved as it was: nothing to store or audit
            await ack()
            return
        if await store.update_rule(pool, current.id, spec.as_row()) is None:
            await ack(response_action="errors", errors={"name": DELETED_MEANWHILE})
            return
        await _audit(user, "rule.update", current.id, {"name": spec.name, "changes": changes})
        await ack()
        log.info("rule.updated", rule_id=current.id, fields=sorted(changes), user=user)
        await _post_list(client, view, user, change_notice("updated", spec.name))

    # --- helpers that need the pool or the admins ----------------------------------------------

    async def _allowed(client, user: str, respond, verb: str, rule_id: int | None) -> bool:
        """True for admins; anyone else gets the refusal as its own ephemeral, and the list stays."""
        if await is_admin(client, user, services.admins):
            return True
        await _audit(user, f"rule.{verb}_refused", rule_id, {})
        await respond(replace_original=False, **admin_only(ACTION_WORDS))
        return False

    async def _clicked_rule(body: dict, client, respond, verb: str) -> tuple[str, RoutingRule | None]:
        """(user, the rule as stored now) when the clicker may change it; else answers them."""
        user, rule_id = body["user"]["id"], clicked_id(body)
        if rule_id is None:
            await respond(text="That button did not name a rule.", response_type="ephemeral", replace_original=False)
            return user, None
        if not await _allowed(client, user, respond, verb, rule_id):
            return user, None
        row = await store.get_rule(pool, rule_id)
        if row is None:
            await respond(replace_original=True, **await rules_message(services, change_notice("missing")))
            return user, None
        if is_managed(row):
            await respond(text=managed_notice("The routing rule", row["name"]), response_type="ephemeral", replace_original=False)
            return user, None
        return user, RoutingRule.from_row(row)

    async def _audit(user: str, action: str, rule_id: int | None, details: dict) -> None:
        await record_action(pool, actor=user, action=action, target_type="rule", target_id=rule_id, details=details)

    async def _post_list(client, view: dict, user: str, notice: str) -> None:
        """The list as it is now, as a fresh ephemeral where the form was opened from."""
        channel = view_metadata(view).get("channel_id")
        if not channel:
            return
        message = {k: v for k, v in (await rules_message(services, notice)).items() if k != "response_type"}
        try:
            await client.chat_postEphemeral(channel=channel, user=user, **message)
        except SlackApiError as exc:  # e.g. a DM with someone else: the change is saved all the same
            log.info("slack.rules_list_not_posted", channel=channel, error=exc.response.get("error"))


# The domain's vocabulary for the form's selects and hints (blocks/ must not import alerts/).
_DOMAIN = {"severities": SEVERITIES, "source_names": SOURCE_NAMES}


async def _open(client, body: dict, respond, view: dict) -> None:
    try:
        await client.views_open(trigger_id=body["trigger_id"], view=view)
    except SlackApiError as exc:  # most often expired_trigger_id: Slack was slow to deliver the click
        error = exc.response.get("error")
        log.warning("slack.rule_modal_failed", user=body["user"]["id"], error=error)
        await respond(
            response_type="ephemeral", replace_original=False,
            text=f":warning: Slack did not open the rule form ({error}). Please click the button again.",
        )
"""Buttons on a storm digest: Show all (a paged modal with each incident's Ack and Resolve), Ack
all and Resolve all. Every incident is acted on through `alerts.incident_actions`, one audited
transaction each, exactly as if its own Ack or Resolve had been clicked; the digest and any
incident posted on its own re-render from there."""

from __future__ import annotations

import structlog
from slack_bolt.async_app import AsyncAck, AsyncApp

from blocks.kit import count_noun
from blocks.storms import ACK_ALL, ACK_ONE, PAGE, PAGE_SIZE, RESOLVE_ALL, RESOLVE_ONE, SHOW_ALL, members_modal
from handlers.slack.services import SlackServices
from storage import storms

log = structlog.get_logger(__name__)

# Ack all / Resolve all act on at most this many incidents per click (a storm bigger than that
# takes another click; each incident is its own transaction).
MAX_PER_CLICK = 5000


def _digest_id(body: dict) -> int | None:
    value = ((body.get("actions") or [{}])[0].get("value") or "").split(":")[0]
    return int(value) if value.isdigit() else None


def _page_value(body: dict) -> tuple[int, int, int | None] | None:
    """`digest:page[:incident]` from a modal button."""
    parts = ((body.get("actions") or [{}])[0].get("value") or "").split(":")
    if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[1]), int(parts[2]) if len(parts) == 3 else None


def register(app: AsyncApp, services: SlackServices) -> None:
    async def show_page(client, view_id: str | None, trigger_id: str | None, digest_id: int, page: int) -> None:
        rows, total = await storms.members(services.pool, digest_id, offset=page * PAGE_SIZE, limit=PAGE_SIZE)
        view = members_modal(digest_id, rows, total, page)
        if view_id:
            await client.views_update(view_id=view_id, view=view)
        else:
            await client.views_open(trigger_id=trigger_id, view=view)

    @app.action(SHOW_ALL)
    async def show_all(ack: AsyncAck, body: dict, client, respond) -> None:
        await ack()
        digest_id = _digest_id(body)
        if digest_id is None or await storms.get_digest(services.pool, digest_id) is None:
            await _tell(respond, "This storm digest is no longer known to Pulser.")
            return
        await show_page(client, None, body.get("trigger_id"), digest_id, 0)

    async def turn_page(ack: AsyncAck, body: dict, client) -> None:
        await ack()
        value = _page_value(body)
        if value is None:
            return
        await show_page(client, (body.get("view") or {}).get("id"), None, value[0], value[1])

    app.action(PAGE)(turn_page)
    app.action(f"{PAGE}_next")(turn_page)

    async def act_on_one(ack: AsyncAck, body: dict, client, action: str) -> None:
        await ack()
        value = _page_value(body)
        if value is None or value[2] is None:
            return
        digest_id, page, incident_id = value
        user = body["user"]["id"]
        if action == "ack":
            await services.incident_actions.ack(incident_id, user)
        else:
            await services.incident_actions.resolve(incident_id, user)
        await show_page(client, (body.get("view") or {}).get("id"), None, digest_id, page)

    @app.action(ACK_ONE)
    async def ack_one(ack: AsyncAck, body: dict, client) -> None:
        await act_on_one(ack, body, client, "ack")

    @app.action(RESOLVE_ONE)
    async def resolve_one(ack: AsyncAck, body: dict, client) -> None:
        await act_on_one(ack, body, client, "resolve")

    async def act_on_all(ack: AsyncAck, body: dict, respond, action: str) -> None:
        await ack()
        digest_id = _digest_id(body)
        if digest_id is None:
            await _tell(respond, "This button does not belong to a Pulser storm digest.")
            return
        rows, _ = await storms.members(services.pool, digest_id, limit=MAX_PER_CLICK, firing_only=True)
        user = body["user"]["id"]
        changed = 0
        for row in rows:
            if action == "ack" and row["acked_by"]:
                continue
            act = services.incident_actions.ack if action == "ack" else services.incident_actions.resolve
            result = await act(row["id"], user)
            changed += int(result.changed)
        done = "acknowledged" if action == "ack" else "resolved"
        log.info("storm.bulk_action", digest_id=digest_id, action=action, user=user, changed=changed)
        await _tell(respond, f"{count_noun(changed, 'incident')} {done}." if changed else f"Nothing left to be {done}.")

    @app.action(ACK_ALL)
    async def ack_all(ack: AsyncAck, body: dict, respond) -> None:
        await act_on_all(ack, body, respond, "ack")

    @app.action(RESOLVE_ALL)
    async def resolve_all(ack: AsyncAck, body: dict, respond) -> None:
        await act_on_all(ack, body, respond, "resolve")


async def _tell(respond, text: str) -> None:
    await respond(text=text, replace_original=False, response_type="ephemeral")

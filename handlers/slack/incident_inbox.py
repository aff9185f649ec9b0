"""The incident inbox and detail in Slack: `/pulser incidents [filters]`, its row buttons (Open,
Ack, Resolve) and paging, the App Home saved filters, the detail modal (Open, on every incident
message too) and Add note.

Every click makes at most one `views.*` call (Slack's Tier 4 budget is per app, shared by every
user): Open is one views.open (or views.push from inside a modal), a click in a list modal is one
views.update, Add note is one views.push, and its submission closes itself with the ack and
redraws the detail underneath with one views.update. A list in an ephemeral redraws through its
response_url, which is not a Web API call at all.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

import structlog
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError

from alerts.incident_detail import IncidentDetail, assignee, load_detail, state
from alerts.incident_filters import FilterError, IncidentFilter, allowed_text, parse_command_text
from alerts.incident_inbox import CursorError, incident_page
from blocks.incident_detail import ADD_NOTE, NOTE_CALLBACK, NOTE_INPUT, detail_modal, note_error, note_modal, notice_modal
from blocks.incident_inbox import (
    INBOX_ACK,
    INBOX_PAGE,
    INBOX_RESOLVE,
    PAGE_SIZE,
    SAVED_FILTERS,
    PageState,
    filter_error_message,
    inbox_blocks,
    inbox_message,
    inbox_modal,
    parse_page_value,
)
from blocks.incidents import OPEN
from blocks.home import HOME_INBOX_PREFIX
from handlers.slack.payloads import as_int, view_metadata
from handlers.slack.services import SlackServices

log = structlog.get_logger(__name__)

GONE = "This incident is no longer known to Pulser."


async def incidents_command(ack: AsyncAck, command: dict, args: str, services: SlackServices, **_: object) -> None:
    """`/pulser incidents [filters]`: the first page, as an ephemeral answer to the command."""
    user = command.get("user_id") or ""
    try:
        parsed = parse_command_text(args)
    except FilterError as exc:
        await ack(**filter_error_message(exc.problems, allowed_text()))
        return
    if len(parsed.as_text()) > 1500:
        await ack(**filter_error_message({"filter": "too long: at most 1,500 characters"}, allowed_text()))
        return
    blocks, total = await _page_blocks(services, parsed, PageState(parsed.as_text()), user)
    await ack(**inbox_message(blocks, total))


async def _page_blocks(
    services: SlackServices, parsed: IncidentFilter, state: PageState, user: str, *, note: str | None = None
) -> tuple[list[dict], int]:
    now = datetime.now(timezone.utc)
    page = await incident_page(
        services.pool, parsed.for_user(user), now=now, limit=PAGE_SIZE, cursor=state.cursor, count=True
    )
    blocks = inbox_blocks(
        page.rows, state=state, total=page.total or 0, next_cursor=page.next_cursor, now=now, sort=parsed.sort, note=note
    )
    return blocks, page.total or 0


def register(app: AsyncApp, services: SlackServices) -> None:
    async def redraw(body: dict, respond, client, state: PageState, *, note: str | None = None) -> None:
        """Draw the page the clicked button sits on again, where it is: an ephemeral (through its
        response_url) or a list modal (one views.update)."""
        user = body["user"]["id"]
        try:
            parsed = parse_command_text(state.filter_text)
            blocks, total = await _page_blocks(services, parsed, state, user, note=note)
        except (FilterError, CursorError):  # a value we did not write: start over
            parsed = parse_command_text("")
            blocks, total = await _page_blocks(services, parsed, PageState(""), user, note=note)
        view = body.get("view")
        if view and view.get("type") == "modal":
            await _views(client.views_update, user, "inbox", view_id=view["id"],
                         view=inbox_modal(blocks, title="Incidents", metadata=view.get("private_metadata") or ""))
            return
        await respond(replace_original=True, **inbox_message(blocks, total))

    async def on_row_action(ack: AsyncAck, body: dict, respond, client, action: str) -> None:
        await ack()
        parsed = parse_page_value((body.get("actions") or [{}])[0].get("value") or "")
        incident_id = as_int(parsed[1].get("i")) if parsed else None
        if parsed is None or incident_id is None:
            await respond(text="This button does not belong to a Pulser incident list.", replace_original=False,
                          response_type="ephemeral")
            return
        state, _ = parsed
        actions = services.incident_actions
        user = body["user"]["id"]
        result = await (actions.ack(incident_id, user) if action == "ack" else actions.resolve(incident_id, user))
        await redraw(body, respond, client, state, note=result.note)

    @app.action(INBOX_ACK)
    async def inbox_ack(ack: AsyncAck, body: dict, respond, client) -> None:
        await on_row_action(ack, body, respond, client, "ack")

    @app.action(INBOX_RESOLVE)
    async def inbox_resolve(ack: AsyncAck, body: dict, respond, client) -> None:
        await on_row_action(ack, body, respond, client, "resolve")

    @app.action(re.compile(f"^{INBOX_PAGE}"))
    async def inbox_page(ack: AsyncAck, body: dict, respond, client) -> None:
        await ack()
        parsed = parse_page_value((body.get("actions") or [{}])[0].get("value") or "")
        await redraw(body, respond, client, parsed[0] if parsed else PageState(""))

    @app.action(re.compile(f"^{HOME_INBOX_PREFIX}"))
    async def home_inbox(ack: AsyncAck, body: dict, client) -> None:
        """A saved filter on App Home: the list in a modal (Home has no channel to answer in)."""
        await ack()
        name = (body.get("actions") or [{}])[0].get("value") or ""
        saved = {key: (label, words) for key, label, words in SAVED_FILTERS}
        label, words = saved.get(name, ("Incidents", "status=open"))
        user = body["user"]["id"]
        parsed = parse_command_text(words)
        blocks, _ = await _page_blocks(services, parsed, PageState(words), user)
        await _views(client.views_open, user, "inbox", trigger_id=body["trigger_id"],
                     view=inbox_modal(blocks, title=label, metadata=json.dumps({"saved": name})))

    @app.action(OPEN)
    async def open_detail(ack: AsyncAck, body: dict, client) -> None:
        await ack()
        user = body["user"]["id"]
        incident_id = as_int((body.get("actions") or [{}])[0].get("value"))
        detail = await load_detail(services.pool, incident_id) if incident_id is not None else None
        view = _detail_view(detail) if detail else notice_modal("Incident", GONE)
        # From inside a modal (a list on Home), stack the detail on it; from a message, open one.
        inside_modal = (body.get("view") or {}).get("type") == "modal"
        opener = client.views_push if inside_modal else client.views_open
        await _views(opener, user, "detail", trigger_id=body["trigger_id"], view=view)

    @app.action(ADD_NOTE)
    async def add_note(ack: AsyncAck, body: dict, client) -> None:
        await ack()
        user = body["user"]["id"]
        incident_id = as_int((body.get("actions") or [{}])[0].get("value"))
        detail = await load_detail(services.pool, incident_id) if incident_id is not None else None
        if detail is None:
            await _views(client.views_push, user, "note", trigger_id=body["trigger_id"], view=notice_modal("Add a note", GONE))
            return
        parent = (body.get("view") or {}).get("id")
        await _views(client.views_push, user, "note", trigger_id=body["trigger_id"],
                     view=note_modal(detail.incident["id"], detail.incident["title"], parent_view_id=parent))

    @app.view(NOTE_CALLBACK)
    async def note_submitted(ack: AsyncAck, body: dict, view: dict, client) -> None:
        user = body["user"]["id"]
        metadata = view_metadata(view)
        text = ((view.get("state", {}).get("values", {}).get(NOTE_INPUT) or {}).get(NOTE_INPUT) or {}).get("value") or ""
        if problem := note_error(text):
            await ack(response_action="errors", errors={NOTE_INPUT: problem})
            return
        incident_id = as_int(metadata.get("incident_id"))
        if incident_id is None:
            await ack(response_action="errors", errors={NOTE_INPUT: GONE})
            return
        result, note = await services.incident_actions.add_note(incident_id, user, text.strip())
        if note is None:
            await ack(response_action="errors", errors={NOTE_INPUT: result.note or GONE})
            return
        await ack()  # closes the note form; the detail underneath is redrawn with the note in it
        parent = metadata.get("parent")
        detail = await load_detail(services.pool, incident_id)
        if parent and detail is not None:
            await _views(client.views_update, user, "detail", view_id=parent,
                         view=_detail_view(detail))


def _detail_view(detail: IncidentDetail) -> dict:
    incident = detail.incident
    return detail_modal(detail, state=state(incident, datetime.now(timezone.utc)), assignee=assignee(incident))


async def _views(call, user: str, what: str, **kwargs) -> bool:
    try:
        await call(**kwargs)
        return True
    except SlackApiError as exc:  # an expired trigger_id, a view closed meanwhile, a 429
        log.warning("slack.incident_view_failed", user=user, what=what, error=exc.response.get("error"))
        return False

"""The sandbox page in a real browser: what a person trying Pulser sees and clicks, from
`/pulser help` to a recovered alert's thread, with Slack's formatting rendered, never raw."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from alerts.applications import validate_application
from alerts.heartbeat_writer import HeartbeatEvent
from storage import applications
from tests import webhook_senders as send
from tests.browser.conftest import assert_rendered, run_command, visible_text

ALERTS = "C0ALERTS"

# One worker runs them all: one Chromium and one Pulser for the module (see conftest.py).
pytestmark = pytest.mark.xdist_group("browser")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


async def missed_heartbeat(try_out, name: str):
    """An app whose last heartbeat came 12 minutes ago on a 5-minute schedule: alerted at once."""
    spec = validate_application(
        {"name": name, "expected_interval": 300, "grace_period": 0, "channel": "#ops-alerts"}, default_channel="#ops-alerts"
    )
    app = await applications.create_application(try_out.pool, spec, created_by="U0ALICE")
    at = datetime.now(timezone.utc) - timedelta(minutes=12)
    assert (await try_out.heartbeat_writer.submit(HeartbeatEvent(uuid=app.uuid, kind="success", exit_code=None, received_at=at))).found
    return app


def alert_for(page, name: str):
    return page.locator(".msg", has_text=f"{name} missed its heartbeat")


async def test_help_shows_slack_formatting_rendered(page):
    await run_command(page, "/pulser help")

    reply = page.locator(".msg.eph", has_text="watches what you run")
    await reply.wait_for()
    text = await visible_text(page)
    assert "/pulser help" in text and "Only visible to you" in text
    assert "Pulser watches what you run" in text and "💓 Heartbeats" in text
    assert await reply.locator("b", has_text="Commands").count() == 1
    assert await reply.locator("code", has_text="/pulser register [name]").count() == 1
    assert_rendered(text)


async def test_a_command_sent_from_a_shell_shows_on_the_open_page(page, try_out):
    import httpx

    async with httpx.AsyncClient(timeout=10) as shell:  # the README's curl line
        answer = await shell.post(f"{try_out.sandbox.base_url}/sandbox/command", data={"command": "/pulser", "text": "status"})
    assert answer.status_code == 200

    await page.locator(".msg.eph.cmd", has_text="/pulser status").wait_for()  # live: no reload
    await page.locator(".msg.eph", has_text="Only visible to you").nth(1).wait_for()
    assert_rendered(await visible_text(page))


async def test_an_admin_registers_an_app_through_the_modal(page):
    name = unique("nightly-backup")
    await run_command(page, "/pulser register")
    modal = page.get_by_role("dialog", name="Register an app")
    await modal.wait_for()

    await modal.get_by_label("Name").fill(name)
    await modal.get_by_label("Expected every").fill("5m")
    async with page.expect_navigation():
        await modal.get_by_role("button", name="Register").click()

    await page.locator(".msg.eph", has_text=name).wait_for()
    assert await page.get_by_role("dialog", name="Register an app").count() == 0
    text = await visible_text(page)
    assert "/heartbeat/" in text and "curl" in text
    assert_rendered(text)


async def test_a_bad_value_in_the_modal_is_shown_under_its_field(page):
    await run_command(page, "/pulser register")
    modal = page.get_by_role("dialog", name="Register an app")
    await modal.get_by_label("Name").fill(unique("job"))
    await modal.get_by_label("Expected every").fill("5m")
    await modal.get_by_label("Grace period").fill("soon")
    async with page.expect_navigation():
        await modal.get_by_role("button", name="Register").click()

    error = page.get_by_role("dialog", name="Register an app").get_by_role("alert")
    await error.wait_for()
    assert "5m" in await error.inner_text()
    assert await page.get_by_role("dialog").get_by_label("Grace period").input_value() == "soon"  # what was typed stays
    async with page.expect_navigation():
        await page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
    assert await page.get_by_role("dialog", name="Register an app").count() == 0


async def test_a_missed_heartbeat_alert_is_acked_from_its_button(page, try_out):
    name = unique("invoice-run")
    await missed_heartbeat(try_out, name)
    await page.goto(f"{try_out.sandbox.base_url}/?c={ALERTS}")

    alert = alert_for(page, name)
    await alert.get_by_role("button", name="Ack").wait_for()
    bar = await alert.locator(".attachment").first.evaluate("e => getComputedStyle(e).borderLeftColor")
    assert bar == "rgb(242, 113, 28)", "the colour bar of a high-severity incident"
    assert_rendered(await visible_text(page))

    async with page.expect_navigation():
        await alert.get_by_role("button", name="Ack").click()

    await alert.get_by_text("Acked by @alice").wait_for()
    assert await alert.get_by_role("button", name="Ack").count() == 0
    assert_rendered(await visible_text(page))


async def test_a_confirm_dialog_asks_before_the_click_is_sent(page, try_out):
    name = unique("report-mailer")
    await missed_heartbeat(try_out, name)
    await page.goto(f"{try_out.sandbox.base_url}/?c={ALERTS}")
    alert = alert_for(page, name)

    await alert.get_by_role("button", name="Pause monitoring").click()
    dialog = page.get_by_role("dialog", name="Pause monitoring?")
    await dialog.get_by_text(f"No alerts for {name} until someone resumes it; this incident is resolved.").wait_for()
    assert await dialog.locator("b", has_text=name).count() == 1  # its mrkdwn, rendered
    await dialog.get_by_role("button", name="Cancel").click()
    await dialog.wait_for(state="hidden")
    assert await alert.get_by_role("button", name="Pause monitoring").count() == 1, "cancelled: nothing was sent"

    await alert.get_by_role("button", name="Pause monitoring").click()
    async with page.expect_navigation():
        await dialog.get_by_role("button", name="Pause").click()
    await alert.get_by_text("Monitoring paused by @alice").wait_for()


async def test_a_recovery_updates_the_alert_live_and_replies_in_its_thread(page, try_out, sidecar):
    name = unique("cache-warm")
    app = await missed_heartbeat(try_out, name)
    await page.goto(f"{try_out.sandbox.base_url}/?c={ALERTS}")
    await alert_for(page, name).wait_for()

    assert (await sidecar.post(f"/heartbeat/{app.uuid}")).status_code == 200  # the app is back

    recovered = page.locator(".msg", has_text=f"{name} is sending heartbeats again: recovered after")  # without reloading the page
    await recovered.get_by_role("link", name="1 reply").wait_for()
    async with page.expect_navigation():
        await recovered.get_by_role("link", name="1 reply").click()
    thread = page.locator("#thread")
    # The thread shows the incident (its note says so too) and the reply.
    await thread.locator("div.text", has_text=f"{name} is sending heartbeats again").wait_for()
    assert_rendered(await visible_text(page))


async def test_a_webhook_incident_shows_with_its_buttons(page, try_out, sidecar):
    title = unique("Checkout latency over 2s")
    headers, body = send.generic({"title": title, "severity": "high", "service": "checkout", "env": "prod"})
    assert (await sidecar.post("/webhooks/generic", headers=headers, content=body)).status_code == 202
    await page.goto(f"{try_out.sandbox.base_url}/?c={ALERTS}")

    incident = page.locator(".msg", has_text=title)

    for label in ("Ack", "Investigate", "Resolve"):
        await incident.get_by_role("button", name=label).wait_for()
    assert_rendered(await visible_text(page))


async def test_the_app_home_opens_from_the_sidebar(page):
    async with page.expect_navigation():
        await page.locator("#sidebar").get_by_role("button", name="Pulser").click()

    await page.get_by_text("Pulser · the last 24 hours").wait_for()
    assert page.url.endswith("/?c=home")
    assert_rendered(await visible_text(page))


async def test_a_member_is_refused_what_only_admins_may_do(page):
    async with page.expect_navigation():
        await page.locator("#sidebar select[name=user_id]").select_option("U0BOB")
    assert "bob — member" in await page.locator("#sidebar select[name=user_id] option:checked").inner_text()

    await run_command(page, "/pulser register")

    await page.get_by_text("Only Pulser admins can register apps").wait_for()
    assert await page.get_by_role("dialog", name="Register an app").count() == 0

"""Regenerate the README's pictures of the Slack sandbox: `.venv/bin/python docs/screenshots.py`.

Starts Pulser as `pulser run` does with no Slack tokens (the sandbox, an embedded Postgres in a
temporary folder, free ports), makes it do what a person trying it would see — `/pulser help`, a
missed-heartbeat alert, a webhook incident with its buttons and its detail, the incident inbox, a
storm digest, the App Home — and photographs the
sandbox page in the system's headless Chromium (Debian's `chromium`; Playwright's Python client
drives it, nothing is downloaded). The PNGs go to docs/images/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run from a checkout: bot, alerts, storage are the repository's

from alerts.applications import validate_application  # noqa: E402
from alerts.heartbeat_writer import HeartbeatEvent  # noqa: E402
from bot.metrics import Metrics  # noqa: E402
from bot.runtime import Runtime  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from storage import applications  # noqa: E402

WEBHOOK_TOKEN = "screenshots-webhook-token"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
VIEWPORT = {"width": 1280, "height": 760}


async def start_pulser(data_dir: Path) -> Runtime:
    settings = load_settings({
        "PULSER_DATA_DIR": str(data_dir),
        "PULSER_HTTP_PORT": "0",
        "PULSER_SANDBOX_PORT": "0",
        "PULSER_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
        "ALERT_UPDATE_DEBOUNCE_SECONDS": "0",
        "LOG_LEVEL": "warning",
    })
    runtime = Runtime(settings, "run", metrics=Metrics("screenshots"))
    await runtime.start()
    await runtime.wait_connected(timeout=60)
    await runtime.sandbox.wait_for_connection(timeout=60)
    return runtime


async def missed_heartbeat(runtime: Runtime, name: str) -> None:
    """An app last heard from 14 minutes ago on a 5-minute schedule: Pulser alerts at once."""
    spec = validate_application(
        {"name": name, "expected_interval": 300, "grace_period": 60, "channel": "#ops-alerts"},
        default_channel="#ops-alerts",
    )
    app = await applications.create_application(runtime.pool, spec, created_by="U0ALICE")
    at = datetime.now(timezone.utc) - timedelta(minutes=14)
    await runtime.heartbeat_writer.submit(HeartbeatEvent(uuid=app.uuid, kind="success", exit_code=None, received_at=at))


async def webhook_incident(runtime: Runtime) -> None:
    alert = {"title": "Checkout p95 latency above 2 s", "severity": "high", "service": "checkout", "env": "prod",
             "description": "p95 2.4 s for 10 min on `POST /api/orders`", "link": "https://grafana.example.com/d/checkout"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{runtime.http_port}", timeout=10) as sidecar:
        response = await sidecar.post("/webhooks/generic", content=json.dumps(alert),
                                      headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}", "Content-Type": "application/json"})
        response.raise_for_status()


async def storm(runtime: Runtime, count: int) -> None:
    """`count` distinct problems at once in one channel: a dependency failing under many services."""
    services = ("checkout", "search", "payments", "accounts")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{runtime.http_port}", timeout=10) as sidecar:
        for i in range(count):
            alert = {"title": f"Upstream timeout calling inventory ({i + 1})", "severity": "critical" if i == 6 else "high",
                     "service": services[i % len(services)], "env": "prod", "fingerprint": f"inventory-{i}"}
            response = await sidecar.post("/webhooks/generic", content=json.dumps(alert),
                                          headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}", "Content-Type": "application/json"})
            response.raise_for_status()


async def shoot(runtime: Runtime, chromium: str, out: Path) -> list[Path]:
    from playwright.async_api import async_playwright

    base = runtime.sandbox.base_url
    saved: list[Path] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, headless=True)
        page = await (await browser.new_context(viewport=VIEWPORT)).new_page()
        page.set_default_timeout(60_000)

        async def save(name: str) -> None:
            path = out / name
            await page.mouse.move(0, 0)
            await page.screenshot(path=str(path))
            saved.append(path)

        await page.goto(base + "/?c=C0OPS")
        box = page.locator("#composer input[name=message]")
        await box.fill("/pulser help")
        async with page.expect_navigation():
            await box.press("Enter")
        await page.locator(".msg.eph", has_text="watches what you run").wait_for()
        await save("sandbox-help.png")

        await missed_heartbeat(runtime, "nightly-backup")
        await missed_heartbeat(runtime, "invoice-export")
        await page.goto(base + "/?c=C0ALERTS")
        backup = page.locator(".msg", has_text="nightly-backup missed its heartbeat")
        await backup.get_by_role("button", name="Ack").wait_for()
        await page.locator(".msg", has_text="invoice-export missed its heartbeat").wait_for()
        async with page.expect_navigation():
            await backup.get_by_role("button", name="Ack").click()
        await backup.get_by_text("Acked by").wait_for()
        await save("sandbox-alert.png")

        await webhook_incident(runtime)
        incident = page.locator(".msg", has_text="Checkout p95 latency")
        await incident.get_by_role("button", name="Investigate").wait_for()
        await incident.scroll_into_view_if_needed()
        await save("sandbox-incident.png")

        async with page.expect_navigation():
            await incident.get_by_role("button", name="Open").click()
        await page.get_by_role("dialog").wait_for()
        await save("sandbox-incident-detail.png")
        async with page.expect_navigation():
            await page.get_by_role("dialog").get_by_role("button", name="Close").last.click()

        await page.goto(base + "/?c=C0ALERTS")
        box = page.locator("#composer input[name=message]")
        await box.fill("/pulser incidents")
        async with page.expect_navigation():
            await box.press("Enter")
        await page.locator(".msg.eph:not(.cmd)", has_text="Incidents").wait_for()
        await page.locator(".msg.eph:not(.cmd)", has_text="Incidents").scroll_into_view_if_needed()
        await save("sandbox-inbox.png")

        await storm(runtime, 12)
        digest = page.locator(".msg", has_text="Alert storm")
        await digest.get_by_role("button", name="Show all").wait_for()
        await page.get_by_text("Upstream timeout calling inventory (12)").first.wait_for()  # named in the digest
        await digest.scroll_into_view_if_needed()
        await save("sandbox-storm.png")

        async with page.expect_navigation():
            await page.locator("#sidebar").get_by_role("button", name="Pulser").click()
        await page.locator(".home .blk.header").first.wait_for()
        await save("sandbox-app-home.png")
        await browser.close()
    return saved


async def main(out: Path) -> None:
    chromium = next((path for path in map(shutil.which, BROWSERS) if path), None)
    if chromium is None:
        raise SystemExit(f"no Chromium found ({', '.join(BROWSERS)}): apt-get install chromium")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pulser-screenshots-") as tmp:
        runtime = await start_pulser(Path(tmp))
        try:
            for path in await shoot(runtime, chromium, out):
                print(path.relative_to(REPO) if path.is_relative_to(REPO) else path)
        finally:
            await runtime.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images", help="where the PNGs go")
    asyncio.run(main(parser.parse_args().out))

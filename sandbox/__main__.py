"""``python -m sandbox [--host H] [--port P] [--no-rate-limits]``: run the emulator until Ctrl-C.

Prints the URLs and tokens to give the bot, then serves the HTML page at ``/``. Registers two
people (U0ALICE, a workspace admin, and U0BOB, a member) and #ops / #ops-alerts, so commands
injected with the defaults resolve in users.info.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from .server import SlackSandbox


async def _run(host: str, port: int, rate_limits: bool) -> None:
    sb = SlackSandbox(host=host, port=port, rate_limits=rate_limits)
    sb.add_try_out_workspace()
    await sb.start()
    print(f"Slack sandbox on {sb.base_url}  (page: {sb.base_url}/)")
    print(f"  bot:   AsyncWebClient(token={SlackSandbox.BOT_TOKEN!r}, base_url={sb.api_url!r})")
    print(f"  app token: {SlackSandbox.APP_TOKEN}")
    print(
        f"  try:   curl -s -X POST {sb.base_url}/sandbox/command -H 'content-type: application/json' "
        "-d '{\"command\":\"/pulser\",\"text\":\"help\"}'"
    )
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        except NotImplementedError:  # Windows: Ctrl-C still raises KeyboardInterrupt
            pass
    try:
        await stop.wait()
    finally:
        await sb.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3333)
    parser.add_argument(
        "--no-rate-limits", dest="rate_limits", action="store_false",
        help="serve every call instead of answering 429 beyond Slack's published rate limits",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        asyncio.run(_run(args.host, args.port, args.rate_limits))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

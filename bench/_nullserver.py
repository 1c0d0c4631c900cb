"""The floors of row 5: aiohttp answering every POST with an empty 200 and doing nothing else
(no signature check, no Bolt), in its own process, with the bot's ticker on its loop: idle
while the bot works, its stalls are the machine's (the process waiting for a CPU). Prints
{"port": N}; reads `reset` and `stats` as bench._botproc does; stops when stdin closes or
after --lifetime seconds.

    python -m bench._nullserver --lifetime 600
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys

from aiohttp import web

from bench._botproc import Ticker
from bot.server import LISTEN_BACKLOG


async def _answer(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(status=200)


async def _main(lifetime: float) -> None:
    app = web.Application()
    app.router.add_post("/slack/events", _answer)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, backlog=LISTEN_BACKLOG).start()  # the bot's
    print(json.dumps({"port": runner.addresses[0][1]}), flush=True)
    ticker = Ticker()
    tick_task = asyncio.create_task(ticker.run())
    loop = asyncio.get_running_loop()
    closed = asyncio.Event()

    def on_stdin() -> None:
        line = sys.stdin.readline().strip()
        if line == "reset":
            ticker.reset()
            print(json.dumps({"ok": True}), flush=True)
        elif line == "stats":
            print(json.dumps(ticker.stats()), flush=True)
        elif not line:
            loop.remove_reader(sys.stdin.fileno())
            closed.set()

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(closed.wait(), lifetime)
    tick_task.cancel()
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lifetime", type=float, default=600)
    asyncio.run(_main(parser.parse_args().lifetime))


if __name__ == "__main__":
    main()

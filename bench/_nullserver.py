"""The floor of row 5: aiohttp answering every POST with an empty 200 and doing nothing else
(no signature check, no Bolt), in its own process; prints {"port": N} and stops when stdin
closes or after --lifetime seconds.

    python -m bench._nullserver --lifetime 600
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from aiohttp import web

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
    loop = asyncio.get_running_loop()
    closed = asyncio.Event()
    loop.add_reader(sys.stdin.fileno(), lambda: sys.stdin.readline() or closed.set())
    try:
        await asyncio.wait_for(closed.wait(), lifetime)
    except TimeoutError:
        pass
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lifetime", type=float, default=600)
    asyncio.run(_main(parser.parse_args().lifetime))


if __name__ == "__main__":
    main()

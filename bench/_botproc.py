"""The real bot in its own process, with a ticker that records how long its event loop stalls.

    python -m bench._botproc --api URL --nameserver IP:PORT --ca-bundle PEM --lifetime 600

Prints {"port": N} when listening. Reads commands on stdin: `reset` (forget the stalls so far)
and `stats` (print one JSON line: the worst stalls and how many ticks were late); stops when
stdin closes or after --lifetime seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import json
import os
import sys
import tempfile
import time

TICK = 0.005  # seconds between ticks: a stall is how much later than this a tick runs
# Set, each reset-to-stats span is profiled (cProfile, the loop's thread) into this folder.
PROFILE_DIR = os.environ.get("BENCH_BOT_PROFILE")


class SlowCallbacks:
    """The slowest single callbacks the loop ran (what a stall is made of), by name: by wall
    time (work, or the process waiting for a CPU) and by the loop thread's CPU (work); and
    the loop's CPU until the burst's last ack was written, by whose work it was."""

    def __init__(self) -> None:
        self.slowest: list[tuple[float, float, str]] = []  # (wall, cpu, name)
        self.busiest: list[tuple[float, float, str]] = []  # (wall, cpu, name) by cpu
        self.timeline: list[tuple[float, float, str]] = []  # (ended, cpu, whose)
        original = asyncio.events.Handle._run
        recorder = self

        def timed_run(handle: asyncio.events.Handle) -> None:
            started, cpu = time.perf_counter(), time.thread_time()
            original(handle)
            ended = time.perf_counter()
            used = time.thread_time() - cpu
            recorder.timeline.append((ended, used, _whose(handle)))
            if ended - started > 0.005:
                recorder.note(ended - started, used, handle)

        asyncio.events.Handle._run = timed_run  # this helper process only

    def reset(self) -> None:
        self.slowest = []
        self.busiest = []
        self.timeline = []

    def note(self, elapsed: float, cpu: float, handle: asyncio.events.Handle) -> None:
        entry = (elapsed, cpu, _name(handle))
        for ranking, index in ((self.slowest, 0), (self.busiest, 1)):
            ranking.append(entry)
            ranking.sort(key=lambda e, i=index: e[i], reverse=True)  # type: ignore[misc]
            del ranking[10:]

    def until_last_ack(self) -> dict:
        """The loop thread's CPU (ms) until the last response of the span was written."""
        ends = [ended for ended, _, whose in self.timeline if whose == "requests"]
        if not ends:
            return {}
        last = max(ends)
        spent: dict[str, float] = {}
        for ended, cpu, whose in self.timeline:
            if ended <= last:
                spent[whose] = spent.get(whose, 0.0) + cpu
        return {whose: round(cpu * 1000, 1) for whose, cpu in sorted(spent.items())}


def _whose(handle: asyncio.events.Handle) -> str:
    """'requests' (aiohttp's handler of a request, with whatever it awaits inline: Bolt
    before an ack, the ack), 'bolt' (Bolt's listeners, and its work after an early ack),
    'background' (any other task: checks, deliveries) or 'io' (a transport's callback)."""
    task = getattr(getattr(handle, "_callback", None), "__self__", None)
    if not isinstance(task, asyncio.Task):
        return "io"
    code = getattr(task.get_coro(), "cr_code", None)
    filename = code.co_filename if code is not None else ""
    if "aiohttp/web_protocol" in filename:
        return "requests"
    if any(part in filename for part in ("slack_bolt/", "bot/listeners/", "bot/server.py")):
        return "bolt"
    return "background"


def _name(handle: asyncio.events.Handle) -> str:
    callback = getattr(handle, "_callback", None)
    task = getattr(callback, "__self__", None)
    name = repr(task.get_coro()) if isinstance(task, asyncio.Task) else repr(callback)
    return name[:160]


class GcPauses:
    """How long each garbage collection took (a pause of everything on the loop)."""

    def __init__(self) -> None:
        self.pauses: list[tuple[float, float, int]] = []  # (seconds, CPU seconds, generation)
        self._started = self._cpu = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started, self._cpu = time.perf_counter(), time.thread_time()
        else:
            wall, cpu = time.perf_counter() - self._started, time.thread_time() - self._cpu
            self.pauses.append((wall, cpu, info["generation"]))

    def stats(self) -> dict:
        ordered = sorted(self.pauses, key=lambda p: p[1], reverse=True)  # by CPU
        return {
            "collections": len(self.pauses),
            "full": sum(1 for *_, generation in self.pauses if generation == 2),
            "worst_cpu": [(round(t, 4), round(c, 4), g) for t, c, g in ordered[:5]],
        }


class Ticker:
    """Wakes every TICK seconds and notes how late it woke (the loop's stall)."""

    def __init__(self) -> None:
        self.stalls: list[float] = []
        self.ticks = 0
        self.callbacks = SlowCallbacks()
        self.gc = GcPauses()
        self.cpu = time.process_time()  # this process' CPU (all threads) since the reset
        self.profile: cProfile.Profile | None = None
        self.spans = 0

    def reset(self) -> None:
        self.stalls = []
        self.ticks = 0
        self.callbacks.reset()
        self.gc.pauses = []
        self.cpu = time.process_time()
        if PROFILE_DIR:
            if self.profile is not None:
                self.profile.disable()
            self.profile = cProfile.Profile()
            self.profile.enable()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            expected = loop.time() + TICK
            await asyncio.sleep(TICK)
            self.ticks += 1
            late = loop.time() - expected
            if late > 0.002:
                self.stalls.append(late)

    def stats(self) -> dict:
        if self.profile is not None:
            self.profile.disable()
            self.spans += 1
            self.profile.dump_stats(f"{PROFILE_DIR}/span{self.spans}.prof")
            self.profile = None
        ordered = sorted(self.stalls, reverse=True)
        return {
            "ticks": self.ticks,
            "late_over_5ms": sum(1 for s in ordered if s > 0.005),
            "late_over_20ms": sum(1 for s in ordered if s > 0.020),
            "worst": [round(s, 4) for s in ordered[:10]],
            "slowest_callbacks": [
                (round(t, 4), round(cpu, 4), name) for t, cpu, name in self.callbacks.slowest[:5]
            ],
            "busiest_callbacks": [
                (round(t, 4), round(cpu, 4), name) for t, cpu, name in self.callbacks.busiest[:5]
            ],
            "cpu": round(time.process_time() - self.cpu, 4),
            "gc": self.gc.stats(),
            "cpu_ms_until_last_ack": self.callbacks.until_last_ack(),
        }


async def _main(args: argparse.Namespace) -> None:
    from bot.server import BotServer, settle_heap
    from bot.settings import BotSettings
    from bot.store import Store
    from diagnostics import EngineConfig

    settings = BotSettings(
        _env_file=None,
        slack_bot_token="xoxb-bench-0000-token",
        slack_signing_secret=args.secret,
        slack_api_base_url=args.api,
        user_rate="100000/60",
    )
    engine = EngineConfig(
        _env_file=None,
        nameservers=(args.nameserver,),
        ca_bundle=args.ca_bundle,
        allow_private=True,
    )
    with tempfile.TemporaryDirectory(prefix="smtpcheck-bench-bot-") as folder:
        store = await Store.open(f"sqlite+aiosqlite:///{folder}/bot.db")
        server = BotServer(settings=settings, engine_config=engine, store=store)
        port = await server.start(host="127.0.0.1", port=args.port, reuse_port=args.reuse_port)
        settle_heap()  # as `smtpcheck serve` does
        ticker = Ticker()
        tick_task = asyncio.create_task(ticker.run())
        print(json.dumps({"port": port}), flush=True)
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[str] = asyncio.Queue()

        def on_stdin() -> None:
            line = sys.stdin.readline()
            if not line:
                loop.remove_reader(sys.stdin.fileno())
            lines.put_nowait(line)

        loop.add_reader(sys.stdin.fileno(), on_stdin)
        deadline = time.monotonic() + args.lifetime
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = await asyncio.wait_for(lines.get(), left)
            except TimeoutError:
                break
            if not line:
                break
            if line.strip() == "reset":
                ticker.reset()
                print(json.dumps({"ok": True}), flush=True)
            elif line.strip() == "stats":
                print(json.dumps(ticker.stats()), flush=True)
        tick_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tick_task
        await server.stop(grace=5.0)
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--nameserver", required=True)
    parser.add_argument("--ca-bundle", required=True)
    parser.add_argument("--lifetime", type=float, default=600)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--reuse-port", action="store_true", help="let others share the port")
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()

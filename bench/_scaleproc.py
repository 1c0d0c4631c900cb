"""N concurrent diagnoses (or bare sessions) in a fresh process: peak RSS and wall time.

    python -m bench._scaleproc --mode diagnose|floor --n 500 --hosts a,b --nameserver IP:PORT \
        --ca-bundle PEM [--cap 20]

With --cap, the N are submitted at once and run at most `cap` at a time, as the bot's Runner
admits them (SMTPCHECK_MAX_CONCURRENT, an asyncio.Semaphore): the rest wait their turn.

Prints one JSON line: baseline RSS (after one warm-up), peak RSS (sampled and VmHWM), wall
time of the N, and how each ended.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import ssl
import time
from pathlib import Path


def _rss() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process in bytes."""
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, amount, _unit = line.split()
            values[key] = int(amount) * 1024
    return values["VmRSS:"], values["VmHWM:"]


async def _main(args: argparse.Namespace) -> dict:
    hosts = args.hosts.split(",")
    if args.tls_buffer:
        # What an application could choose for its whole process (asyncio's default for
        # every TLS connection is a 256 KiB read buffer); measured, not used by the engine.
        from asyncio import sslproto

        sslproto.SSLProtocol.max_size = args.tls_buffer
    if args.mode == "diagnose":
        from diagnostics import CheckRequest, EngineConfig, diagnose

        config = EngineConfig(
            _env_file=None,
            nameservers=(args.nameserver,),
            ca_bundle=args.ca_bundle,
            allow_private=True,
        )

        async def one(i: int) -> str:
            report = await diagnose(CheckRequest(target=f"{hosts[i % len(hosts)]}:587"), config)
            entered = [p.outcome for p in report.probes if p.role == "entered"]
            if not entered:  # no probe at all: DNS said no (the finding names why)
                return f"{report.verdict}/" + ",".join(f.id for f in report.findings[:1])
            return f"{report.verdict}/{entered[0]}"
    else:
        import aiosmtplib
        import dns.asyncresolver
        import dns.nameserver

        host, _, port = args.nameserver.rpartition(":")
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(host, port=int(port))]
        context = ssl.create_default_context(cafile=args.ca_bundle)

        async def one(i: int) -> str:
            name = hosts[i % len(hosts)]
            address = (await resolver.resolve(name, "A"))[0].address
            smtp = aiosmtplib.SMTP(
                hostname=address, port=587, start_tls=False, tls_context=context, timeout=20
            )
            try:
                await smtp.connect()
                await smtp.ehlo()
                await smtp.starttls(server_hostname=name)
                await smtp.ehlo()
                await smtp.quit()
            except Exception as exc:
                return type(exc).__name__
            finally:
                smtp.close()
            return "ok"

    if args.cap:
        admit = asyncio.Semaphore(args.cap)
        uncapped = one

        async def one(i: int) -> str:
            async with admit:
                return await uncapped(i)

    await one(0)  # imports, caches, the knowledge base: what a running bot already has
    baseline, _ = _rss()
    peak = baseline
    stop = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _rss()[0])
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    started = time.perf_counter()
    outcomes = await asyncio.gather(*(one(i) for i in range(args.n)), return_exceptions=True)
    wall = time.perf_counter() - started
    stop.set()
    await sampler
    rss, hwm = _rss()
    return {
        "mode": args.mode,
        "tls_buffer": args.tls_buffer,
        "cap": args.cap,
        "n": args.n,
        "baseline_rss": baseline,
        "peak_rss": max(peak, rss),
        "hwm": hwm,
        "wall": wall,
        "outcomes": dict(
            collections.Counter(o if isinstance(o, str) else type(o).__name__ for o in outcomes)
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("diagnose", "floor"), required=True)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--hosts", required=True)
    parser.add_argument("--nameserver", required=True)
    parser.add_argument("--ca-bundle", required=True)
    parser.add_argument("--tls-buffer", type=int, default=0, help="asyncio TLS read buffer")
    parser.add_argument("--cap", type=int, default=0, help="at most this many at a time")
    print(json.dumps(asyncio.run(_main(parser.parse_args()))), flush=True)


if __name__ == "__main__":
    main()

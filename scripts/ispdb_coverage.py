"""How many ISPDB domains get a documented outgoing server without any guess (issue 15).

    PYTHONPATH=. python scripts/ispdb_coverage.py

Runs the discovery of diagnostics/_discovery.py for every domain the shipped ISP database
lists, as the engine would for someone@<domain>, against a loopback DNS server that refuses
every question (no traffic leaves the machine; SRV, autodiscover and MX give nothing), so
what is counted is what the shipped data alone documents. A domain counts when discovery
names at least one outgoing server from a documented source (never a guess); the script
also says how many of those are on a port the bot probes by default and encrypted.
"""

from __future__ import annotations

import asyncio
import collections
import sys

from diagnostics import _discovery, _dns, _ispdb
from diagnostics._config import DEFAULT_ALLOWED_PORTS
from diagnostics._fetch import Fetcher
from diagnostics._models import Security
from diagnostics._policy import TargetPolicy
from tests.dns_server import DnsServer, Zone


async def _one(domain: str, resolver: object, fetcher: Fetcher) -> _discovery.Discovery:
    inputs = _discovery.Inputs(domain=domain, email=f"someone@{domain}")
    return await _discovery.discover(inputs, resolver=resolver, fetcher=fetcher, budget=2.0)


async def main() -> int:
    domains = _ispdb.domains()
    stats = _ispdb.stats()
    with DnsServer(Zone(apexes=())) as dns:  # every name outside the apexes: REFUSED
        resolver = _dns.build_resolver([dns.nameserver], timeout=0.5, lifetime=1.0)
        fetcher = Fetcher(resolver, TargetPolicy())
        limit = asyncio.Semaphore(32)

        async def bounded(domain: str) -> _discovery.Discovery:
            async with limit:
                return await _one(domain, resolver, fetcher)

        found = await asyncio.gather(*(bounded(d) for d in domains))
    counts: collections.Counter[str] = collections.Counter()
    missing: list[str] = []
    for result in found:
        documented = result.documented
        if not documented:
            missing.append(result.domain)
            continue
        counts["documented"] += 1
        if any(c.port in DEFAULT_ALLOWED_PORTS for c in documented):
            counts["allowed_port"] += 1
        if any(
            c.port in DEFAULT_ALLOWED_PORTS and c.security is not Security.NONE for c in documented
        ):
            counts["encrypted"] += 1
        if all(c.sources == ("ispdb",) for c in documented):
            counts["ispdb_only"] += 1
    print(
        f"ISPDB: {stats['files']} files, {stats['domain_entries']} domain entries, "
        f"{stats['domains']} distinct domains"
    )
    print(f"documented outgoing server, no guess: {counts['documented']} of {len(domains)}")
    print(f"  on a port probed by default (25/465/587/2525): {counts['allowed_port']}")
    print(f"  of those, with SSL/TLS or STARTTLS: {counts['encrypted']}")
    print(f"  named by the ISP database alone: {counts['ispdb_only']}")
    print(f"no documented server: {len(missing)} {missing[:10]}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

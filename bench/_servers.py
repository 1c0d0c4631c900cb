"""Many aiosmtpd servers and their DNS zone in one process, for the scale benchmark.

    python -m bench._servers --part smtp|dns --count 10 --lifetime 600

Server i listens on 127.0.23.i, 587 (STARTTLS) and 465 (implicit TLS), with a certificate
for s<i>.scale.test from a trustme CA; a dnslib zone maps s<i>.scale.test (and its PTR) to it.
The two parts run as separate processes, so that DNS answers while the SMTP servers are busy
with a thousand handshakes. Prints {"hosts", "ca_bundle"} (smtp) or {"nameserver"} (dns)
when ready; stops when stdin closes or after --lifetime seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import tempfile
from pathlib import Path


async def _main(args: argparse.Namespace) -> None:
    from bench._core import serve_until_stdin_closes
    from tests.certs import CertFactory
    from tests.dns_server import DnsServer, Zone
    from tests.servers import SmtpTestServer

    factory = CertFactory()
    zone = Zone(apexes=("test", "in-addr.arpa"))
    servers: list[SmtpTestServer] = []
    hosts = []
    for i in range(1, args.count + 1):
        name, address = f"s{i}.scale.test", f"127.0.23.{i}"
        hosts.append(name)
        if args.part == "dns":
            zone.host(name, address, ptr=True)
            continue
        cert = factory.valid(name)
        for port, mode in ((587, "starttls"), (465, "ssl")):
            server = SmtpTestServer(host=address, port=port, mode=mode, cert=cert, hostname=name)
            await server.start()
            servers.append(server)
    dns = DnsServer(zone) if args.part == "dns" else None
    if dns is not None:
        await asyncio.to_thread(dns.start)
        _enlarge_receive_buffer(dns.host, dns.port)
    with tempfile.TemporaryDirectory(prefix="smtpcheck-bench-") as folder:
        if dns is not None:
            ready = {"nameserver": dns.nameserver}
        else:
            ready = {"hosts": hosts, "ca_bundle": str(factory.write_ca_bundle(Path(folder)))}
        print(json.dumps(ready), flush=True)
        await serve_until_stdin_closes(args.lifetime)
    for server in servers:
        await server.stop()
    if dns is not None:
        await asyncio.to_thread(dns.stop)


def _enlarge_receive_buffer(host: str, port: int) -> None:
    """500 diagnoses send ~2000 queries at once: a default UDP buffer drops most of them."""
    for name in os.listdir("/proc/self/fd"):
        try:
            sock = socket.socket(fileno=os.dup(int(name)))
        except OSError:
            continue
        try:
            if sock.type == socket.SOCK_DGRAM and sock.getsockname()[:2] == (host, port):
                # FORCE: beyond net.core.rmem_max (root only); plain SO_RCVBUF otherwise.
                option = getattr(socket, "SO_RCVBUFFORCE", socket.SO_RCVBUF)
                try:
                    sock.setsockopt(socket.SOL_SOCKET, option, 8 * 1024 * 1024)
                except PermissionError:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
        except OSError:
            pass
        finally:
            sock.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("smtp", "dns"), required=True)
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--lifetime", type=float, default=600)
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()

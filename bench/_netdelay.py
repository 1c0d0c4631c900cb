"""A slow network on loopback: delaying TCP and UDP proxies and a DNS zone, in one process.

    python -m bench._netdelay --rtt-ms 50 --address 127.0.21.1 --upstream 127.0.20.1 \
        --ports 587,465 --lifetime 300

Every byte is delayed by half the round-trip time in each direction (order kept); a new TCP
connection reaches the upstream one round trip after it was accepted (the SYN/SYN-ACK the
loopback skips). A dnslib zone maps `smtp.good.test` (and its PTR) to the proxy address and
answers through a UDP proxy with the same delay. Prints one JSON line when ready, then runs
until stdin closes or `--lifetime` seconds pass (netem needs a kernel module this machine
may not have; this needs nothing).
"""

from __future__ import annotations

import argparse
import asyncio
import json

from bench._core import GOOD_NAME, serve_until_stdin_closes


class _Pipe:
    """One direction of a proxied TCP connection: every chunk is written `delay` later."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.queue: asyncio.Queue[tuple[float, bytes | None]] = asyncio.Queue()

    async def pump(self, reader: asyncio.StreamReader) -> None:
        loop = asyncio.get_running_loop()
        try:
            while data := await reader.read(65536):
                self.queue.put_nowait((loop.time() + self.delay, data))
        except (ConnectionError, OSError):
            pass
        self.queue.put_nowait((loop.time() + self.delay, None))

    async def deliver(self, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                due, data = await self.queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if data is None:
                    writer.close()
                    return
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            writer.close()


async def _tcp_proxy(address: str, port: int, upstream: str, up_port: int, delay: float):
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(2 * delay)  # the handshake round trip loopback does not have
        try:
            up_reader, up_writer = await asyncio.open_connection(upstream, up_port)
        except OSError:
            writer.close()
            return
        out, back = _Pipe(delay), _Pipe(delay)
        tasks = [
            asyncio.create_task(out.pump(reader)),
            asyncio.create_task(out.deliver(up_writer)),
            asyncio.create_task(back.pump(up_reader)),
            asyncio.create_task(back.deliver(writer)),
        ]
        try:
            await asyncio.gather(*tasks, return_exceptions=True)
        except asyncio.CancelledError:  # the proxy is stopping
            for task in tasks:
                task.cancel()

    return await asyncio.start_server(handle, address, port, reuse_address=True, backlog=512)


class _UdpProxy(asyncio.DatagramProtocol):
    """Each query reaches the DNS server `delay` later, each answer the client `delay` later."""

    def __init__(self, upstream: tuple[str, int], delay: float) -> None:
        self.upstream = upstream
        self.delay = delay
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        asyncio.get_running_loop().create_task(self._relay(data, addr))

    async def _relay(self, data: bytes, client: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(self.delay)
        answer: asyncio.Future[bytes] = loop.create_future()

        class _Once(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                if not answer.done():
                    answer.set_result(data)

        transport, _ = await loop.create_datagram_endpoint(_Once, remote_addr=self.upstream)
        try:
            transport.sendto(data)
            reply = await asyncio.wait_for(answer, 5)
        except TimeoutError:
            return
        finally:
            transport.close()
        await asyncio.sleep(self.delay)
        if self.transport is not None:
            self.transport.sendto(reply, client)


async def _main(args: argparse.Namespace) -> None:
    from tests.dns_server import DnsServer, Zone

    delay = args.rtt_ms / 2000
    zone = Zone(apexes=("test", "in-addr.arpa"))
    zone.host(GOOD_NAME, args.address, ptr=True)
    dns = DnsServer(zone)
    await asyncio.to_thread(dns.start)
    servers = []
    for port in (int(p) for p in args.ports.split(",")):
        servers.append(await _tcp_proxy(args.address, port, args.upstream, port, delay))
    loop = asyncio.get_running_loop()
    udp, _ = await loop.create_datagram_endpoint(
        lambda: _UdpProxy((dns.host, dns.port), delay), local_addr=(args.address, 53)
    )
    print(json.dumps({"nameserver": f"{args.address}:53", "address": args.address}), flush=True)
    await serve_until_stdin_closes(args.lifetime)
    udp.close()
    for server in servers:
        server.close()
    await asyncio.to_thread(dns.stop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rtt-ms", type=float, required=True)
    parser.add_argument("--address", default="127.0.21.1")
    parser.add_argument("--upstream", default="127.0.20.1")
    parser.add_argument("--ports", default="587,465")
    parser.add_argument("--lifetime", type=float, default=600)
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()

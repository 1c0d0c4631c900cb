"""A burst of signed Slack requests from a process of its own, as Slack sends them: each on
its own connection, all at once; the time to each answer, from its connect to the last byte.

    python -m bench._burst URL  < requests.json  > replies.json

stdin: {"requests": [{"body": "...", "headers": {...}}, ...]} (already signed); stdout:
{"replies": [{"status": 200, "elapsed": 0.012, "body": "..."}, ...]} in the same order.

Why not aiohttp in the benchmark's own process: a client costs about as much per request as
the server does (~0.5 ms), and that process also runs the Slack stand-in the bot is calling,
so a burst of 200 measured there is mostly the client's own queue (p99 ~150-220 ms against
an aiohttp server that does nothing). Here the requests are prepared before the clock starts
and each costs a few syscalls, so the burst measures the server.
"""

from __future__ import annotations

import json
import selectors
import socket
import sys
import time
import urllib.parse
from typing import Any

TIMEOUT = 60.0


class _Exchange:
    """One request on its own connection: connect, send, read until the server closes."""

    def __init__(self, address: tuple[str, int], raw: bytes) -> None:
        self.raw = raw
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.sent = 0
        self.received = bytearray()
        self.started = time.perf_counter()
        self.elapsed: float | None = None
        self.sock.connect_ex(address)

    def reply(self) -> dict[str, Any]:
        head, _, body = bytes(self.received).partition(b"\r\n\r\n")
        status_line = head.split(b"\r\n", 1)[0].split()
        status = int(status_line[1]) if len(status_line) > 1 else 0
        return {"status": status, "elapsed": self.elapsed, "body": body.decode("utf-8", "replace")}


def _raw_request(url: str, body: str, headers: dict[str, str]) -> bytes:
    parts = urllib.parse.urlsplit(url)
    data = body.encode()
    lines = [
        f"POST {parts.path} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Connection: close",
        f"Content-Length: {len(data)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


def burst(url: str, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    parts = urllib.parse.urlsplit(url)
    address = (parts.hostname or "127.0.0.1", parts.port or 80)
    raws = [_raw_request(url, r["body"], r["headers"]) for r in requests]
    selector = selectors.DefaultSelector()
    exchanges = []
    for raw in raws:  # every connect started before any answer is read: all at once
        exchange = _Exchange(address, raw)
        exchanges.append(exchange)
        selector.register(exchange.sock, selectors.EVENT_WRITE, exchange)
    open_ = len(exchanges)
    deadline = time.perf_counter() + TIMEOUT
    while open_ and time.perf_counter() < deadline:
        for key, events in selector.select(timeout=1.0):
            exchange = key.data
            if events & selectors.EVENT_WRITE:
                try:
                    exchange.sent += exchange.sock.send(exchange.raw[exchange.sent :])
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:  # refused or reset: status 0, and the row says so
                    exchange.elapsed = time.perf_counter() - exchange.started
                    selector.unregister(exchange.sock)
                    exchange.sock.close()
                    open_ -= 1
                    continue
                if exchange.sent == len(exchange.raw):
                    selector.modify(exchange.sock, selectors.EVENT_READ, exchange)
                continue
            try:
                chunk = exchange.sock.recv(65536)
            except OSError:
                chunk = b""
            if chunk:
                exchange.received += chunk
                continue
            exchange.elapsed = time.perf_counter() - exchange.started
            selector.unregister(exchange.sock)
            exchange.sock.close()
            open_ -= 1
    return [exchange.reply() for exchange in exchanges]


def main() -> None:
    requests = json.load(sys.stdin)["requests"]
    print(json.dumps({"replies": burst(sys.argv[1], requests)}), flush=True)


if __name__ == "__main__":
    main()

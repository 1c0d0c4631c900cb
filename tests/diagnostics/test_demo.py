"""The demo's own loopback DNS server (diagnostics/_demo.py)."""

from __future__ import annotations

import socket
from typing import Any

import dns.message
import dns.query
import pytest
from dnslib import server as dnslib_server

from diagnostics._demo import DEMO_HOST, _dns_server


def test_a_taken_tcp_port_makes_the_demo_pick_another(monkeypatch: pytest.MonkeyPatch) -> None:
    # Another program holds TCP port P while UDP P is free: the kernel may hand the demo P
    # for UDP; it must choose again instead of failing with "Address already in use".
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        real = dnslib_server.DNSServer
        offered: list[int] = []

        def first_udp_gets_the_taken_port(*args: Any, **kwargs: Any) -> Any:
            if not kwargs.get("tcp") and kwargs.get("port") == 0 and not offered:
                kwargs["port"] = port
            offered.append(kwargs["port"])
            return real(*args, **kwargs)

        monkeypatch.setattr(dnslib_server, "DNSServer", first_udp_gets_the_taken_port)
        with _dns_server({DEMO_HOST: "127.0.0.1"}) as dns_port:
            assert offered[:2] == [port, port]  # the clash happened
            assert dns_port != port
            answer = dns.query.udp(
                dns.message.make_query(DEMO_HOST, "A"), "127.0.0.1", port=dns_port, timeout=5
            )
            assert [r.to_text() for r in answer.answer[0]] == ["127.0.0.1"]

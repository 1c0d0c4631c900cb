"""The transcript holds what was sent and received ("<", ">"); events have their own list.

The contract fixes `transcript[].dir` to "<" or ">"; reports used to carry "*" lines for
events ("connected to ...", "TLS established"). Those now live in `events`, and the two
places people read a dialogue, the CLI's --transcript and the bot's technical details,
still show them between the lines, in time order.
"""

from __future__ import annotations

import json
from pathlib import Path

from bot.views.details import transcript_chunks
from diagnostics import CheckRequest, EngineConfig, Timeouts, diagnose
from diagnostics._models import Report
from tests.diagnostics.support import smtpcheck
from tests.dns_server import DnsServer, Zone
from tests.servers import ServerPool

NAME = "mail.events.test"
FAST = Timeouts(dns=1.0, connect=1.0, greeting=1.5, command=1.5, tls=1.5)


async def test_engine_report_keeps_events_out_of_the_transcript(
    ca_bundle: Path, smtp_servers: ServerPool
):
    server = await smtp_servers.start(port=587, mode="starttls")
    async with DnsServer(Zone()) as dns:
        dns.zone.host(NAME, server.host)
        config = EngineConfig(
            nameservers=(dns.nameserver,), ca_bundle=ca_bundle, allow_private=True,
            budget=6.0, timeouts=FAST,
        )  # fmt: skip
        report = await diagnose(CheckRequest(target=NAME, port=587, security="starttls"), config)
    data = json.loads(report.to_json())
    assert {line["dir"] for line in data["transcript"]} == {"<", ">"}
    events = [e["line"] for e in data["events"] if e["probe"] == "587/starttls"]
    assert any(e.startswith("connected to") for e in events)
    assert [e["t_ms"] for e in data["events"]] == sorted(e["t_ms"] for e in data["events"])
    # Read back (history, compare): the same report, events still apart.
    again = Report.model_validate(data)
    assert again.events == report.events and again.transcript == report.transcript
    # The merged view puts each event between the lines where it happened.
    rows = report.exchange()
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)
    first_event = next(i for i, r in enumerate(rows) if r[2] == "*" and r[1] == "587/starttls")
    first_line = next(i for i, r in enumerate(rows) if r[2] == "<" and r[1] == "587/starttls")
    assert first_event < first_line  # "connected to" comes before the greeting
    # The bot's technical details show events too.
    shown = "\n".join(transcript_chunks(data))
    assert "* connected to" in shown and "&lt; 220" in shown


def test_a_stored_report_with_star_lines_loads_with_events_apart():
    stored = {
        "schema": "smtpcheck.report/1",
        "input": {
            "target": "a.test",
            "host": "a.test",
            "port": 587,
            "security": "starttls",
            "email": None,
            "user": None,
            "client": "classic",
        },
        "verdict": "pass",
        "transcript": [
            {"t_ms": 0.5, "dir": "*", "line": "connected to 192.0.2.1:587", "probe": "587/x"},
            {"t_ms": 1.0, "dir": "<", "line": "220 hi", "probe": "587/x"},
        ],
    }
    report = Report.model_validate(stored)
    assert [t.dir for t in report.transcript] == ["<"]
    assert [e.line for e in report.events] == ["connected to 192.0.2.1:587"]
    assert '"*"' not in report.to_json()


async def test_cli_transcript_shows_events_and_json_follows_the_contract(
    ca_bundle: Path, smtp_servers: ServerPool
):
    server = await smtp_servers.start(port=587, mode="starttls")
    async with DnsServer(Zone()) as dns:
        dns.zone.host(NAME, server.host)
        common = ["check", f"{NAME}:587", "--nameserver", dns.nameserver, "--ca-bundle",
                  str(ca_bundle), "--allow-private", "--timeout", "6"]  # fmt: skip
        text = await _run(*common, "--transcript")
        data = json.loads(await _run(*common, "--json"))
    assert "connected to" in text and "STARTTLS" in text
    assert {line["dir"] for line in data["transcript"]} <= {"<", ">"}
    assert any(e["line"].startswith("connected to") for e in data["events"])


async def _run(*args: str) -> str:
    code, out, err = await smtpcheck(*args)
    assert code in (0, 1), err  # 1: a finding of severity error
    return out

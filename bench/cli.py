"""Row 1: one `smtpcheck check` as a whole process next to swaks, and the CLI's start-up."""

from __future__ import annotations

import json
import re
import sys

from bench._core import (
    GOOD_ADDRESS,
    GOOD_NAME,
    BenchError,
    Peers,
    Row,
    Stat,
    child_env,
    interleave,
    ratio,
    timed_run,
    tool,
)

_IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)$")


def run(*, repeat: int) -> list[Row]:
    peers = Peers.find()
    return [_check_vs_swaks(peers, repeat), _startup(repeat)]


def _check_vs_swaks(peers: Peers, repeat: int) -> Row:
    ours_cmd = [
        tool("smtpcheck"),
        "check",
        f"{GOOD_NAME}:587",
        "--nameserver",
        peers.dns,
        "--ca-bundle",
        str(peers.ca_bundle),
        "--allow-private",
        "--json",
    ]
    swaks_cmd = [tool("swaks"), "--server", f"{GOOD_ADDRESS}:587", "--tls", "--quit-after", "AUTH"]
    reports: list[dict] = []

    def ours() -> float:
        elapsed, result = timed_run(ours_cmd)
        if result.returncode != 0:
            raise BenchError(f"smtpcheck check exited {result.returncode}: {result.stderr[-300:]}")
        reports.append(json.loads(result.stdout))
        return elapsed

    def swaks() -> float:
        elapsed, result = timed_run(swaks_cmd)
        if result.returncode != 0 or "STARTTLS" not in result.stdout:
            raise BenchError(f"swaks exited {result.returncode}: {result.stdout[-300:]}")
        return elapsed

    samples = interleave({"ours": ours, "swaks": swaks}, repeat=repeat, warmup=2)
    report = reports[-1]
    if report["verdict"] != "pass":
        raise BenchError(f"smtpcheck's verdict on the good listener was {report['verdict']}")
    ours_stat, peer_stat = Stat(samples["ours"]), Stat(samples["swaks"])
    probes = [f"{p['port']}/{p['security']} {p['outcome']}" for p in report["probes"]]
    found = sorted({f["id"] for f in report["findings"]})
    engine_ms = Stat([r["timings_ms"]["total"] / 1000 for r in reports[2:]])
    return Row(
        key="1",
        what="one check, whole process (Postfix 587)",
        ours=ours_stat,
        peer_name="swaks --tls --quit-after AUTH",
        peer=peer_stat,
        ratio=ratio(ours_stat.median, peer_stat.median),
        goal="<= 1.0x swaks",
        met=ours_stat.median <= peer_stat.median,
        notes=[
            f"smtpcheck: {len(report['probes'])} connections ({', '.join(probes)}), "
            "A+AAAA, PTR + forward check, chain analysis against the CA bundle, "
            f"{len(report['findings'])} findings ({', '.join(found)}); swaks: 1 connection",
            f"of which the diagnosis itself (timings_ms.total): {engine_ms.text()}",
        ],
        extra={"probes": probes, "findings": found, "engine_total": engine_ms.as_json()},
    )


def _startup(repeat: int) -> Row:
    python = sys.executable
    help_cmd = [tool("smtpcheck"), "--help"]
    bare_cmd = [python, "-c", "pass"]

    def ours() -> float:
        elapsed, result = timed_run(help_cmd)
        if result.returncode != 0 or "check" not in result.stdout:
            raise BenchError(f"smtpcheck --help exited {result.returncode}")
        return elapsed

    def bare() -> float:
        return timed_run(bare_cmd)[0]

    samples = interleave({"ours": ours, "bare": bare}, repeat=repeat, warmup=2)
    imports = _import_times(python, repeat=max(3, repeat // 2))
    ours_stat, peer_stat = Stat(samples["ours"]), Stat(samples["bare"])
    top = ", ".join(f"{name} {us / 1000:.0f} ms" for name, us in imports["top"][:6])
    return Row(
        key="1b",
        what="CLI start-up: smtpcheck --help",
        ours=ours_stat,
        peer_name="python -c pass",
        peer=peer_stat,
        ratio=ratio(ours_stat.median, peer_stat.median),
        goal="(context for 1)",
        met=None,
        notes=[
            f"python -X importtime -c 'import diagnostics.cli': "
            f"{Stat(imports['total']).text()} cumulative; largest: {top}",
        ],
        extra={"importtime_total": Stat(imports["total"]).as_json(), "top": imports["top"]},
    )


def _import_times(python: str, *, repeat: int) -> dict:
    """Cumulative import time of diagnostics.cli, and its largest direct contributors."""
    totals: list[float] = []
    top: list[tuple[str, int]] = []
    for _ in range(repeat):
        _, result = timed_run([python, "-X", "importtime", "-c", "import diagnostics.cli"])
        rows = []
        for line in result.stderr.splitlines():
            match = _IMPORT_LINE.match(line)
            if match:
                rows.append((match.group(4), int(match.group(2)), len(match.group(3))))
        total = next((cum for name, cum, _ in rows if name == "diagnostics.cli"), None)
        if total is None:
            raise BenchError("python -X importtime printed no line for diagnostics.cli")
        totals.append(total / 1e6)
        # The modules diagnostics.cli and diagnostics import directly: who costs what.
        shallow = [(name, cum) for name, cum, depth in rows if 2 <= depth <= 5]
        top = sorted(shallow, key=lambda item: -item[1])[:10]
    env_note = child_env().get("PYTHONPYCACHEPREFIX", "")
    return {"total": totals, "top": top, "pycache": env_note}

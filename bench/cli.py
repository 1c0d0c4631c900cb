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
    interleave,
    timed_run,
    tool,
)

_IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)$")


def run(*, repeat: int) -> list[Row]:
    peers = Peers.find()
    return [_check_vs_swaks(peers, repeat), _startup(repeat)]


def _check_args(peers: Peers) -> list[str]:
    return [
        "check",
        f"{GOOD_NAME}:587",
        "--nameserver",
        peers.dns,
        "--ca-bundle",
        str(peers.ca_bundle),
        "--allow-private",
        "--json",
    ]


def _check_vs_swaks(peers: Peers, repeat: int) -> Row:
    ours_cmd = [tool("smtpcheck"), *_check_args(peers)]
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
    imports = _import_times(sys.executable, _check_args(peers), repeat=max(3, repeat // 2))
    top = ", ".join(f"{name} {ms:.0f} ms" for name, ms in imports["top"][:10])
    report = reports[-1]
    if report["verdict"] != "pass":
        raise BenchError(f"smtpcheck's verdict on the good listener was {report['verdict']}")
    ours_stat, peer_stat = Stat(samples["ours"]), Stat(samples["swaks"])
    probes = [f"{p['port']}/{p['security']} {p['outcome']}" for p in report["probes"]]
    found = sorted({f["id"] for f in report["findings"]})
    engine_ms = Stat([r["timings_ms"]["total"] / 1000 for r in reports[2:]])
    return Row.versus(
        ours_stat,
        peer_stat,
        within=2.0,
        key="1",
        what="one check, whole process (Postfix 587)",
        peer_name="swaks --tls --quit-after AUTH",
        goal="<= 2.0x swaks",
        notes=[
            f"smtpcheck: {len(report['probes'])} connections ({', '.join(probes)}), "
            "A+AAAA, PTR + forward check, chain analysis against the CA bundle, "
            f"{len(report['findings'])} findings ({', '.join(found)}); swaks: 1 connection",
            f"of which the diagnosis itself (timings_ms.total): {engine_ms.text()}",
            f"imports of that run (python -X importtime, self time summed per package, "
            f"lowest of {len(imports['total'])}): {Stat(imports['total']).text()} in all; "
            f"largest: {top}",
        ],
        extra={
            "probes": probes,
            "findings": found,
            "engine_total": engine_ms.as_json(),
            "importtime_total": Stat(imports["total"]).as_json(),
            "import_top": imports["top"],
        },
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
    imports = _import_times(python, ["--help"], repeat=max(3, repeat // 2))
    ours_stat, peer_stat = Stat(samples["ours"]), Stat(samples["bare"])
    top = ", ".join(f"{name} {ms:.0f} ms" for name, ms in imports["top"][:6])
    return Row.versus(
        ours_stat,
        peer_stat,
        within=2.0,
        key="1b",
        what="CLI start-up: smtpcheck --help",
        peer_name="python -c pass",
        goal="<= 2.0x python -c pass",
        notes=[
            f"imports of smtpcheck --help (python -X importtime, self time per package): "
            f"{Stat(imports['total']).text()} in all; largest: {top}",
        ],
        extra={"importtime_total": Stat(imports["total"]).as_json(), "top": imports["top"]},
    )


def _import_times(python: str, args: list[str], *, repeat: int) -> dict:
    """Import time of one `smtpcheck ARGS` run: in all, and per top-level package (self
    time summed; the lowest of the runs, since a loaded machine only adds)."""
    code = "import sys; from bot.cli import main; sys.exit(main())"
    totals: list[float] = []
    lowest: dict[str, float] = {}
    for index in range(repeat):
        _, result = timed_run([python, "-X", "importtime", "-c", code, *args])
        per: dict[str, float] = {}
        for line in result.stderr.splitlines():
            match = _IMPORT_LINE.match(line)
            if match:
                package = match.group(4).split(".")[0]
                per[package] = per.get(package, 0.0) + int(match.group(1)) / 1000
        if not per:
            raise BenchError("python -X importtime printed no import line")
        totals.append(sum(per.values()) / 1000)
        for package, ms in per.items():
            lowest[package] = min(lowest.get(package, ms), ms) if index else ms
    top = sorted(lowest.items(), key=lambda item: -item[1])[:12]
    return {"total": totals, "top": top}

"""Row 6: 500 concurrent diagnoses in one process: peak RSS, throughput, memory per diagnosis.

The 500 are submitted at once and admitted as the bot admits them: at most
SMTPCHECK_MAX_CONCURRENT (the bot's default, 20) run at a time, the others wait in its queue
(whose depth the bot's /metrics shows). The same 500 without the cap are measured too.
The servers (10 aiosmtpd pairs on 587/465 and their DNS zone, `bench._servers`) run in a
process of their own; each side runs in a fresh process (`bench._scaleproc`) so that its peak
RSS is its own. The peer is 500 concurrent bare sessions (A lookup, connect, EHLO, STARTTLS,
EHLO, QUIT) against the same servers.
"""

from __future__ import annotations

import json
import subprocess
import sys

from bench._core import REPO, BenchError, Row, Stat, child_env, ratio
from bench._helpers import Helper

N = 500
SERVERS = 10
GOAL_BYTES = 200e6
SMALL_TLS_BUFFER = 32 * 1024


def _bot_cap() -> int:
    """The bot's default SMTPCHECK_MAX_CONCURRENT."""
    from bot.settings import BotSettings

    default = BotSettings.model_fields["max_concurrent"].default
    return int(default)


def run(*, repeat: int) -> list[Row]:
    common = ("--count", str(SERVERS), "--lifetime", "1200")
    with (
        Helper("bench._servers", "--part", "smtp", *common) as smtp,
        Helper("bench._servers", "--part", "dns", *common) as dns,
    ):
        servers = {**smtp.info, **dns.info}
        cap = _bot_cap()
        runs: dict[str, list[dict]] = {"diagnose": [], "floor": []}
        for i in range(max(1, repeat)):
            for mode in ("diagnose", "floor") if i % 2 == 0 else ("floor", "diagnose"):
                extra = ("--cap", str(cap)) if mode == "diagnose" else ()
                runs[mode].append(_one(mode, servers, *extra))
        uncapped = _one("diagnose", servers)
        small = _one("diagnose", servers, "--tls-buffer", str(SMALL_TLS_BUFFER))
    ours, floor = runs["diagnose"], runs["floor"]
    peak = Stat([r["peak_rss"] for r in ours], unit="B")
    floor_peak = Stat([r["peak_rss"] for r in floor], unit="B")
    per = Stat([(r["peak_rss"] - r["baseline_rss"]) / r["n"] for r in ours], unit="B")
    rate = Stat([r["n"] / r["wall"] for r in ours], unit="/s")
    floor_rate = Stat([r["n"] / r["wall"] for r in floor], unit="/s")
    outcomes = ours[-1]["outcomes"]
    return [
        Row(
            key="6",
            what=f"scale: {N} concurrent diagnoses in one process ({cap} at a time), peak RSS",
            ours=peak,
            peer_name=f"{N} bare aiosmtplib sessions",
            peer=floor_peak,
            ratio=ratio(peak.median, floor_peak.median),
            goal="< 200 MB RSS",
            met=peak.high < GOAL_BYTES,
            notes=[
                f"{N} submitted at once, {cap} at a time (the bot's SMTPCHECK_MAX_CONCURRENT "
                f"default; the rest queue): throughput {rate.median:.0f} diagnoses/s (bare "
                f"sessions, all at once: {floor_rate.median:.0f}/s); outcomes {outcomes}; "
                f"servers: {SERVERS} aiosmtpd pairs in one other process, DNS in a third",
                f"without the cap (all {N} at once): peak {uncapped['peak_rss'] / 1e6:.0f} MB, "
                f"{(uncapped['peak_rss'] - uncapped['baseline_rss']) / N / 1e3:.0f} kB per "
                f"diagnosis above a warm baseline of {uncapped['baseline_rss'] / 1e6:.0f} MB, "
                f"{uncapped['n'] / uncapped['wall']:.0f} diagnoses/s, "
                f"outcomes {uncapped['outcomes']}",
                f"asyncio gives each TLS connection a 256 KiB read buffer (~3 per diagnosis); "
                f"uncapped with SSLProtocol.max_size = {SMALL_TLS_BUFFER // 1024} KiB (a private "
                f"asyncio attribute, not changed by smtpcheck) set for the process: "
                f"peak {small['peak_rss'] / 1e6:.0f} MB, "
                f"{small['n'] / small['wall']:.0f} diagnoses/s, outcomes {small['outcomes']}",
            ],
            extra={
                "runs": runs,
                "cap": cap,
                "uncapped": uncapped,
                "small_tls_buffer": small,
                "per_diagnosis": per.as_json(),
                "rate": rate.as_json(),
                "floor_rate": floor_rate.as_json(),
            },
        )
    ]


def _one(mode: str, servers: dict, *extra: str) -> dict:
    command = [
        sys.executable,
        "-m",
        "bench._scaleproc",
        "--mode",
        mode,
        "--n",
        str(N),
        "--hosts",
        ",".join(servers["hosts"]),
        "--nameserver",
        servers["nameserver"],
        "--ca-bundle",
        servers["ca_bundle"],
        *extra,
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=REPO, env=child_env(), timeout=300, check=False
    )
    if result.returncode != 0 or not result.stdout.strip():
        raise BenchError(f"_scaleproc {mode} exited {result.returncode}: {result.stderr[-400:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])

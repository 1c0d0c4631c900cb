"""`python -m bench [names...] [--json PATH] [--repeat N]`: run the benchmarks, print the table.

Names: cli (row 1 and the start-up), engine (2), latency (3), dead (4), bot (5), scale (6),
cold (7: a fresh `smtpcheck serve` to its first ack and first report).
Everything runs on loopback against the interop peers (`scripts/peers.sh start`) and servers
the benchmarks start themselves; every server and helper process stops by itself.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback

from bench._core import RESULTS, BenchError, Row, machine, render_table, write_json

ROWS = {
    "cli": ("bench.cli", 10),
    "engine": ("bench.engine", 20),
    "latency": ("bench.latency", 5),
    "dead": ("bench.dead", 3),
    "bot": ("bench.bot", 1),
    "scale": ("bench.scale", 1),
    "cold": ("bench.coldstart", 3),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"rows to run (default all): {', '.join(ROWS)}"
    )
    parser.add_argument("--json", dest="json_path", help="also write the results here")
    parser.add_argument(
        "--repeat", type=int, default=None, help="samples per side (default per row)"
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in ROWS]
    if unknown:
        parser.error(f"unknown rows {', '.join(unknown)}; known: {', '.join(ROWS)}")
    names = args.names or list(ROWS)
    info = machine()
    print(
        f"machine: {info['nproc']} CPUs, {info['cpu']}, Python {info['python']}, "
        f"Linux {info['kernel']}, {info['openssl']}",
        flush=True,
    )
    rows: list[Row] = []
    failures: dict[str, str] = {}
    for name in names:
        module_name, default_repeat = ROWS[name]
        started = time.perf_counter()
        print(f"running {name} ...", flush=True)
        try:
            module = importlib.import_module(module_name)
            rows += module.run(repeat=args.repeat or default_repeat)
        except BenchError as exc:
            failures[name] = str(exc)
            print(f"  {name}: not measured: {exc}", file=sys.stderr)
        except Exception as exc:  # one broken row must not lose the others
            failures[name] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        print(f"  {name} took {time.perf_counter() - started:.0f} s", flush=True)
    print()
    print(render_table(rows))
    for row in rows:
        for note in row.notes:
            print(f"  [{row.key}] {note}")
    data = {
        "machine": info,
        "command": "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "rows": [row.as_json() for row in rows],
        "failures": failures,
        "table": render_table(rows),
    }
    stamp = time.strftime("%Y%m%d-%H%M%S")
    write_json(RESULTS / f"bench-{stamp}.json", data)
    write_json(RESULTS / "latest.json", data)
    if args.json_path:
        write_json(__import__("pathlib").Path(args.json_path), data)
    print(f"\nresults: {RESULTS / f'bench-{stamp}.json'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

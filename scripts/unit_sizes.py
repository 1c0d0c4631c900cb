"""The hard limits of issue 11: no function over 80 lines, no class over 400 (decorators count).

    python scripts/unit_sizes.py diagnostics bot     # exit 1 and one line per unit over

Prints the longest function and class of each tree, so a change that creeps up is seen early.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

LIMITS = {"function": 80, "class": 400}


def units(root: Path) -> list[tuple[str, str, int]]:
    """(kind, where, lines) for every function and class below `root`."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                kind = "class"
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                kind = "function"
            else:
                continue
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            size = (node.end_lineno or node.lineno) - start + 1
            found.append((kind, f"{path}:{node.lineno} {node.name}", size))
    return found


def main(roots: list[str]) -> int:
    over = 0
    for root in roots:
        found = units(Path(root))
        for kind, limit in LIMITS.items():
            sized = [u for u in found if u[0] == kind]
            if sized:
                longest = max(sized, key=lambda u: u[2])
                print(f"{root}: longest {kind} {longest[1]} ({longest[2]} lines)")
            for _kind, where, size in sized:
                if size > limit:
                    print(f"  over {limit}: {where} ({size} lines)")
                    over += 1
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["diagnostics", "bot"]))

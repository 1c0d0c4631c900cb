"""Every finding ID the source code can emit is in the catalog, with every severity it gets.

The scan reads diagnostics/ and bot/ with `ast` and collects a string only where the code
uses it as a finding ID:

* ``Finding(id=...)`` and ``x.model_copy(update={"id": ...})``;
* ``OutcomeRule("...", ...)`` and any ``finding_id=...`` keyword or ``finding_id = ...``
  assignment (the DNS errors name the rule they become);
* the keys of the rule tables (``*_RULES``) in diagnostics/_assess.py;
* a comparison with a finding's ``.id`` (``finding.id == "..."``, ``f.id in (...)``).

A name (``id=PORT_BLOCKED``), a local mapping (``generic[finding.id]``, ``TABLE.get(...)``)
or a conditional expression is followed back to the literals it can hold; an attribute such
as ``rule.finding_id`` comes from data the knowledge base's loader already cross-checks. So
``f.id.startswith("dns.host.")`` and host names such as "smtp.office365.com" never count.
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from diagnostics._models import Severity
from diagnostics.knowledge import Knowledge, data_dir, load_knowledge_from
from tests.paths import REPO as ROOT

SCANNED = (ROOT / "diagnostics", ROOT / "bot")
NAMESPACES = ("dns", "tcp", "smtp", "tls", "auth", "provider", "settings", "client", "probe",
              "input")  # fmt: skip


@pytest.fixture(scope="module")
def kb() -> Knowledge:
    return load_knowledge_from(data_dir())


# --------------------------------------------------------------------------- the scanner


@dataclass
class Use:
    """One place the code uses a finding ID, and the severities it sets there (if known)."""

    finding_id: str
    where: str
    severities: frozenset[Severity] | None = None  # None: not set here, or not a literal


@dataclass
class _Scope:
    """Assignments visible from a node: the enclosing functions' and the module's."""

    layers: list[dict[str, list[ast.expr]]] = field(default_factory=list)

    def lookup(self, name: str) -> list[ast.expr]:
        for layer in reversed(self.layers):
            if name in layer:
                return layer[name]
        return []


def _assignments(body: Iterable[ast.stmt]) -> dict[str, list[ast.expr]]:
    """name -> assigned values, for plain assignments in this body (not nested functions)."""
    found: dict[str, list[ast.expr]] = {}
    stack = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found.setdefault(target.id, []).append(node.value)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
            found.setdefault(node.target.id, []).append(node.value)
        stack.extend(ast.iter_child_nodes(node))  # type: ignore[arg-type]
    return found


class _Resolver:
    """What literal strings (or Severity members) an expression can evaluate to."""

    def __init__(self, scope: _Scope) -> None:
        self.scope = scope

    def strings(self, node: ast.expr | None, depth: int = 0) -> set[str] | None:
        """The literals `node` can be; None when any part is not a literal we can follow."""
        if node is None or depth > 8:
            return None
        if isinstance(node, ast.Constant):
            return {node.value} if isinstance(node.value, str) else None
        if isinstance(node, ast.Name):
            values = self.scope.lookup(node.id)
            return self._union((self.strings(v, depth + 1) for v in values), empty=not values)
        if isinstance(node, ast.IfExp):
            return self._union([self.strings(node.body, depth + 1),
                                self.strings(node.orelse, depth + 1)])  # fmt: skip
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            return self._union(self.strings(e, depth + 1) for e in node.elts)
        if isinstance(node, ast.Subscript):  # TABLE[key]: every value of the table
            return self._table_values(node.value, depth)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
        ):  # TABLE.get(key[, default]): the values, and the default (None adds nothing)
            values = self._table_values(node.func.value, depth)
            if values is None or len(node.args) < 2:
                return values
            if isinstance(node.args[1], ast.Constant) and node.args[1].value is None:
                return values
            default = self.strings(node.args[1], depth + 1)
            return None if default is None else values | default
        return None

    def _table_values(self, node: ast.expr, depth: int) -> set[str] | None:
        if isinstance(node, ast.Name):
            tables = self.scope.lookup(node.id)
            if tables and all(isinstance(t, ast.Dict) for t in tables):
                return self._union(
                    self.strings(v, depth + 1)
                    for t in tables
                    for v in t.values  # type: ignore[attr-defined]
                )
        return None

    @staticmethod
    def _union(parts: Iterable[set[str] | None], *, empty: bool = False) -> set[str] | None:
        if empty:
            return None
        out: set[str] = set()
        for part in parts:
            if part is None:
                return None
            out |= part
        return out

    def severities(self, node: ast.expr | None, depth: int = 0) -> set[Severity] | None:
        if node is None or depth > 8:
            return None
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "Severity"
        ):
            return {Severity[node.attr]}
        if isinstance(node, ast.IfExp):
            parts = [self.severities(node.body, depth + 1), self.severities(node.orelse, depth + 1)]
            return None if None in parts else set().union(*parts)  # type: ignore[arg-type]
        if isinstance(node, ast.Name):
            values = self.scope.lookup(node.id)
            parts = [self.severities(v, depth + 1) for v in values]
            return None if not parts or None in parts else set().union(*parts)  # type: ignore[arg-type]
        return None


def _call_name(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _is_id_attribute(node: ast.expr) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "id"


class _Scanner(ast.NodeVisitor):
    def __init__(self, tree: ast.Module, where: str, *, rule_tables: bool) -> None:
        self.where = where
        self.rule_tables = rule_tables
        self.scope = _Scope([_assignments(tree.body)])
        self.uses: list[Use] = []

    # scopes ---------------------------------------------------------------------------
    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.scope.layers.append(_assignments(node.body))
        self.generic_visit(node)
        self.scope.layers.pop()

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    # uses -----------------------------------------------------------------------------
    def _add(self, node: ast.AST, value: ast.expr | None, severity: ast.expr | None = None):
        resolver = _Resolver(self.scope)
        ids = resolver.strings(value)
        if not ids:
            return
        levels = resolver.severities(severity) if severity is not None else None
        for finding_id in ids:
            self.uses.append(
                Use(
                    finding_id, f"{self.where}:{node.lineno}", frozenset(levels) if levels else None
                )
            )

    def visit_Call(self, node: ast.Call) -> None:
        name = _call_name(node)
        keywords = {k.arg: k.value for k in node.keywords if k.arg}
        if name == "Finding" and "id" in keywords:
            self._add(node, keywords["id"], keywords.get("severity"))
        if name == "OutcomeRule":
            first = node.args[0] if node.args else keywords.get("finding_id")
            second = node.args[1] if len(node.args) > 1 else keywords.get("severity")
            self._add(node, first, second)
        elif "finding_id" in keywords:
            self._add(node, keywords["finding_id"], keywords.get("severity"))
        if name == "model_copy" and isinstance(keywords.get("update"), ast.Dict):
            update: ast.Dict = keywords["update"]  # type: ignore[assignment]
            for key, value in zip(update.keys, update.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "id":
                    self._add(node, value)
        self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            name = target.id if isinstance(target, ast.Name) else None
            if name == "finding_id":
                self._add(node, node.value)
            if self.rule_tables and name and name.endswith("_RULES"):
                if isinstance(node.value, ast.Dict):
                    for key in node.value.keys:
                        if isinstance(key, ast.Constant) and isinstance(key.value, str):
                            self._add(key, key)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if isinstance(node.target, ast.Name) and node.value is not None:
            if node.target.id == "finding_id":
                self._add(node, node.value)
            if self.rule_tables and node.target.id.endswith("_RULES"):
                if isinstance(node.value, ast.Dict):
                    for key in node.value.keys:
                        if isinstance(key, ast.Constant) and isinstance(key.value, str):
                            self._add(key, key)
        self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> None:
        sides = [node.left, *node.comparators]
        if any(_is_id_attribute(side) for side in sides):
            for side in sides:
                if not _is_id_attribute(side):
                    ids = _Resolver(self.scope).strings(side)
                    for finding_id in ids or ():
                        self.uses.append(Use(finding_id, f"{self.where}:{node.lineno}"))
        self.generic_visit(node)


def scan_source(source: str, where: str = "<source>", *, rule_tables: bool = False) -> list[Use]:
    tree = ast.parse(source)
    scanner = _Scanner(tree, where, rule_tables=rule_tables)
    scanner.visit(tree)
    return scanner.uses


def python_files() -> Iterator[Path]:
    for top in SCANNED:
        for path in sorted(top.rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def scan_tree() -> list[Use]:
    uses: list[Use] = []
    for path in python_files():
        where = str(path.relative_to(ROOT))
        uses += scan_source(
            path.read_text(encoding="utf-8"),
            where,
            rule_tables=where == "diagnostics/_assess.py",
        )
    return uses


@pytest.fixture(scope="module")
def uses() -> list[Use]:
    return scan_tree()


# --------------------------------------------------------------------------- the scanner itself


def test_scanner_finds_ids_only_where_they_are_used_as_finding_ids() -> None:
    source = textwrap.dedent(
        """
        BLOCKED = "client.port_blocked"
        FALLBACK = {"client.x_one": "tcp.fallback_one"}
        HOST = "smtp.office365.com"
        SERVER_SIDE = ("dns.host.", "tls.")

        class Lookup(Exception):
            finding_id = "dns.example_class"

        DNS_RULES = {"dns.rule_key": OutcomeRule("dns.rule_value", Severity.ERROR, "t", "d")}

        def build(entered, finding, big):
            generic = {"auth.generic_in": "auth.generic_out"}
            level = Severity.ERROR if big else Severity.INFO
            if finding.id.startswith(SERVER_SIDE) or finding.id == "smtp.compared":
                pass
            connect(HOST, "smtp.example.org")
            substitute = FALLBACK.get(finding.id)
            return [
                Finding(id="tls.literal", severity=Severity.WARN, title="x"),
                Finding(id=BLOCKED, severity=level, title="x"),
                Finding(id="settings.either" if big else "settings.or", severity=level, title=""),
                Finding(id=finding.id, severity=Severity.INFO, title="dynamic"),
                finding.model_copy(update={"id": generic[finding.id]}),
                finding.model_copy(update={"id": substitute}),
                finding.model_copy(update={"evidence": {"id": "dns.not_an_id"}}),
                ReplyMeaning(finding_id="auth.keyword", severity=Severity.ERROR),
            ]
        """
    )
    found = {use.finding_id: use for use in scan_source(source, rule_tables=True)}
    assert set(found) == {
        "client.port_blocked", "tcp.fallback_one", "dns.example_class", "dns.rule_key",
        "dns.rule_value", "smtp.compared", "tls.literal", "settings.either", "settings.or",
        "auth.generic_out", "auth.keyword",
    }  # fmt: skip
    assert found["tls.literal"].severities == {Severity.WARN}
    assert found["client.port_blocked"].severities == {Severity.ERROR, Severity.INFO}
    assert found["dns.rule_value"].severities == {Severity.ERROR}
    assert found["smtp.compared"].severities is None


def test_scanner_covers_the_real_emitting_sites(uses: list[Use]) -> None:
    found = {use.finding_id for use in uses}
    # one from each way the code builds findings: a literal id=, a module constant, an
    # outcome rule, a DNS rule key, an error class's finding_id, the engine's mapping table
    expected = {"provider.unknown", "client.tls_intercepted", "client.server_ok_from_here",
                "tcp.refused", "dns.servfail", "dns.host.nxdomain", "auth.failed.credentials",
                "dns.sender.nxdomain", "dns.tlsrpt.invalid"}  # fmt: skip
    assert expected <= found, expected - found
    assert "smtp.office365.com" not in found
    assert not any(fid.endswith(".") for fid in found)
    wheres = {use.where.split(":")[0] for use in uses}
    assert {"diagnostics/_engine.py", "diagnostics/_sender.py", "diagnostics/_assess.py",
            "diagnostics/client_check/_compare.py", "diagnostics/_dns.py"} <= wheres  # fmt: skip


# --------------------------------------------------------------------------- the catalog


def test_every_emitted_id_is_in_the_catalog(kb: Knowledge, uses: list[Use]) -> None:
    catalog = set(kb.finding_ids)
    missing = sorted({f"{use.finding_id} ({use.where})" for use in uses
                      if use.finding_id not in catalog})  # fmt: skip
    assert not missing, "finding IDs used in the code but not in findings.yaml: " + ", ".join(
        missing
    )


def test_emitted_ids_use_the_known_namespaces(uses: list[Use]) -> None:
    odd = sorted({u.finding_id for u in uses if u.finding_id.split(".")[0] not in NAMESPACES})
    assert not odd, odd


def test_every_severity_the_code_sets_is_in_the_catalog(kb: Knowledge, uses: list[Use]) -> None:
    wrong = []
    for use in uses:
        if use.severities is None or use.finding_id not in kb.finding_ids:
            continue
        allowed = set(kb.finding(use.finding_id).severities)
        extra = use.severities - allowed
        if extra:
            wrong.append(f"{use.finding_id} at {use.where}: {sorted(s.value for s in extra)}")
    assert not wrong, "severities missing from findings.yaml: " + "; ".join(wrong)


def test_client_check_ids_are_all_catalogued(kb: Knowledge) -> None:
    from diagnostics.client_check import FINDING_IDS

    assert set(FINDING_IDS) <= set(kb.finding_ids)
    assert {f.id for f in kb.findings if f.category == "client"} == set(FINDING_IDS)


def test_data_severities_must_be_catalogued(tmp_path: Path) -> None:
    import shutil

    from diagnostics._errors import KnowledgeError

    target = tmp_path / "data"
    shutil.copytree(data_dir(), target)
    replies = target / "replies.yaml"
    text = replies.read_text(encoding="utf-8")
    old = "    finding_id: auth.failed.basic_retired\n"
    assert old in text
    replies.write_text(text.replace(old, old + "    severity: info\n", 1), encoding="utf-8")
    findings = target / "findings.yaml"
    text = findings.read_text(encoding="utf-8")
    old = "other_severities: [warn], category: client,"
    assert old in text
    findings.write_text(text.replace(old, "other_severities: [error], category: client,", 1),
                        encoding="utf-8")  # fmt: skip
    with pytest.raises(
        KnowledgeError, match=r"findings\.yaml: findings\.\d+: .*repeats a severity"
    ):
        load_knowledge_from(target)
    shutil.copy(data_dir() / "findings.yaml", findings)
    with pytest.raises(KnowledgeError) as info:
        load_knowledge_from(target)
    assert "rule basic_retired: gives 'auth.failed.basic_retired' severity 'info'" in str(
        info.value
    )

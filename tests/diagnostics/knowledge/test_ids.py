"""Every finding ID the code names exists in the catalog, and the catalog words each finding.

The engine makes findings only through ``diagnostics._findings.finding(id, **facts)``, which
takes severity and headline from ``findings.yaml``. So the scan is short: the first argument
of every ``finding(...)`` and ``OutcomeRule(...)`` call, every ``finding_id = "..."`` (the DNS
errors name the rule they become) and every comparison with a finding's ``.id``, as a string
literal or a module-level name bound to one.
"""

from __future__ import annotations

import ast
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from diagnostics import Severity
from diagnostics._errors import KnowledgeError
from diagnostics._findings import finding
from diagnostics.knowledge import Knowledge, data_dir, load_knowledge_from
from tests.paths import REPO as ROOT

SCANNED = (ROOT / "diagnostics", ROOT / "bot")
FACTORIES = {"finding", "OutcomeRule"}


@pytest.fixture(scope="module")
def kb() -> Knowledge:
    return load_knowledge_from(data_dir())


def _ids_in(path: Path) -> Iterator[tuple[str, int]]:
    """(finding ID, line) for every place `path` names a finding ID."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    constants = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for target in node.targets
        if isinstance(target, ast.Name) and isinstance(node.value.value, str)
    }

    def values(node: ast.expr) -> Iterator[str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.value
        elif isinstance(node, ast.Name) and node.id in constants:
            yield constants[node.id]
        elif isinstance(node, ast.Tuple | ast.List | ast.Set):
            for element in node.elts:
                yield from values(element)

    for node in ast.walk(tree):
        named: list[ast.expr] = []
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name in FACTORIES:
                named.append(node.args[0])
        elif isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "finding_id" for t in node.targets
        ):
            named.append(node.value)
        elif isinstance(node, ast.Compare) and isinstance(node.left, ast.Attribute):
            if node.left.attr == "id":
                named += node.comparators
        for expr in named:
            for value in values(expr):
                yield value, node.lineno


def scan() -> list[tuple[str, str]]:
    return [
        (finding_id, f"{path.relative_to(ROOT)}:{line}")
        for root in SCANNED
        for path in sorted(root.rglob("*.py"))
        for finding_id, line in _ids_in(path)
    ]


def test_every_id_the_code_names_is_in_the_catalog(kb: Knowledge) -> None:
    used = scan()
    # The scan sees each way the code names an ID: a literal, a module constant, an outcome
    # rule, a DNS error's finding_id and a comparison.
    ids = {finding_id for finding_id, _where in used}
    assert {"provider.unknown", "client.tls_intercepted", "tcp.refused", "dns.servfail",
            "smtp.banner.rejected"} <= ids  # fmt: skip
    missing = sorted(f"{fid} ({where})" for fid, where in used if fid not in kb.finding_ids)
    assert not missing, "finding IDs not in findings.yaml: " + ", ".join(missing)


def test_client_check_ids_are_all_catalogued(kb: Knowledge) -> None:
    from diagnostics.client_check import FINDING_IDS

    assert set(FINDING_IDS) <= set(kb.finding_ids)
    assert {f.id for f in kb.findings if f.category == "client"} == set(FINDING_IDS)


# --------------------------------------------------------------------------- the factory


def test_the_factory_takes_severity_and_headline_from_the_catalog() -> None:
    made = finding("dns.spf.missing", detail="d", evidence={"domain": "contoso.test"})
    assert (made.severity, made.title) == (Severity.WARN, "contoso.test has no SPF record")
    assert made.evidence == {"domain": "contoso.test"} and made.detail == "d"


def test_a_fact_switches_its_case_on() -> None:
    def mx(**facts: object) -> tuple[Severity, str]:
        made = finding("dns.mx.unresolvable", evidence={"domain": "d.test"}, names="a", **facts)
        return made.severity, made.title

    assert mx() == (Severity.WARN, "MX host of d.test does not resolve: a")
    assert mx(several=True) == (Severity.WARN, "MX hosts of d.test do not resolve: a")
    assert mx(several=True, undeliverable=True)[0] is Severity.ERROR
    assert mx(undeliverable=False)[0] is Severity.WARN


def test_the_factory_refuses_an_unknown_id() -> None:
    with pytest.raises(KeyError, match=r"dns\.no_such_thing"):
        finding("dns.no_such_thing")


def test_a_missing_fact_reads_as_a_question_mark() -> None:
    assert finding("dns.spf.missing").title == "? has no SPF record"


# --------------------------------------------------------------------------- the catalog


def _edited_copy(tmp_path: Path, name: str, old: str, new: str) -> Path:
    """A copy of the bundled data with one edit in `name`; the copy's directory."""
    target = tmp_path / "data"
    if not target.exists():
        shutil.copytree(data_dir(), target)
    path = target / name
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return target


def test_data_severities_must_be_catalogued(tmp_path: Path) -> None:
    old = "    finding_id: auth.failed.basic_retired\n"
    _edited_copy(tmp_path, "replies.yaml", old, old + "    severity: info\n")
    old = "other_severities: [warn], category: client,"
    new = "other_severities: [error], category: client,"
    target = _edited_copy(tmp_path, "findings.yaml", old, new)
    with pytest.raises(
        KnowledgeError, match=r"findings\.yaml: findings\.\d+: .*repeats a severity"
    ):
        load_knowledge_from(target)
    shutil.copy(data_dir() / "findings.yaml", target / "findings.yaml")
    with pytest.raises(KnowledgeError) as info:
        load_knowledge_from(target)
    assert "rule basic_retired: gives 'auth.failed.basic_retired' severity 'info'" in str(
        info.value
    )


def test_a_case_severity_must_be_listed(tmp_path: Path) -> None:
    old = "cases: {reverse_dns: {severity: info}}"
    new = "cases: {reverse_dns: {severity: error}}"
    target = _edited_copy(tmp_path, "findings.yaml", old, new)
    with pytest.raises(KnowledgeError, match=r"case 'reverse_dns': severity 'error'"):
        load_knowledge_from(target)

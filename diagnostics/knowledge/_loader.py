"""Read the YAML data files, validate them, and check that they fit together."""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from diagnostics._errors import KnowledgeError
from diagnostics._models import OutlookClient, Severity
from diagnostics.knowledge._kb import Knowledge
from diagnostics.knowledge._models import (
    ClientMap,
    ClientsFile,
    ClientSpec,
    ErrorTextsFile,
    FindingsFile,
    FixEntry,
    FixesFile,
    FixSpec,
    PoliciesFile,
    Policy,
    ProvidersFile,
    RepliesFile,
)
from diagnostics.knowledge._render import (
    CLIENT_BUILTINS,
    CONTEXT_VARIABLES,
    DATED_VARIABLES,
    alternatives,
    placeholders,
    spec_templates,
)

M = TypeVar("M", bound=BaseModel)


@functools.cache
def _strict_loader() -> type[Any]:
    """SafeLoader that refuses a key written twice in one mapping (PyYAML keeps the last).

    Made on first use: a run that finds the validated knowledge base in its cache never
    imports PyYAML.
    """
    import yaml

    # The C parser when PyYAML has it (about 4x faster); same safe constructor either way.
    base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class _StrictLoader(base):  # type: ignore[misc,valid-type]
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _value in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # "<<: *anchor" merges; explicit keys may override merged ones
                key = self.construct_object(key_node, deep=True)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r}", key_node.start_mark
                    )
                seen.add(key)
            mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
            return mapping

    return _StrictLoader


def data_dir() -> Path:
    """The bundled data directory (``diagnostics/knowledge/data``)."""
    return Path(str(importlib.resources.files("diagnostics.knowledge") / "data"))


@functools.cache
def load_knowledge() -> Knowledge:
    """The bundled knowledge base, once per process: validated once per data version
    (`_cache`: later runs construct it from the validated JSON kept in the user's cache)."""
    from diagnostics.knowledge import _cache

    return Knowledge(**_cache.load_parts(data_dir(), validated_parts))


def load_knowledge_from(directory: Path) -> Knowledge:
    """Load and validate a knowledge base; raises KnowledgeError naming the file and field."""
    return Knowledge(**validated_parts(directory))


def validated_parts(directory: Path) -> dict[str, Any]:
    """`Knowledge`'s keyword arguments, read from `directory` and validated."""
    findings = _read(directory / "findings.yaml", FindingsFile).findings
    providers = _read(directory / "providers.yaml", ProvidersFile)
    clients = _read(directory / "clients.yaml", ClientsFile).clients
    replies = _read(directory / "replies.yaml", RepliesFile)
    error_texts = _read(directory / "errortexts.yaml", ErrorTextsFile)
    policies = _read(directory / "policies.yaml", PoliciesFile).policies
    fix_files = sorted(directory.glob("fixes*.yaml"))
    if not fix_files:
        raise KnowledgeError(f"{directory}: no fixes*.yaml file")
    fixes = [entry for path in fix_files for entry in _read(path, FixesFile).fixes]

    problems: list[str] = []
    finding_ids = _unique("findings.yaml: finding", (f.id for f in findings), problems)
    provider_keys = _unique("providers.yaml: provider", (p.key for p in providers.providers),
                            problems)  # fmt: skip
    _unique("fixes: entry for finding", (f.finding for f in fixes), problems)
    _unique("replies.yaml: rule", (r.id for r in replies.rules), problems)
    _unique("errortexts.yaml: code", (c.code for c in error_texts.codes), problems)
    _unique("errortexts.yaml: message", (m.id for m in error_texts.messages), problems)
    client_keys = {c.key for c in clients}
    for client in OutlookClient:
        if client.value not in client_keys:
            problems.append(f"clients.yaml: no entry for client {client.value!r}")

    severities = {f.id: f.severities for f in findings}

    def need_finding(where: str, finding_id: str, severity: Severity | None = None) -> None:
        if finding_id not in finding_ids:
            problems.append(f"{where}: finding {finding_id!r} is not in findings.yaml")
        elif severity is not None and severity not in severities[finding_id]:
            problems.append(
                f"{where}: gives {finding_id!r} severity {severity.value!r}, which findings.yaml"
                " does not list for it (severity or other_severities)"
            )

    variants = {r.variant for r in replies.rules if r.variant}
    for entry in fixes:
        need_finding(f"fixes: {entry.finding}", entry.finding)
        problems += _check_fix(entry, provider_keys, variants, clients)
    for missing in sorted(finding_ids - {entry.finding for entry in fixes}):
        problems.append(f"fixes: no entry for finding {missing!r}")
    for rule in replies.rules:
        need_finding(f"replies.yaml: rule {rule.id}", rule.finding_id, rule.severity)
        for key in rule.providers:
            if key not in provider_keys:
                problems.append(f"replies.yaml: rule {rule.id}: unknown provider {key!r}")
    for stage, finding_id in replies.stage_findings.items():
        # an unrecognised reply is always an error (_replies.py)
        need_finding(f"replies.yaml: stage_findings.{stage}", finding_id, Severity.ERROR)
    for code in error_texts.codes:
        for finding_id in code.finding_ids:
            need_finding(f"errortexts.yaml: {code.code}", finding_id)
    for message in error_texts.messages:
        for finding_id in message.finding_ids:
            need_finding(f"errortexts.yaml: {message.id}", finding_id)
    for provider in providers.providers:
        for key, spec in provider.native_clients.items():
            where = f"providers.yaml: {provider.key} native_clients"
            problems += _check_templates(where, {key: spec}, clients)
    problems += _check_policies(policies, provider_keys, need_finding)
    if problems:
        raise KnowledgeError("knowledge base is inconsistent:\n  " + "\n  ".join(problems))
    return {
        "findings": findings,
        "providers": providers.providers,
        "gateways": providers.gateways,
        "clients": clients,
        "fixes": tuple(fixes),
        "replies": replies,
        "error_texts": error_texts,
        "policies": policies,
    }


def _check_policies(
    policies: Iterable[Policy],
    provider_keys: set[str],
    need_finding: Callable[[str, str, Severity | None], None],
) -> list[str]:
    """policies.yaml against the rest: its phrase variables, its findings, its providers."""
    problems = []
    phrased = {p.phrase.variable for p in policies if p.phrase is not None}
    if phrased != DATED_VARIABLES:
        problems.append(
            f"policies.yaml: phrase variables {sorted(phrased)} differ from the ones fix "
            f"templates may use ({sorted(DATED_VARIABLES)}, _render.DATED_VARIABLES)"
        )
    for policy in policies:
        for phase in (policy.before, policy.on_the_day, policy.after):
            if phase is not None:
                need_finding(f"policies.yaml: {policy.id}", policy.id, phase.severity)
        for key in policy.providers:
            if key not in provider_keys:
                problems.append(f"policies.yaml: {policy.id}: unknown provider {key!r}")
    return problems


def _check_fix(
    entry: FixEntry, provider_keys: set[str], variants: set[str], clients: Iterable[ClientSpec]
) -> list[str]:
    """What is wrong with one fixes entry: unknown providers or variants, broken templates."""
    where = f"fixes: {entry.finding}"
    problems = [f"{where}: unknown provider {key!r}" for key in entry.providers
                if key not in provider_keys]  # fmt: skip
    problems += [f"{where}: variant {name!r} is not produced by any reply rule"
                 for name in entry.variants if name not in variants]  # fmt: skip
    maps = [("", entry.clients)]
    maps += [(f" provider {k}", m) for k, m in entry.providers.items()]
    maps += [(f" variant {k}", m) for k, m in entry.variants.items()]
    for label, client_map in maps:
        problems += _check_templates(f"{where}{label}", client_map, clients)
    return problems


def _read(path: Path, model: type[M]) -> M:
    import yaml

    try:
        raw: Any = yaml.load(path.read_text(encoding="utf-8"), Loader=_strict_loader())  # noqa: S506
    except OSError as exc:
        raise KnowledgeError(f"{path.name}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise KnowledgeError(f"{path.name}: not valid YAML: {exc}") from None
    if isinstance(raw, dict):
        # Top-level "x-..." keys only hold YAML anchors shared by the entries below.
        raw = {k: v for k, v in raw.items() if not str(k).startswith("x-")}
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            location = ".".join(str(part) for part in error["loc"])
            lines.append(f"{path.name}: {location}: {error['msg']}")
        raise KnowledgeError("\n".join(lines)) from None


def _unique(what: str, keys: Iterable[str], problems: list[str]) -> set[str]:
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            problems.append(f"{what} {key!r} appears twice")
        seen.add(key)
    return seen


def _check_templates(where: str, client_map: ClientMap, clients: Iterable[ClientSpec]) -> list[str]:
    """Unknown variables anywhere; and each template must be fillable with no context."""
    problems: list[str] = []
    by_key = {c.key: c for c in clients}
    for key, spec in client_map.items():
        targets = list(by_key.values()) if key == "all" else [by_key[key]]
        for client in targets:
            problems += _check_spec(f"{where} [{key}->{client.key}]", spec, client)
    return problems


def _check_spec(where: str, spec: FixSpec, client: ClientSpec) -> list[str]:
    problems = []
    client_names = set(client.vars) | CLIENT_BUILTINS | DATED_VARIABLES
    always = {name for name, value in client.vars.items() if value is not None}
    always |= CLIENT_BUILTINS | DATED_VARIABLES
    for step, required in spec_templates(spec):
        options = alternatives(step)
        for template in options:
            try:
                names = placeholders(template)
            except ValueError as exc:
                problems.append(f"{where}: {exc}")
                continue
            unknown = names - client_names - CONTEXT_VARIABLES
            if unknown:
                problems.append(f"{where}: unknown variable(s) {sorted(unknown)} in {template!r}")
        last = options[-1]
        if not required:
            continue
        try:
            if placeholders(last) - always:
                problems.append(
                    f"{where}: {last!r} needs {sorted(placeholders(last) - always)}; add a last "
                    'alternative that only uses what this client always has (or "")'
                )
        except ValueError:
            pass
    if not alternatives(spec.summary)[-1]:
        problems.append(f"{where}: the summary may not be empty")
    return problems

"""Dated provider policies (basic-auth retirements, app-password rules) as findings."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from diagnostics._models import Finding
from diagnostics.knowledge._models import Policy, Provider


def policy_findings(
    policies: Sequence[Policy],
    provider: Provider,
    *,
    today: dt.date,
    uses_password: bool,
) -> list[Finding]:
    """The provider's policies, worded for `today`: "will be ..." before, "since ..." after."""
    findings = []
    for policy in policies:
        if provider.key not in policy.providers:
            continue
        if policy.password_users_only and not uses_password:
            continue
        in_effect = policy.effective is None or today >= policy.effective
        phase = policy.after if in_effect or policy.before is None else policy.before
        if policy.on_the_day is not None and today == policy.effective:
            phase = policy.on_the_day
        values = {"date": policy.effective_text, "provider": provider.name}
        findings.append(
            Finding(
                id=policy.id,
                severity=phase.severity,
                title=phase.title.format_map(values),
                detail=phase.detail.format_map(values),
                evidence={
                    "provider": provider.key,
                    "effective": policy.effective.isoformat() if policy.effective else None,
                    "in_effect": in_effect,
                    "sources": list(policy.sources),
                },
            )
        )
    return findings


def dated_variables(policies: Sequence[Policy], today: dt.date) -> dict[str, str | None]:
    """Each policy phrase worded for `today`: before, on, or after its date."""
    values: dict[str, str | None] = {}
    for policy in policies:
        phrase, effective = policy.phrase, policy.effective
        if phrase is None or effective is None:
            continue
        if today < effective:
            values[phrase.variable] = phrase.before
        elif today == effective:
            values[phrase.variable] = phrase.on_the_day
        else:
            values[phrase.variable] = phrase.after
    return values

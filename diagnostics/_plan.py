"""Step 2 of a diagnosis, pure: which (port, encryption) pairs to probe, and why.

The setting as entered; the other mode on the same port (to tell "SSL/TLS on a STARTTLS
port" from a dead port); 587 STARTTLS and 465 SSL/TLS (what would work instead); the
provider's documented endpoints. Ports outside the allowed list are dropped, except the one
entered (the target policy has already refused it if it is not allowed).
"""

from __future__ import annotations

from collections.abc import Collection

from diagnostics._models import ProbePlan, Security
from diagnostics._target import Target

IMPLICIT_TLS_PORTS = frozenset({465, 2465})


def entered_plan_security(target: Target) -> Security:
    """What the entered encryption means on the wire (Outlook's "Auto" resolved)."""
    if target.security is Security.AUTO:
        # What Outlook's "Auto" ends up doing: implicit TLS on 465, STARTTLS elsewhere.
        return Security.SSL if target.port in IMPLICIT_TLS_PORTS else Security.STARTTLS
    return target.security


def probe_plans(target: Target, allowed_ports: Collection[int]) -> list[ProbePlan]:
    """The probes for `target`, the entered one first, each (host, port, security) once."""
    entered = entered_plan_security(target)
    plans = [ProbePlan(target.port, entered, "entered")]
    if entered is Security.SSL:
        plans.append(ProbePlan(target.port, Security.STARTTLS, "mode_check"))
    else:
        plans.append(ProbePlan(target.port, Security.SSL, "mode_check"))
    for port, security in ((587, Security.STARTTLS), (465, Security.SSL)):
        plans.append(ProbePlan(port, security, "alternative"))
    for endpoint in target.documented:
        host = None if endpoint.host == target.host else endpoint.host
        plans.append(ProbePlan(endpoint.port, endpoint.security, "provider", host))
    unique: dict[tuple[str | None, int, Security], ProbePlan] = {}
    for plan in plans:
        if plan.port not in allowed_ports and plan.role != "entered":
            continue
        unique.setdefault((plan.host, plan.port, plan.security), plan)
    return list(unique.values())

"""Operator configuration of the engine (environment, `.env`), and per-step timeouts.

`EngineConfig` reads its SMTPCHECK_ variables itself rather than through pydantic-settings,
whose import and source machinery cost a CLI run ~100-200 ms (issue 16); the rules are the
ones pydantic-settings applied: keyword arguments, then the environment (names
case-insensitive), then `.env` in the working directory, then the defaults.
"""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
DEFAULT_ALLOWED_PORTS = frozenset({25, 465, 587, 2525})


class Timeouts(BaseModel):
    """Per-step limits in seconds; each is further capped by what is left of the budget."""

    model_config = ConfigDict(frozen=True)

    dns: float = 3.0
    connect: float = 5.0
    greeting: float = 6.0
    command: float = 5.0  # each reply to EHLO, STARTTLS, AUTH, QUIT
    tls: float = 6.0


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


ENV_PREFIX = "SMTPCHECK_"
_DEFAULT_ENV_FILE = Path(".env")


def _environment(env_file: Path | str | None) -> dict[str, str]:
    """SMTPCHECK_ variables (lower-cased, prefix removed): the environment over `.env`."""
    found: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        from dotenv import dotenv_values  # only when there is a file to read

        for name, value in dotenv_values(env_file).items():
            if value is not None and name.upper().startswith(ENV_PREFIX):
                found[name[len(ENV_PREFIX) :].lower()] = value
    for name, value in os.environ.items():
        if name.upper().startswith(ENV_PREFIX):
            found[name[len(ENV_PREFIX) :].lower()] = value
    return found


class EngineConfig(BaseModel):
    """What the operator decides: DNS, trust, which targets may be probed, budgets.

    `EngineConfig(**values)` fills what `values` leaves out from SMTPCHECK_<FIELD> variables
    of the environment, then of `.env` (`_env_file=None`: no file; another path: that file).
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    nameservers: tuple[str, ...] = ()
    ca_bundle: Path | None = None
    allow_targets: tuple[IPNetwork, ...] = ()
    allowed_ports: frozenset[int] = DEFAULT_ALLOWED_PORTS
    allow_private: bool = False
    budget: float = Field(default=20.0, gt=0, le=300, description="seconds for a whole diagnosis")
    timeouts: Timeouts = Timeouts()
    ehlo_name: str = "smtpcheck.invalid"
    # With encryption "none", test the login anyway (the password crosses the network in
    # clear text). Off: the report says the login was not tried, and why.
    allow_cleartext_login: bool = False
    # Where autoconfig fetches connect (the URL and the certificate stay on 443); tests only.
    https_port: int = Field(default=443, ge=1, le=65535)

    def __init__(self, _env_file: Path | str | None = _DEFAULT_ENV_FILE, **values: Any) -> None:
        environment = _environment(_env_file)
        known = {name: environment[name] for name in type(self).model_fields if name in environment}
        super().__init__(**{**known, **values})

    @field_validator("timeouts", mode="before")
    @classmethod
    def _timeouts(cls, value: object) -> object:
        # From the environment as JSON: SMTPCHECK_TIMEOUTS='{"dns": 1.5}'.
        if isinstance(value, str | bytes):
            try:
                return json.loads(value)
            except ValueError as exc:
                raise ValueError(f"not JSON ({exc})") from None
        return value

    @field_validator("nameservers", mode="before")
    @classmethod
    def _nameservers(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("allow_targets", mode="before")
    @classmethod
    def _allow_targets(cls, value: object) -> object:
        value = _split_csv(value)
        if isinstance(value, list | tuple):
            return tuple(ipaddress.ip_network(str(v), strict=False) for v in value)
        return value

    @field_validator("allowed_ports", mode="before")
    @classmethod
    def _allowed_ports(cls, value: object) -> object:
        value = _split_csv(value)
        if isinstance(value, list | tuple | set | frozenset):
            return frozenset(int(v) for v in value)
        return value

    @field_validator("ca_bundle")
    @classmethod
    def _ca_bundle(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        if not value.is_file():
            raise ValueError(f"CA bundle {value} is not a readable file")
        # Refuse a wrong file now (one clear line), not as a failure inside every diagnosis.
        from cryptography import x509

        try:
            certificates = x509.load_pem_x509_certificates(value.read_bytes())
        except (OSError, ValueError):
            certificates = []
        if not certificates:
            raise ValueError(f"CA bundle {value} holds no PEM certificate")
        return value

"""Operator configuration of the engine (environment, `.env`), and per-step timeouts."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

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


class EngineConfig(BaseSettings):
    """What the operator decides: DNS, trust, which targets may be probed, budgets."""

    model_config = SettingsConfigDict(
        env_prefix="SMTPCHECK_", env_file=".env", extra="ignore", frozen=True
    )

    nameservers: Annotated[tuple[str, ...], NoDecode] = ()
    ca_bundle: Path | None = None
    allow_targets: Annotated[tuple[IPNetwork, ...], NoDecode] = ()
    allowed_ports: Annotated[frozenset[int], NoDecode] = DEFAULT_ALLOWED_PORTS
    allow_private: bool = False
    budget: float = Field(default=20.0, gt=0, le=300, description="seconds for a whole diagnosis")
    timeouts: Timeouts = Timeouts()
    ehlo_name: str = "smtpcheck.invalid"
    # Where autoconfig fetches connect (the URL and the certificate stay on 443); tests only.
    https_port: int = Field(default=443, ge=1, le=65535)

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

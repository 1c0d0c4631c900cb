"""EngineConfig reads its SMTPCHECK_ variables as pydantic-settings did, without it."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from pydantic import ValidationError

from diagnostics import EngineConfig


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    import os

    for name in list(os.environ):
        if name.upper().startswith("SMTPCHECK_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # where `.env` is looked for


def test_variables_fill_the_fields(monkeypatch):
    monkeypatch.setenv("SMTPCHECK_NAMESERVERS", "127.0.0.1:5300, ::1")
    monkeypatch.setenv("SMTPCHECK_ALLOW_TARGETS", "10.0.0.0/8,192.0.2.7")
    monkeypatch.setenv("SMTPCHECK_ALLOWED_PORTS", "587,465")
    monkeypatch.setenv("smtpcheck_allow_private", "true")  # names are case-insensitive
    monkeypatch.setenv("SMTPCHECK_BUDGET", "7.5")
    monkeypatch.setenv("SMTPCHECK_TIMEOUTS", '{"dns": 1.5}')
    monkeypatch.setenv("SMTPCHECK_UNRELATED", "ignored")
    config = EngineConfig()
    assert config.nameservers == ("127.0.0.1:5300", "::1")
    assert config.allow_targets == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.0.2.7/32"),
    )
    assert config.allowed_ports == frozenset({587, 465})
    assert config.allow_private is True
    assert config.budget == 7.5
    assert config.timeouts.dns == 1.5 and config.timeouts.connect == 5.0


def test_arguments_beat_the_environment_which_beats_dot_env(monkeypatch, tmp_path: Path):
    (tmp_path / ".env").write_text("SMTPCHECK_BUDGET=9\nSMTPCHECK_EHLO_NAME=from.dotenv\n")
    assert EngineConfig().budget == 9 and EngineConfig().ehlo_name == "from.dotenv"
    monkeypatch.setenv("SMTPCHECK_BUDGET", "8")
    assert EngineConfig().budget == 8
    assert EngineConfig(budget=3).budget == 3
    assert EngineConfig(_env_file=None).ehlo_name == "smtpcheck.invalid"
    other = tmp_path / "other.env"
    other.write_text("SMTPCHECK_EHLO_NAME=from.other\n")
    assert EngineConfig(_env_file=other).ehlo_name == "from.other"


@pytest.mark.parametrize(
    ("name", "value", "field"),
    [
        ("SMTPCHECK_TIMEOUTS", "{not json", "timeouts"),
        ("SMTPCHECK_BUDGET", "soon", "budget"),
        ("SMTPCHECK_ALLOW_TARGETS", "not-a-network", "allow_targets"),
        ("SMTPCHECK_HTTPS_PORT", "70000", "https_port"),
    ],
)
def test_a_bad_variable_is_a_validation_error_naming_its_field(monkeypatch, name, value, field):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as caught:
        EngineConfig()
    assert [error["loc"][0] for error in caught.value.errors()] == [field]

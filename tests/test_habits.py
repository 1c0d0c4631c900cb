"""The checks CI runs before the tests are the ones pre-commit runs before each commit, with the
tools the dev extra installs: a habit that one of them drops is a habit nobody keeps."""

from __future__ import annotations

import re
import tomllib

import yaml

from tests.paths import REPO

# The check, as .ci/run spells it, and the pre-commit hook that runs the same.
CHECKS = {
    "ruff check": "ruff",
    "ruff format --check": "ruff-format",
    "mypy": "mypy",
}


def _ci_commands_before_the_tests() -> list[str]:
    script = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    before, found, _ = script.partition("exec scripts/test.sh")
    assert found, ".ci/run no longer ends with the README's test command"
    commands = (line.split("#")[0].strip() for line in before.splitlines())
    return [re.sub(r"^python3 -m ", "", command) for command in commands if command]


def test_ci_runs_every_check_before_the_tests() -> None:
    commands = _ci_commands_before_the_tests()
    for check in CHECKS:
        assert any(command.split(" .")[0] == check for command in commands), (check, commands)


def test_pre_commit_runs_the_same_checks_with_the_installed_tools() -> None:
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    hooks = {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}
    assert set(hooks) == set(CHECKS.values())
    for check, hook_id in CHECKS.items():
        hook = hooks[hook_id]
        assert hook["language"] == "system"  # the dev extra's versions, no download
        assert hook["entry"].split()[0] == check.split()[0]
        assert all(word in hook["entry"].split() for word in check.split()[1:]), hook
    assert hooks["mypy"]["pass_filenames"] is False  # mypy.ini names the files


def test_the_dev_extra_installs_the_tools() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    dev = {
        re.split(r"[<>=!~\[ ]", spec, maxsplit=1)[0].lower()
        for spec in project["optional-dependencies"]["dev"]
    }
    assert {"ruff", "mypy", "types-pyyaml", "pytest"} <= dev

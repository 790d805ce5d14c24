"""deploy/k8s/*.yaml and compose.yaml: the fields a hospital's cluster and auditors depend on.

Every Kubernetes document is validated against the Kubernetes OpenAPI schemas (strict: unknown
fields are errors) when `kubernetes-validate` is installed; it bundles the schemas, so this works
offline. The field-level checks below run either way.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
APP_PORT = 8080
GUNICORN_GRACEFUL_TIMEOUT = 20  # deploy/gunicorn.conf.py
# Oldest Kubernetes minor still commonly run in hospitals' clusters, and the newest the validator knows.
K8S_VERSIONS = ("1.28.0", "latest")


def _docs(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def _manifest_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


ALL_DOCS = [(p.name, d) for p in _manifest_files() for d in _docs(p)]


def _one(kind: str) -> dict[str, Any]:
    found = [d for _, d in ALL_DOCS if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def _by_name(kind: str, name: str) -> dict[str, Any]:
    for _, d in ALL_DOCS:
        if d["kind"] == kind and d["metadata"]["name"] == name:
            return d
    raise AssertionError(f"no {kind} named {name}")


@pytest.fixture(scope="module")
def deployment() -> dict[str, Any]:
    return _one("Deployment")


@pytest.fixture(scope="module")
def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def _port_number(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    for p in container["ports"]:
        if p.get("name") == port:
            return p["containerPort"]
    raise AssertionError(f"port name {port!r} is not declared by the container")


# --- schema validation -------------------------------------------------------------------------


def _validator_required() -> bool:
    """In CI, once pyproject.toml lists kubernetes-validate, a missing validator is a failure."""
    if os.environ.get("CI", "").lower() not in {"1", "true", "yes"}:
        return False
    with (REPO / "pyproject.toml").open("rb") as f:
        project = tomllib.load(f)["project"]
    declared = [*project.get("dependencies", [])]
    for extra in project.get("optional-dependencies", {}).values():
        declared.extend(extra)
    return any(re.match(r"kubernetes[-_]validate\b", d, re.IGNORECASE) for d in declared)


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize(("filename", "doc"), ALL_DOCS, ids=[f"{f}:{d['kind']}" for f, d in ALL_DOCS])
def test_schema_valid(filename: str, doc: dict[str, Any], version: str) -> None:
    try:
        import kubernetes_validate
    except ImportError:
        if _validator_required():
            pytest.fail("kubernetes-validate is declared in pyproject.toml but not installed")
        pytest.skip("kubernetes-validate is not installed (pip install kubernetes-validate)")
    if version == "latest":
        version = kubernetes_validate.latest_version()
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{filename}: {doc['kind']} invalid for Kubernetes {version}: {exc.message}")


def test_manifests_are_namespace_less() -> None:
    for filename, doc in ALL_DOCS:
        assert "namespace" not in doc["metadata"], f"{filename} sets a namespace"


def test_kustomization_lists_every_manifest_but_the_secret_example() -> None:
    (kustomization,) = _docs(K8S / "kustomization.yaml")
    assert "namespace" not in kustomization
    listed = kustomization["resources"]
    expected = sorted(p.name for p in _manifest_files() if p.name != "secret.example.yaml")
    assert sorted(listed) == expected
    assert "secret.example.yaml" not in listed, "the example Secret must never be applied"
    for name in listed:
        assert (K8S / name).is_file()


def test_kustomization_image_is_pinned(container: dict[str, Any]) -> None:
    (kustomization,) = _docs(K8S / "kustomization.yaml")
    repo = container["image"].rsplit(":", 1)[0]
    (image,) = [i for i in kustomization["images"] if i["name"] == repo]
    assert image.get("newTag") or image.get("digest")
    assert image.get("newTag") != "latest"


# --- Deployment --------------------------------------------------------------------------------


def test_deployment_replicas_and_labels(deployment: dict[str, Any]) -> None:
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    selector = spec["selector"]["matchLabels"]
    template_labels = spec["template"]["metadata"]["labels"]
    assert selector and selector.items() <= template_labels.items()
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_image_is_pinned_and_pull_policy_sane(container: dict[str, Any]) -> None:
    image = container["image"]
    name, _, tag = image.rpartition(":")
    assert "/" in name and tag, f"image needs a registry path and a tag: {image}"
    assert tag != "latest" and not tag.endswith("-latest")
    assert container["imagePullPolicy"] in {"IfNotPresent", "Always"}


def test_container_port(container: dict[str, Any]) -> None:
    assert [p["containerPort"] for p in container["ports"]] == [APP_PORT]
    assert container["ports"][0]["name"] == "http"


@pytest.mark.parametrize(
    ("probe", "path"),
    [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz"), ("startupProbe", "/healthz")],
)
def test_probes(container: dict[str, Any], probe: str, path: str) -> None:
    http = container[probe]["httpGet"]
    assert http["path"] == path
    assert _port_number(container, http["port"]) == APP_PORT
    assert container[probe]["timeoutSeconds"] >= 1


def test_startup_probe_allows_a_slow_start(container: dict[str, Any]) -> None:
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 30


def test_resources_set(container: dict[str, Any]) -> None:
    def cpu(value: str | int) -> float:
        text = str(value)
        return float(text[:-1]) / 1000 if text.endswith("m") else float(text)

    def mem(value: str) -> int:
        units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
        return int(value[:-2]) * units[value[-2:]]

    requests, limits = container["resources"]["requests"], container["resources"]["limits"]
    assert set(requests) == {"cpu", "memory"} and set(limits) == {"cpu", "memory"}
    assert cpu(requests["cpu"]) <= cpu(limits["cpu"])
    assert mem(requests["memory"]) <= mem(limits["memory"])
    assert mem(limits["memory"]) >= 512 * 2**20, "two gunicorn workers need room"


def test_pod_security_context(deployment: dict[str, Any]) -> None:
    pod = deployment["spec"]["template"]["spec"]
    sc = pod["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["runAsUser"] == 10001
    assert sc["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False


def test_container_security_context(container: dict[str, Any]) -> None:
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["runAsUser"] == 10001
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert "add" not in sc["capabilities"]
    assert sc["seccompProfile"]["type"] == "RuntimeDefault"
    assert sc.get("privileged", False) is False


def test_writable_paths_are_empty_dirs(deployment: dict[str, Any], container: dict[str, Any]) -> None:
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    for path in ("/tmp", "/var/lib/cds"):
        assert path in mounts, f"{path} must be mounted (the root file system is read-only)"
        assert "emptyDir" in volumes[mounts[path]["name"]]
        assert not mounts[path].get("readOnly", False)


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e for e in container.get("env", [])}


def test_database_url_comes_from_the_secret(container: dict[str, Any]) -> None:
    db = _env(container)["CDS_DATABASE_URL"]
    assert "value" not in db
    ref = db["valueFrom"]["secretKeyRef"]
    (example,) = _docs(K8S / "secret.example.yaml")
    assert example["kind"] == "Secret"
    assert ref["name"] == example["metadata"]["name"]
    assert ref["key"] in example["stringData"]
    assert "CHANGE-ME" in example["stringData"][ref["key"]], "the example must not look real"


def test_settings_come_from_the_config_map(container: dict[str, Any]) -> None:
    (ref,) = container["envFrom"]
    config = _by_name("ConfigMap", ref["configMapRef"]["name"])["data"]
    assert config["CDS_AUTH"] == "required"
    assert config["CDS_PRODUCTION"] == "true"
    assert "CDS_ALLOW_INSECURE_DEV" not in config
    assert "CDS_DATABASE_URL" not in config, "the database URL (with password) belongs in the Secret"
    assert all(isinstance(v, str) for v in config.values()), "ConfigMap values must be strings"
    assert not set(config) & set(_env(container)), "a setting defined twice"


def test_trust_file_is_mounted_where_cds_trusted_issuers_points(
    deployment: dict[str, Any], container: dict[str, Any]
) -> None:
    (ref,) = container["envFrom"]
    trust_path = Path(_by_name("ConfigMap", ref["configMapRef"]["name"])["data"]["CDS_TRUSTED_ISSUERS"])
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    mount = next(m for m in container["volumeMounts"] if Path(m["mountPath"]) == trust_path.parent)
    assert mount["readOnly"] is True
    cm_name = volumes[mount["name"]]["configMap"]["name"]
    data = _by_name("ConfigMap", cm_name)["data"]
    assert trust_path.name in data
    trust = yaml.safe_load(data[trust_path.name])
    assert isinstance(trust["issuers"], list)


def test_trust_config_map_loads_with_the_service_loader(tmp_path: Path) -> None:
    trust = pytest.importorskip("cds_service.auth.trust")
    data = _by_name("ConfigMap", "posterior-knee-cds-trust")["data"]
    (name,) = data
    path = tmp_path / name
    path.write_text(data[name], encoding="utf-8")
    issuers = trust.load_trust_config(path)
    assert isinstance(issuers, dict)  # loading it without an error is the point


def test_local_code_lists_are_mounted_read_only(deployment: dict[str, Any], container: dict[str, Any]) -> None:
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    mount = next(m for m in container["volumeMounts"] if m["mountPath"].startswith("/app/cards/local"))
    assert mount["readOnly"] is True
    cm = _by_name("ConfigMap", volumes[mount["name"]]["configMap"]["name"])
    for key, text in (cm.get("data") or {}).items():
        assert key.endswith(".yaml")
        assert yaml.safe_load(text)["concept"] == key.removesuffix(".yaml")


def test_graceful_shutdown_fits_the_grace_period(deployment: dict[str, Any], container: dict[str, Any]) -> None:
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert grace > int(pre_stop[1]) + GUNICORN_GRACEFUL_TIMEOUT


# --- Service, HPA, PDB -------------------------------------------------------------------------


def test_service(deployment: dict[str, Any], container: dict[str, Any]) -> None:
    service = _one("Service")
    spec = service["spec"]
    assert spec.get("type", "ClusterIP") == "ClusterIP"
    assert spec["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert spec["selector"] == deployment["spec"]["selector"]["matchLabels"]
    (port,) = spec["ports"]
    assert port["port"] == 80
    assert _port_number(container, port["targetPort"]) == APP_PORT


def test_hpa(deployment: dict[str, Any]) -> None:
    hpa = _one("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    spec = hpa["spec"]
    target = spec["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        "apps/v1",
        "Deployment",
        deployment["metadata"]["name"],
    )
    assert spec["minReplicas"] >= 2
    assert spec["maxReplicas"] > spec["minReplicas"]
    (metric,) = spec["metrics"]
    assert metric["type"] == "Resource"
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}


def test_pdb(deployment: dict[str, Any]) -> None:
    pdb = _one("PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert pdb["spec"]["minAvailable"] < _one("HorizontalPodAutoscaler")["spec"]["minReplicas"]


# --- compose.yaml ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    (doc,) = _docs(REPO / "compose.yaml")
    return doc


def test_compose_database(compose: dict[str, Any]) -> None:
    db = compose["services"]["db"]
    assert db["image"].rsplit(":", 1)[1].split(".")[0] == "15"
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert db["environment"]["POSTGRES_PASSWORD_FILE"].startswith("/run/secrets/")
    assert "POSTGRES_PASSWORD" not in db["environment"]
    assert "ports" not in db, "the database must not be published on the host"
    volume = db["volumes"][0].split(":")[0]
    assert volume in compose["volumes"], "the database needs a named volume"


def test_compose_service(compose: dict[str, Any]) -> None:
    cds = compose["services"]["cds"]
    assert cds["depends_on"]["db"]["condition"] == "service_healthy"
    assert cds["read_only"] is True
    assert any(t.split(":")[0] == "/tmp" for t in cds["tmpfs"])
    assert cds["cap_drop"] == ["ALL"]
    assert cds["environment"]["CDS_AUTH"] == "required"
    assert "CDS_DATABASE_URL" not in cds["environment"], "the password must come from the secret"
    assert "CDS_ALLOW_INSECURE_DEV" not in cds["environment"]
    for port in cds["ports"]:
        assert port.startswith("127.0.0.1:"), "publish on loopback; TLS proxy in front"
    secret = compose["secrets"][cds["secrets"][0]["source"]]
    assert secret["file"].startswith("./deploy/compose/")
    script = "\n".join(cds["command"])
    assert "postgresql+psycopg://" in script and "/run/secrets/" in script
    assert "gunicorn.conf.py" in script and "cds_service.wsgi:app" in script


def test_compose_secret_files_are_git_ignored() -> None:
    ignored = (REPO / "deploy" / "compose" / ".gitignore").read_text(encoding="utf-8").split()
    assert "db_password.txt" in ignored
    assert "trusted-issuers.yaml" in ignored

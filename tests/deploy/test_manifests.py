"""deploy/k8s (kustomize base, components, overlays) and compose.yaml: every overlay renders with
`kubectl kustomize` and validates strictly against two Kubernetes versions; the fields a hospital's
cluster, its auditors and its monitoring depend on are checked on the rendered output.

Renders with `kubectl kustomize` (the machine image's kubectl 1.32, kustomize v5; see
.ci/install-system-deps.sh); validates with
`kubernetes-validate` (bundled schemas, offline). The Prometheus Operator objects (CRDs) are not in
those schemas: their structure is checked here, and every metric their expressions name must exist.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
OVERLAYS = ("production", "development")
GUNICORN_GRACEFUL_TIMEOUT = 20  # deploy/gunicorn.conf.py
# An older Kubernetes minor still run in hospitals' clusters, and the newest the validator knows.
K8S_VERSIONS = ("1.29.0", "latest")
CRD_GROUPS = ("monitoring.coreos.com/",)
FRONT_PORT, APP_PORT, MANAGEMENT_PORT = 8080, 8081, 9090


@cache
def render(target: str) -> tuple[dict[str, Any], ...]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is missing (kubectl >= 1.21 with kustomize v4+: `kubectl kustomize` renders "
                    "the components; see .ci/install-system-deps.sh)")
    proc = subprocess.run([kubectl, "kustomize", str(K8S / target)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, f"kubectl kustomize {target} failed:\n{proc.stderr}"
    return tuple(d for d in yaml.safe_load_all(proc.stdout) if d)


def one(docs: tuple[dict[str, Any], ...], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def container(docs: tuple[dict[str, Any], ...], name: str, kind: str = "Deployment") -> dict[str, Any]:
    pod = one(docs, kind)["spec"]["template"]["spec"]
    (found,) = [c for c in pod["containers"] if c["name"] == name]
    return found


def config(docs: tuple[dict[str, Any], ...]) -> dict[str, str]:
    return one(docs, "ConfigMap", "posterior-knee-cds-config")["data"]


@pytest.fixture(scope="module", params=OVERLAYS)
def docs(request: pytest.FixtureRequest) -> tuple[dict[str, Any], ...]:
    return render(f"overlays/{request.param}")


@pytest.fixture(scope="module")
def production() -> tuple[dict[str, Any], ...]:
    return render("overlays/production")


# --- rendering and schemas ---------------------------------------------------------------------


def _all_rendered() -> list[tuple[str, dict[str, Any]]]:
    return [(f"{target}:{d['kind']}/{d['metadata']['name']}", d)
            for target in ("base", *(f"overlays/{o}" for o in OVERLAYS)) for d in render(target)]


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_overlay_validates_strictly(version: str) -> None:
    import kubernetes_validate

    if version == "latest":
        version = kubernetes_validate.latest_version()
    checked = 0
    for where, doc in _all_rendered():
        if doc["apiVersion"].startswith(CRD_GROUPS):
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{where} invalid for Kubernetes {version}: {exc.message}")
        checked += 1
    assert checked >= 20


def test_overlays_render_what_they_promise() -> None:
    kinds = {o: sorted(d["kind"] for d in render(f"overlays/{o}")) for o in OVERLAYS}
    assert set(kinds["production"]) == {"ConfigMap", "Deployment", "Service", "PodDisruptionBudget",
                                        "HorizontalPodAutoscaler", "Job", "Ingress", "NetworkPolicy",
                                        "ServiceMonitor", "PrometheusRule"}
    assert set(kinds["development"]) == {"ConfigMap", "Deployment", "Service", "PodDisruptionBudget"}


def test_every_component_is_used_or_documented() -> None:
    used = set()
    for overlay in OVERLAYS:
        used |= {Path(c).name for c in yaml.safe_load((K8S / "overlays" / overlay / "kustomization.yaml")
                                                     .read_text()).get("components", [])}
    for component in (K8S / "components").iterdir():
        assert component.name in used or component.name in (K8S / "overlays" / "production" /
                                                             "kustomization.yaml").read_text(), component


def test_redis_component_renders_on_the_production_overlay(tmp_path: Path) -> None:
    """The optional component, added as a site would: the replay store from a Secret's URL."""
    site = K8S / "overlays" / f"site-test-{tmp_path.name}"  # kustomize wants relative paths
    site.mkdir()
    try:
        (site / "kustomization.yaml").write_text(yaml.safe_dump({
            "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            "resources": ["../production"], "components": ["../../components/redis-replay"]}))
        proc = subprocess.run(["kubectl", "kustomize", str(site)], capture_output=True, text=True, timeout=120,
                              check=False)
    finally:
        shutil.rmtree(site)
    assert proc.returncode == 0, proc.stderr
    docs = tuple(d for d in yaml.safe_load_all(proc.stdout) if d)
    env = {e["name"]: e for e in container(docs, "cds").get("env", [])}
    assert env["CDS_REPLAY_STORE"]["valueFrom"]["secretKeyRef"] == {"name": "posterior-knee-cds-redis", "key": "url"}
    assert len([d for d in docs if d["kind"] == "NetworkPolicy"]) == 2


def test_manifests_are_namespace_less(docs: tuple[dict[str, Any], ...]) -> None:
    assert all("namespace" not in d["metadata"] for d in docs)


# --- the pod -----------------------------------------------------------------------------------


def test_images_are_pinned(docs: tuple[dict[str, Any], ...], request: pytest.FixtureRequest) -> None:
    images = [c["image"] for d in docs if d["kind"] in {"Deployment", "Job"}
              for c in d["spec"]["template"]["spec"]["containers"]]
    assert len(images) >= 2
    for image in images:
        assert not image.endswith(":latest") and ("@sha256:" in image or re.search(r":[\w.-]+$", image))
    if request.node.callspec.params["docs"] == "production":
        assert all(re.search(r"@sha256:[0-9a-f]{64}$", image) for image in images), images


def test_front_buffers_and_the_service_listens_behind_it(docs: tuple[dict[str, Any], ...]) -> None:
    front, cds = container(docs, "front"), container(docs, "cds")
    assert [(p["name"], p["containerPort"]) for p in front["ports"]] == [("http", FRONT_PORT)]
    assert {p["name"]: p["containerPort"] for p in cds["ports"]} == {"app": APP_PORT, "management": MANAGEMENT_PORT}
    settings = config(docs)
    assert settings["CDS_BIND"] == f"0.0.0.0:{APP_PORT}"
    assert settings["CDS_MANAGEMENT_PORT"] == str(MANAGEMENT_PORT)
    upstream = one(docs, "ConfigMap", "posterior-knee-cds-front")["data"]["upstream.conf"]
    assert f"server 127.0.0.1:{APP_PORT}" in upstream
    nginx = (REPO / "deploy" / "nginx" / "nginx.conf").read_text()
    for directive in ("client_header_timeout", "client_body_timeout", "send_timeout", "proxy_request_buffering on",
                      "client_max_body_size 16m", "include /etc/nginx/cds/upstream.conf"):
        assert directive in nginx
    mount = next(m for m in front["volumeMounts"] if m["mountPath"] == "/etc/nginx/cds")
    assert mount["readOnly"] is True


@pytest.mark.parametrize(("probe", "path"), [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz"),
                                             ("startupProbe", "/healthz")])
def test_service_probes_use_the_management_port(docs: tuple[dict[str, Any], ...], probe: str, path: str) -> None:
    http = container(docs, "cds")[probe]["httpGet"]
    assert (http["path"], http["port"]) == (path, "management")


def test_startup_probe_allows_a_slow_start(docs: tuple[dict[str, Any], ...]) -> None:
    startup = container(docs, "cds")["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 30


def _cpu(value: str | int) -> float:
    text = str(value)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def _mem(value: str) -> int:
    return int(value[:-2]) * {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}[value[-2:]]


def test_resources_set(docs: tuple[dict[str, Any], ...]) -> None:
    for name in ("front", "cds"):
        resources = container(docs, name)["resources"]
        requests, limits = resources["requests"], resources["limits"]
        assert set(requests) == set(limits) == {"cpu", "memory"}
        assert _cpu(requests["cpu"]) <= _cpu(limits["cpu"]) and _mem(requests["memory"]) <= _mem(limits["memory"])
    assert _mem(container(docs, "cds")["resources"]["limits"]["memory"]) >= 1024 * 2**20


def test_security_contexts(docs: tuple[dict[str, Any], ...]) -> None:
    for kind in ("Deployment", "Job"):
        for doc in (d for d in docs if d["kind"] == kind):
            pod = doc["spec"]["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True
            assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
            assert pod["automountServiceAccountToken"] is False
            for c in pod["containers"]:
                sc = c["securityContext"]
                assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 10001
                assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
                assert sc["capabilities"] == {"drop": ["ALL"]} and not sc.get("privileged", False)


def test_writable_paths_are_empty_dirs(docs: tuple[dict[str, Any], ...]) -> None:
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    for name, paths in (("cds", ("/tmp", "/var/lib/cds")), ("front", ("/tmp",))):
        mounts = {m["mountPath"]: m for m in container(docs, name)["volumeMounts"]}
        for path in paths:
            assert "emptyDir" in volumes[mounts[path]["name"]] and not mounts[path].get("readOnly", False)


def test_trust_file_is_mounted_where_cds_trusted_issuers_points(docs: tuple[dict[str, Any], ...],
                                                               tmp_path: Path) -> None:
    from cds_service.auth.trust import load_trust_config

    trust_path = Path(config(docs)["CDS_TRUSTED_ISSUERS"])
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mount = next(m for m in container(docs, "cds")["volumeMounts"] if Path(m["mountPath"]) == trust_path.parent)
    assert mount["readOnly"] is True
    data = one(docs, "ConfigMap", volumes[mount["name"]]["configMap"]["name"])["data"]
    (tmp_path / trust_path.name).write_text(data[trust_path.name])
    assert isinstance(load_trust_config(tmp_path / trust_path.name), dict)


def test_local_code_lists_are_mounted_read_only(docs: tuple[dict[str, Any], ...]) -> None:
    mount = next(m for m in container(docs, "cds")["volumeMounts"] if m["mountPath"] == "/app/cards/local/codes")
    assert mount["readOnly"] is True


def test_graceful_shutdown_fits_the_grace_period(docs: tuple[dict[str, Any], ...]) -> None:
    grace = one(docs, "Deployment")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    pre_stop = container(docs, "cds")["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep" and grace > int(pre_stop[1]) + GUNICORN_GRACEFUL_TIMEOUT


def test_settings_are_known_and_strings(docs: tuple[dict[str, Any], ...]) -> None:
    from dataclasses import fields

    from cds_service.config import Settings

    known = {f"CDS_{f.name.upper()}" for f in fields(Settings)} | {
        "CDS_WORKERS", "CDS_THREADS", "CDS_BIND", "CDS_FORWARDED_ALLOW_IPS", "CDS_ACCESS_LOG"}
    settings = config(docs)
    assert all(isinstance(v, str) for v in settings.values())
    assert set(settings) <= known, set(settings) - known
    assert settings["CDS_AUTH"] == "required" and "CDS_ALLOW_INSECURE_DEV" not in settings
    readme = (REPO / "README.md").read_text()
    for name in settings:
        assert f"`{name}`" in readme, f"{name} is not in the README's configuration table"


# --- production specifics ----------------------------------------------------------------------


def test_production_database_password_and_ca_come_from_secrets(production: tuple[dict[str, Any], ...]) -> None:
    settings = config(production)
    url = settings["CDS_DATABASE_URL"]
    assert url.startswith("postgresql+psycopg://cds@") and ":" not in url.split("//")[1].split("@")[0]
    assert "sslmode=verify-full" in url and "sslrootcert=/etc/cds/db-ca/ca.crt" in url
    assert settings["CDS_DATABASE_MIGRATE"] == "off"
    pod = one(production, "Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container(production, "cds")["volumeMounts"]}
    password = volumes[mounts[str(Path(settings["CDS_DATABASE_PASSWORD_FILE"]).parent)]]["secret"]
    assert password["secretName"] == "posterior-knee-cds-db" and password["items"][0]["key"] == "password"
    assert volumes[mounts["/etc/cds/db-ca"]]["secret"]["secretName"] == "posterior-knee-cds-db-ca"
    examples = list(yaml.safe_load_all((K8S / "components" / "external-postgres" / "secret.example.yaml").read_text()))
    assert {e["metadata"]["name"] for e in examples} == {"posterior-knee-cds-db", "posterior-knee-cds-db-ca"}
    assert "CHANGE-ME" in examples[0]["stringData"]["password"]


@pytest.mark.parametrize(("setting", "secret_name"), [("CDS_COMPANION_KEY_FILE", "posterior-knee-cds-companion"),
                                                     ("CDS_PATIENT_HASH_KEY_FILE", "posterior-knee-cds-patient-hash")])
def test_production_keys_shared_by_every_replica_come_from_secrets(production: tuple[dict[str, Any], ...],
                                                                   setting: str, secret_name: str) -> None:
    cds = container(production, "cds")
    path = {e["name"]: e.get("value") for e in cds["env"]}[setting]
    pod = one(production, "Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in cds["volumeMounts"]}
    mount = mounts[str(Path(path).parent)]
    assert mount["readOnly"] is True and Path(path).name == "key"
    assert volumes[mount["name"]]["secret"]["secretName"] == secret_name


def test_production_migration_job(production: tuple[dict[str, Any], ...]) -> None:
    job = one(production, "Job")
    migrate = container(production, "migrate", kind="Job")
    assert migrate["command"] == ["knee-cds", "db", "upgrade"]
    assert migrate["image"] == container(production, "cds")["image"]
    assert migrate["envFrom"] == container(production, "cds")["envFrom"]
    assert job["spec"]["backoffLimit"] >= 3 and job["spec"]["ttlSecondsAfterFinished"] > 0
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"


def test_production_scaling_and_disruption(production: tuple[dict[str, Any], ...]) -> None:
    deployment = one(production, "Deployment")
    hpa, pdb = one(production, "HorizontalPodAutoscaler"), one(production, "PodDisruptionBudget")
    replicas = deployment["spec"]["replicas"]
    assert replicas == hpa["spec"]["minReplicas"] == 3 and hpa["spec"]["maxReplicas"] >= 2 * replicas
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert pdb["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": selector}}
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    spread = {c["topologyKey"]: c for c in deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]}
    assert set(spread) == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    assert spread["kubernetes.io/hostname"]["whenUnsatisfiable"] == "DoNotSchedule"


def test_production_service_ingress_and_network_policy(production: tuple[dict[str, Any], ...]) -> None:
    service = one(production, "Service")
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert ports["http"]["targetPort"] == "http" and ports["management"]["targetPort"] == "management"
    ingress = one(production, "Ingress")
    assert ingress["spec"]["tls"][0]["secretName"]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": service["metadata"]["name"], "port": {"name": "http"}}
    assert ingress["spec"]["tls"][0]["hosts"][0] in config(production)["CDS_PUBLIC_BASE_URL"]
    policy = one(production, "NetworkPolicy")
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    ingress_ports = sorted(p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"])
    assert ingress_ports == [FRONT_PORT, MANAGEMENT_PORT], "the service port 8081 is never open"
    egress_ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}
    assert egress_ports == {53, 5432, 443}


# --- monitoring (CRDs) -------------------------------------------------------------------------


def _metric_names() -> set[str]:
    from prometheus_client.metrics import MetricWrapperBase

    from cds_service import metrics

    names = set()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            base = value._name
            names |= {base, f"{base}_total", f"{base}_bucket", f"{base}_count", f"{base}_sum"}
    return names | {"process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds"}


def _names_in(expression: str) -> set[str]:
    cleaned = re.sub(r"\{[^}]*\}|\"[^\"]*\"", "", expression)
    words = set(re.findall(r"[a-z_][a-z0-9_]*", cleaned))
    return {w for w in words if w.startswith(("cds_", "process_"))}


def test_service_monitor_scrapes_the_management_port(production: tuple[dict[str, Any], ...]) -> None:
    monitor = one(production, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    service = one(production, "Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "management" and endpoint["path"] == "/metrics"


def test_alerts_cover_the_issue_and_name_real_metrics(production: tuple[dict[str, Any], ...]) -> None:
    rule = one(production, "PrometheusRule")
    (group,) = rule["spec"]["groups"]
    alerts = {r["alert"]: r for r in group["rules"]}
    assert {"CdsHighErrorRate", "CdsLatencyP99OverBudget", "CdsJwtRejectionSpike", "CdsFeedbackStoreDown",
            "CdsFhirFetchFailures", "CdsReplayStoreUnavailable", "CdsCardsShownNotRecorded"} <= set(alerts)
    known = _metric_names()
    for name, alert in alerts.items():
        assert set(alert) <= {"alert", "expr", "for", "labels", "annotations"}
        assert alert["labels"]["severity"] in {"warning", "critical"} and alert["annotations"]["summary"]
        used = _names_in(alert["expr"])
        assert used and used <= known, f"{name} names unknown metrics {used - known}"
    assert "0.5" in alerts["CdsLatencyP99OverBudget"]["expr"]


def test_grafana_dashboard(production: tuple[dict[str, Any], ...]) -> None:
    cm = one(production, "ConfigMap", "posterior-knee-cds-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(cm["data"]["posterior-knee-cds.json"])
    assert dashboard["uid"] == "posterior-knee-cds" and len(dashboard["panels"]) >= 10
    known = _metric_names()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used = _names_in(target["expr"])
            assert used and used <= known, f"panel {panel['title']}: unknown {used - known}"


# --- compose.yaml ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    (doc,) = yaml.safe_load_all((REPO / "compose.yaml").read_text())
    return doc


def test_compose_database(compose: dict[str, Any]) -> None:
    db = compose["services"]["db"]
    assert db["image"].endswith(":15}") or db["image"].endswith(":15")
    assert db["build"]["context"] == "./deploy/images/postgres"
    assert (REPO / "deploy" / "images" / "postgres" / db["build"]["dockerfile"]).is_file()
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert db["environment"]["POSTGRES_PASSWORD_FILE"].startswith("/run/secrets/")
    assert "POSTGRES_PASSWORD" not in db["environment"]
    assert "ports" not in db, "the database must not be published on the host"
    assert db["volumes"][0].split(":")[0] in compose["volumes"]


def test_compose_front_is_the_only_published_service(compose: dict[str, Any]) -> None:
    front, cds = compose["services"]["front"], compose["services"]["cds"]
    assert all(p.startswith("127.0.0.1:") and p.endswith(":8080") for p in front["ports"])
    assert "ports" not in cds and "ports" not in compose["services"]["db"]
    assert front["read_only"] is True and front["cap_drop"] == ["ALL"]
    assert (REPO / "deploy" / front["build"]["dockerfile"]).is_file()
    assert "server cds:8080" in (REPO / "deploy" / "nginx" / "upstream.conf").read_text()


def test_compose_service(compose: dict[str, Any]) -> None:
    cds = compose["services"]["cds"]
    env = cds["environment"]
    assert cds["depends_on"]["db"]["condition"] == "service_healthy"
    assert cds["read_only"] is True and cds["cap_drop"] == ["ALL"]
    assert any(t.split(":")[0] == "/tmp" for t in cds["tmpfs"])
    assert env["CDS_AUTH"] == "${CDS_AUTH:-required}"
    assert env["CDS_ALLOW_INSECURE_DEV"] == "${CDS_ALLOW_INSECURE_DEV:-false}"
    assert ":" not in env["CDS_DATABASE_URL"].split("//")[1].split("@")[0], "no password in the URL"
    secret = compose["secrets"][cds["secrets"][0]["source"]]
    assert env["CDS_DATABASE_PASSWORD_FILE"] == "/run/secrets/" + cds["secrets"][0]["source"]
    assert secret["file"].startswith("./deploy/compose/")
    assert "command" not in cds, "the image's own command runs"


@pytest.mark.parametrize("setting", ["CDS_COMPANION_KEY_FILE", "CDS_PATIENT_HASH_KEY_FILE"])
def test_compose_hands_shared_keys_as_secret_files(compose: dict[str, Any], setting: str) -> None:
    cds = compose["services"]["cds"]
    source = cds["environment"][setting].removeprefix("/run/secrets/")
    assert source in {s["source"] for s in cds["secrets"]}
    assert compose["secrets"][source]["file"].startswith("./deploy/compose/")


def test_compose_secret_files_are_git_ignored() -> None:
    ignored = (REPO / "deploy" / "compose" / ".gitignore").read_text(encoding="utf-8").split()
    assert "db_password.txt" in ignored and "trusted-issuers.yaml" in ignored
    assert "companion_key.txt" in ignored and "patient_hash_key.txt" in ignored

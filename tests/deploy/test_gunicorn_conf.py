"""deploy/gunicorn.conf.py: settings, JSON access log, and Prometheus multiprocess hooks.

The last test starts a real gunicorn with this config (two workers) in front of a tiny WSGI app
(tests/deploy/wsgi_fixture.py), so it checks the deployment config without the service itself.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import types
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from gunicorn.config import Config
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "deploy" / "gunicorn.conf.py"
GUNICORN_ENV = (
    "CDS_BIND",
    "CDS_WORKERS",
    "CDS_THREADS",
    "CDS_LOG_LEVEL",
    "CDS_ACCESS_LOG",
    "CDS_FORWARDED_ALLOW_IPS",
    "CDS_WORKER_CLASS",
    "FORWARDED_ALLOW_IPS",
    "PROMETHEUS_MULTIPROC_DIR",
)


def load_conf(monkeypatch: pytest.MonkeyPatch, **env: str) -> types.ModuleType:
    for name in GUNICORN_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("gunicorn_conf_under_test", CONF)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def as_gunicorn_config(module: types.ModuleType) -> Config:
    """Feed the module's settings through gunicorn's own validators, as `--config` does."""
    cfg = Config()
    for name, value in vars(module).items():
        if name in cfg.settings:
            cfg.set(name, value)
    return cfg


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = load_conf(monkeypatch)
    cfg = as_gunicorn_config(conf)
    assert cfg.bind == ["127.0.0.1:8080"]
    assert cfg.workers == 2
    assert cfg.threads == 4
    assert cfg.worker_class_str == "cds_service.gunicorn_worker.BufferingWorker"
    assert cfg.forwarded_allow_ips == []  # X-Forwarded-Proto from nobody, not gunicorn's 127.0.0.1
    assert (cfg.timeout, cfg.graceful_timeout, cfg.keepalive) == (30, 20, 5)
    assert cfg.preload_app is False
    assert cfg.accesslog is None  # the service logs every request itself (one line per request)
    assert cfg.errorlog == "-"
    assert cfg.loglevel == "info"
    assert cfg.logger_class is conf.JsonAccessLogger
    if "control_socket_disable" in cfg.settings:  # gunicorn >= 25.1
        assert cfg.control_socket_disable is True


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = load_conf(
        monkeypatch,
        CDS_BIND="0.0.0.0:9090",
        CDS_WORKERS="3",
        CDS_THREADS="8",
        CDS_LOG_LEVEL="WARNING",
        CDS_ACCESS_LOG="/var/log/cds/access.log",
    )
    cfg = as_gunicorn_config(conf)
    assert cfg.bind == ["0.0.0.0:9090"]
    assert (cfg.workers, cfg.threads) == (3, 8)
    assert cfg.loglevel == "warning"
    assert cfg.accesslog == "/var/log/cds/access.log"


def test_forwarded_headers_trusted_only_from_the_configured_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = as_gunicorn_config(load_conf(monkeypatch, CDS_FORWARDED_ALLOW_IPS="10.0.0.5,192.168.0.0/16"))
    assert [str(entry) for entry in cfg.forwarded_allow_ips] == ["10.0.0.5", "192.168.0.0/16"]
    cfg = as_gunicorn_config(load_conf(monkeypatch, FORWARDED_ALLOW_IPS="*"))  # gunicorn's own variable
    assert cfg.forwarded_allow_ips == []


@pytest.mark.parametrize("value", ["two", "0", "-1"])
def test_bad_worker_count_stops_start_up(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    with pytest.raises(SystemExit, match="CDS_WORKERS"):
        load_conf(monkeypatch, CDS_WORKERS=value)


class _Resp:
    status = "200 OK"
    sent = 1234
    headers = (("Content-Type", "application/json"),)


_UA = 'Evil "agent" \\ with\nnewline and ü'


class _Req:
    headers = (
        ("USER-AGENT", _UA),
        ("X-REQUEST-ID", 'req-"42"'),
    )


def test_access_log_line_is_json_even_with_hostile_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = load_conf(monkeypatch)
    cfg = as_gunicorn_config(conf)
    logger = conf.JsonAccessLogger(cfg)
    environ = {
        "REQUEST_METHOD": "POST",
        "RAW_URI": "/cds-services/posterior-knee-pain?x=1",
        "PATH_INFO": "/cds-services/posterior-knee-pain",
        "QUERY_STRING": "patient=secret",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.0.0.7",
        "HTTP_USER_AGENT": _UA,
    }
    atoms = logger.atoms_wrapper_class(
        logger.atoms(_Resp(), _Req(), environ, dt.timedelta(seconds=0, microseconds=123456))
    )
    line = cfg.access_log_format % atoms
    assert "\n" not in line
    record = json.loads(line)
    assert record["event"] == "access"
    assert record["logger"] == "gunicorn.access"
    assert record["level"] == "INFO"
    assert record["method"] == "POST"
    assert record["path"] == "/cds-services/posterior-knee-pain"
    assert record["status"] == 200
    assert record["bytes"] == 1234
    assert record["duration_ms"] == 123
    assert record["duration_us"] == 123456
    assert record["user_agent"] == _UA
    assert record["request_id"] == 'req-"42"'
    assert record["forwarded_for"] == "-"
    assert record["pid"] == os.getpid()
    assert dt.datetime.fromisoformat(record["time"]).utcoffset() == dt.timedelta(0)
    assert "secret" not in line, "the query string must not be logged"


def test_on_starting_empties_the_multiprocess_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    directory = tmp_path / "prom"
    directory.mkdir()
    (directory / "counter_123.db").write_bytes(b"stale")
    (directory / "sub").mkdir()
    conf = load_conf(monkeypatch, PROMETHEUS_MULTIPROC_DIR=str(directory))
    server = types.SimpleNamespace(log=types.SimpleNamespace(info=lambda *a: None))
    conf.on_starting(server)
    assert directory.is_dir()
    assert list(directory.iterdir()) == []
    # a directory that does not exist yet (an empty tmpfs) is created
    missing = tmp_path / "fresh" / "prom"
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(missing))
    conf.on_starting(server)
    assert missing.is_dir()


def test_hooks_do_nothing_without_multiprocess_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = load_conf(monkeypatch)
    conf.on_starting(None)
    conf.child_exit(None, types.SimpleNamespace(pid=999999))


def test_child_exit_marks_the_worker_dead(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    conf = load_conf(monkeypatch, PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    calls: list[int] = []
    import prometheus_client.multiprocess as mp

    monkeypatch.setattr(mp, "mark_process_dead", lambda pid, path=None: calls.append(pid))
    conf.child_exit(None, types.SimpleNamespace(pid=4242))
    assert calls == [4242]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.read()


@pytest.mark.integration
def test_two_workers_add_up_and_log_json(tmp_path: Path) -> None:
    gunicorn = Path(sys.executable).with_name("gunicorn")
    if not gunicorn.exists():
        pytest.fail(f"gunicorn is not installed beside {sys.executable}")
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    (multiproc / "counter_1.db").write_bytes(b"stale file from an earlier run")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in GUNICORN_ENV}
    env.update(
        CDS_BIND=f"127.0.0.1:{port}",
        CDS_WORKERS="2",
        CDS_THREADS="2",
        CDS_ACCESS_LOG="-",  # gunicorn's own JSON line per request, asked for
        PROMETHEUS_MULTIPROC_DIR=str(multiproc),
        HOME=str(tmp_path),  # a control socket, if gunicorn opened one, would land here
        PYTHONPATH=os.pathsep.join([str(REPO / "tests" / "deploy"), str(REPO)]),
    )
    stdout_path, stderr_path = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        proc = subprocess.Popen(
            [str(gunicorn), "--config", str(CONF), "wsgi_fixture:app"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=err,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                _get(base + "/ready")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("gunicorn did not start:\n" + stderr_path.read_text())
                time.sleep(0.1)
        # An idle gunicorn hands sequential requests to whichever worker accepts first; slow
        # concurrent requests make the other worker take some. Repeat until both have answered.
        pids: set[int] = set()
        calls = 0
        with ThreadPoolExecutor(max_workers=8) as pool:
            while len(pids) < 2 and calls < 160:
                batch = pool.map(lambda _: _get(base + "/work?sleep=0.2"), range(8))
                pids.update(json.loads(b)["pid"] for b in batch)
                calls += 8
        body = _get(base + "/metrics").decode()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)

    total = 0.0
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == "cds_http_requests_total" and sample.labels["endpoint"] == "fixture":
                total += sample.value
    assert len(pids) == 2, f"expected both workers to answer, got pids {pids}"
    # every /work call plus the one successful /ready; the stale file was discarded at start
    assert total == calls + 1, body

    lines = [ln for ln in stdout_path.read_text().splitlines() if ln.strip()]
    records = [json.loads(ln) for ln in lines]
    assert len(records) == calls + 2  # /ready + /work calls + /metrics
    assert {r["path"] for r in records} == {"/ready", "/work", "/metrics"}
    assert all(r["status"] == 200 and r["event"] == "access" for r in records)
    assert not (tmp_path / ".gunicorn").exists(), "control socket should be disabled"
    assert proc.returncode == 0, stderr_path.read_text()


def test_an_access_log_format_given_on_the_command_line_gets_its_atoms_escaped(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the atoms the format names are escaped: those of the format gunicorn runs with."""
    conf = load_conf(monkeypatch)
    cfg = as_gunicorn_config(conf)
    cfg.set("access_log_format", '{"agent": "%({user-agent}i)s", "host": "%({host}i)s", "status": %(s)s}')
    logger = conf.JsonAccessLogger(cfg)
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": "/", "PATH_INFO": "/", "SERVER_PROTOCOL": "HTTP/1.1"}
    atoms = logger.atoms_wrapper_class(logger.atoms(_Resp(), _Req(), environ, dt.timedelta(seconds=1)))
    assert json.loads(cfg.access_log_format % atoms) == {"agent": _UA, "host": "-", "status": 200}


def test_each_worker_freezes_its_start_up_heap(monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    conf = load_conf(monkeypatch)
    gc.unfreeze()  # another test's bench app may have frozen this process already
    assert gc.get_freeze_count() == 0
    try:
        conf.post_worker_init(types.SimpleNamespace(pid=os.getpid()))
        assert gc.get_freeze_count() > 10_000  # the modules, the FHIR models, everything alive now
    finally:
        gc.unfreeze()

"""gunicorn settings for the CDS service, used by `make run` and by the container image.

    gunicorn --config deploy/gunicorn.conf.py cds_service.wsgi:app

Environment (all optional):
    CDS_BIND                 address to listen on             127.0.0.1:8080 (image: 0.0.0.0:8080)
    CDS_WORKERS              worker processes                 2
    CDS_THREADS              threads per worker               4
    CDS_WORKER_CLASS         gunicorn worker class            cds_service.gunicorn_worker.BufferingWorker
    CDS_CLIENT_HEADER_TIMEOUT seconds for a request head       10
    CDS_CLIENT_BODY_TIMEOUT  seconds for a request body       30
    CDS_WORKER_BUFFER_BYTES  bytes of incomplete requests held per worker (503 above)   134217728
    CDS_LOG_LEVEL            gunicorn error-log level         info
    CDS_ACCESS_LOG           "-" (stdout), a path, or "off"   off (the service logs every request itself)
    CDS_FORWARDED_ALLOW_IPS  addresses (or CIDR networks) of the proxies whose X-Forwarded-Proto (and
                             the other secure-scheme headers) are trusted   (none)
    CDS_MANAGEMENT_PORT      also listen on this port (same host as the first bind) for /healthz,
                             /readyz and /metrics, which then answer only there (0 or unset: off)
    PROMETHEUS_MULTIPROC_DIR set: metrics are shared between workers through files in this directory
                             (emptied when the master starts); unset: each worker counts on its own

Access log: off by default, because the service itself writes one JSON line per request (`event:
request` on stderr: route, status, duration, bytes, request id). CDS_ACCESS_LOG=- adds gunicorn's own
JSON line per request on stdout (see `access_log_format`). The query string and
the request body are never logged: CDS Hooks calls carry patient data in the body only, and no
endpoint of the service takes identifiers in the query. gunicorn's own lines about requests it could
not parse name the error, the method and the path only (`BufferingWorker.handle_error`), and every
error-log line is scrubbed of query strings and bearer tokens on the way out (`scrub`).

Workers: `BufferingWorker` (cds_service/gunicorn_worker.py) is gthread with each request read whole by
the event loop before a thread takes it, so slow clients hold no thread; see docs/reliability.md for
the measurements against plain gthread and gevent. CDS_WORKER_CLASS=gthread gives gunicorn's own.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import os
import re
import shutil
import time
from pathlib import Path

from gunicorn.glogging import Logger, SafeAtoms


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise SystemExit(f"{name} must be an integer, not {raw!r}") from exc
    if value < 1:
        raise SystemExit(f"{name} must be at least 1, not {value}")
    return value


# --- server socket and workers ---------------------------------------------------------------
bind = [os.environ.get("CDS_BIND", "").strip() or "127.0.0.1:8080"]
# Two workers for two cores (the work is CPU-bound Python). Four threads each: fewer did not save CPU
# per call once runs were alternated, and two let four calls waiting on a FHIR fallback fetch stall
# the typical calls beside them (docs/reliability.md section 10).
workers = _env_int("CDS_WORKERS", 2)
threads = _env_int("CDS_THREADS", 4)
worker_class = os.environ.get("CDS_WORKER_CLASS", "").strip() or "cds_service.gunicorn_worker.BufferingWorker"
timeout = 30
graceful_timeout = 20
keepalive = 5
# Each worker imports the app itself: no state (sockets, thread pools, DB connections, metrics
# values) is shared across fork, and prometheus_client picks its multiprocess mode per worker.
preload_app = False
# X-Forwarded-Proto and the other secure-scheme headers are honoured only from these addresses. gunicorn
# trusts 127.0.0.1 by default (or $FORWARDED_ALLOW_IPS): a local client could then pose as https.
forwarded_allow_ips = os.environ.get("CDS_FORWARDED_ALLOW_IPS", "").strip()
# Heartbeat files on a RAM disk when there is one (a read-only root has no writable /tmp otherwise).
if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
    worker_tmp_dir = "/dev/shm"

# gunicorn >= 25 opens a control socket under $HOME (or $XDG_RUNTIME_DIR); the container's root
# file system is read-only and nothing uses `gunicornc` in production, so it is switched off.
# The setting only exists from 25.1; older gunicorn (>=23 is allowed) has no socket to disable.
try:
    from gunicorn.config import ControlSocketDisable as _ControlSocketDisable  # noqa: F401
except ImportError:  # pragma: no cover - gunicorn < 25.1
    pass
else:
    control_socket_disable = True

# --- logging ---------------------------------------------------------------------------------
loglevel = (os.environ.get("CDS_LOG_LEVEL", "").strip() or "info").lower()
errorlog = "-"  # stderr
# Off by default: the service writes one JSON line per request itself (`event: request`, stderr), which
# gunicorn's line would only repeat at about a sixth of a typical call's CPU (docs/performance.md).
_access = os.environ.get("CDS_ACCESS_LOG", "").strip() or "off"
accesslog = None if _access.lower() == "off" else _access

# One JSON object per line, with the same leading fields as the service's own logs (time, level,
# logger, message, event). Every atom is JSON-escaped by JsonAccessLogger.atoms() before it is
# substituted, so a quote, backslash or newline in a header cannot break the line. Unquoted atoms
# are numbers.
access_log_format = (
    '{"time": "%(t)s", "level": "INFO", "logger": "gunicorn.access", "message": "access", '
    '"event": "access", "remote_addr": "%(h)s", "method": "%(m)s", "path": "%(U)s", '
    '"protocol": "%(H)s", "status": %(s)s, "bytes": %(B)s, "duration_ms": %(M)s, '
    '"duration_us": %(D)s, "user_agent": "%(a)s", "request_id": "%({x-request-id}i)s", '
    '"forwarded_for": "%({x-forwarded-for}i)s", "pid": %(P)s}'
)


@functools.cache
def _atoms_in(line_format: str) -> tuple[str, ...]:
    """The atoms a log format names, in order, once each."""
    return tuple(dict.fromkeys(re.findall(r"%\(([^)]+)\)s", line_format)))


def _iso_now(timestamp: float | None = None) -> str:
    moment = dt.datetime.fromtimestamp(time.time() if timestamp is None else timestamp, dt.UTC)
    return moment.isoformat(timespec="milliseconds")


_SECRETS = (
    (re.compile(r"(?i)(bearer|basic)(\s|%20|\+)+[^\s'\"]+"), r"\1 [redacted]"),
    (re.compile(r"(?i)(authorization|cookie)\s*[:=]?\s*[^\n]*"), r"\1 [redacted]"),
    (re.compile(r"\?[^\s'\"]*"), "?[query redacted]"),
    (re.compile(r"(No more data after: ).*", re.S), r"\1[redacted]"),
)


def scrub(message: str) -> str:
    """A log message without query strings, bearer tokens or Authorization headers (gunicorn quotes
    request lines and headers in some of its messages)."""
    for pattern, replacement in _SECRETS:
        message = pattern.sub(replacement, message)
    return message


class _JsonErrorFormatter(logging.Formatter):
    """gunicorn's own messages (start, stop, worker boot and exit) as JSON lines on stderr."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": _iso_now(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(record.getMessage()),
            "event": "server",
        }
        if record.exc_info and record.exc_info[0] is not None:
            # gunicorn logs a traceback only when a worker fails to boot (bad config, import
            # error): the service handles every exception of a request itself.
            line["exception"] = record.exc_info[0].__name__
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class _PreEscapedAtoms(SafeAtoms):
    """SafeAtoms ('-' for a missing atom, header names case-insensitive) without its own quoting:
    JsonAccessLogger.atoms() has already escaped every value for JSON."""

    def __init__(self, atoms):  # type: ignore[no-untyped-def]
        dict.__init__(self, atoms)


class JsonAccessLogger(Logger):
    """gunicorn's logger writing JSON: access lines on stdout, its own messages on stderr."""

    atoms_wrapper_class = _PreEscapedAtoms
    _NUMERIC = frozenset({"s", "B", "M", "D", "T", "P"})

    def setup(self, cfg):  # type: ignore[no-untyped-def]
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(_JsonErrorFormatter())

    def now(self) -> str:
        return _iso_now()

    def atoms(self, resp, req, environ, request_time):  # type: ignore[no-untyped-def]
        atoms = super().atoms(resp, req, environ, request_time)
        safe: dict[str, object] = {}
        # only the atoms the line uses are escaped (gunicorn's hold every header and environ variable)
        for key in _atoms_in(self.cfg.access_log_format):
            if key not in atoms:
                continue  # _PreEscapedAtoms answers '-' for it, as for any missing atom
            value = atoms[key]
            if key in self._NUMERIC:
                safe[key] = _as_number(value)
            elif value is None:
                safe[key] = "-"
            else:
                # json.dumps gives a quoted, escaped string; drop the quotes, the template has them.
                safe[key] = json.dumps(str(value), ensure_ascii=False)[1:-1]
        safe["P"] = os.getpid()
        return safe


def _as_number(value: object) -> int:
    if isinstance(value, int):
        return value
    try:
        return int(str(value).split(None, 1)[0])
    except (ValueError, IndexError):
        return 0


logger_class = JsonAccessLogger


# --- Prometheus multiprocess support ---------------------------------------------------------
def _multiproc_dir() -> Path | None:
    raw = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()
    return Path(raw) if raw else None


def _add_management_bind(server) -> None:  # type: ignore[no-untyped-def]
    """Listen on CDS_MANAGEMENT_PORT too (added here, so a --bind on the command line keeps it)."""
    port = os.environ.get("CDS_MANAGEMENT_PORT", "").strip()
    if not port or port == "0":
        return
    binds = list(server.cfg.bind)
    host = binds[0].rsplit(":", 1)[0] if ":" in binds[0] else "0.0.0.0"
    address = f"{host}:{int(port)}"
    if address not in binds:
        server.cfg.set("bind", [*binds, address])
        server.log.info("management endpoints on %s", address)


def on_starting(server):  # type: ignore[no-untyped-def]
    """Master, once: add the management port; start every run with an empty metrics directory
    (stale files skew counts)."""
    _add_management_bind(server)
    directory = _multiproc_dir()
    if directory is None:
        return
    directory.mkdir(parents=True, exist_ok=True)
    for entry in directory.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    server.log.info("prometheus multiprocess directory %s emptied", directory)


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    """Master, per dead worker: drop its live-gauge files so they stop being reported."""
    if _multiproc_dir() is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker):  # type: ignore[no-untyped-def]
    """Worker, once its app is loaded: the start-up heap leaves the cyclic collector's scans, so a full
    collection under load no longer walks the knowledge and the text reader (cds_service/gc_pause.py)."""
    from cds_service.gc_pause import freeze_startup_heap

    freeze_startup_heap()

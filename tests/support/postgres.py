"""A private, throwaway PostgreSQL cluster for tests, from Debian's `postgresql` package binaries.

The suite never uses a system-wide server: `initdb` creates a cluster in a temporary directory,
`pg_ctl` starts it on 127.0.0.1 and a free port (Unix socket in the same directory), and `stop()`
removes everything. `initdb` refuses to run as root, so as root the cluster belongs to the
`postgres` system user (created by the Debian package) and every command runs through
`runuser -u postgres --`::

    with PostgresCluster() as pg:
        engine = sqlalchemy.create_engine(pg.url)   # postgresql+psycopg://cds@127.0.0.1:PORT/cds

`find_bin_dir()` returns None when PostgreSQL is not installed; `postgres_session()` (for a
session fixture) then skips the tests, or fails them when `CI=true` (CI installs PostgreSQL with
.ci/install-system-deps.sh, so a missing server there is a setup error, not a reason to skip).
Standard library only (plus pytest in `postgres_session`).
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

DB_USER = "cds"
DB_NAME = "cds"
SYSTEM_USER = "postgres"
START_TIMEOUT = 60


class PostgresUnavailable(RuntimeError):
    """PostgreSQL binaries are missing, or the cluster could not be created or started."""


def find_bin_dir() -> Path | None:
    """The newest `/usr/lib/postgresql/<version>/bin` holding initdb and pg_ctl, else PATH's."""
    candidates = []
    for initdb in glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        version = Path(initdb).parent.parent.name
        if (Path(initdb).parent / "pg_ctl").is_file():
            number = tuple(int(part) for part in re.findall(r"\d+", version)) or (0,)
            candidates.append((number, Path(initdb).parent))
    if candidates:
        return max(candidates)[1]
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).parent
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresCluster:
    """initdb + pg_ctl start in a temporary directory; `url` is a SQLAlchemy psycopg URL."""

    def __init__(self, bin_dir: Path | None = None, settings: dict[str, str] | None = None) -> None:
        found = bin_dir or find_bin_dir()
        if found is None:
            raise PostgresUnavailable(
                "PostgreSQL is not installed: no /usr/lib/postgresql/*/bin/initdb "
                "(Debian: apt-get install postgresql, or run .ci/install-system-deps.sh)"
            )
        self.bin_dir = found
        self.settings = dict(settings or {})  # extra postgresql.conf settings (`-c name=value`)
        self.port: int | None = None
        self.root: Path | None = None
        self._as_root = os.geteuid() == 0

    @property
    def data_dir(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    @property
    def url(self) -> str:
        """`postgresql+psycopg://cds@127.0.0.1:PORT/cds` (trust authentication, local only)."""
        if self.port is None:
            raise PostgresUnavailable("the cluster is not running: call start()")
        return f"postgresql+psycopg://{DB_USER}@127.0.0.1:{self.port}/{DB_NAME}"

    def _run(self, *args: str, timeout: float = START_TIMEOUT) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self._as_root:
            command = ["runuser", "-u", SYSTEM_USER, "--", *command]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False,
                              cwd=self.root, env={**os.environ, "LC_ALL": "C.UTF-8"})
        if proc.returncode != 0:
            log = self.log_tail()
            raise PostgresUnavailable(
                f"{' '.join(args[:2])} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}"
                f"{proc.stdout[-1000:]}\n{log}"
            )
        return proc

    def create_database(self, name: str) -> str:
        """Create an empty database `name` and return its URL (one per test keeps tests apart)."""
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
            raise ValueError(f"not a plain database name: {name!r}")
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", DB_USER, name)
        return self.url.rsplit("/", 1)[0] + "/" + name

    def log_tail(self) -> str:
        if self.root is None or not (self.root / "postgres.log").is_file():
            return ""
        return (self.root / "postgres.log").read_text(errors="replace")[-2000:]

    def start(self) -> PostgresCluster:
        if self.port is not None:
            return self
        self.root = Path(tempfile.mkdtemp(prefix="cds-pg-"))
        if self._as_root:
            try:
                owner = pwd.getpwnam(SYSTEM_USER)
            except KeyError:
                shutil.rmtree(self.root, ignore_errors=True)
                raise PostgresUnavailable(
                    f"running as root and there is no {SYSTEM_USER!r} system user to own the "
                    "cluster (initdb refuses root); the Debian postgresql package creates it"
                ) from None
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        atexit.register(self.stop)
        self._run("initdb", "-D", str(self.data_dir), "-U", DB_USER, "--auth=trust",
                  "--encoding=UTF8", "--no-instructions")
        for attempt in range(3):
            port = _free_port()
            try:
                self._pg_ctl_start(port)
            except PostgresUnavailable:
                if attempt == 2:
                    self.stop()
                    raise
                continue
            self.port = port
            break
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", DB_USER, DB_NAME)
        return self

    def _pg_ctl_start(self, port: int) -> None:
        options = (f"-p {port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   "-c fsync=on -c synchronous_commit=on -c max_connections=100")
        options += "".join(f" -c {name}={value}" for name, value in self.settings.items())
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.root / "postgres.log"),
                  "-o", options, "-w", "-t", str(START_TIMEOUT), "start")

    def set_hba(self, lines: list[str]) -> None:
        """Replace pg_hba.conf (client authentication rules) and reload the server."""
        path = self.data_dir / "pg_hba.conf"
        path.write_text("\n".join(lines) + "\n")
        if self._as_root:
            owner = pwd.getpwnam(SYSTEM_USER)
            os.chown(path, owner.pw_uid, owner.pw_gid)
        self._run("pg_ctl", "-D", str(self.data_dir), "reload")

    def psql(self, sql: str) -> str:
        """Run SQL as the superuser over the Unix socket (unaffected by host rules)."""
        assert self.root is not None and self.port is not None
        return self._run("psql", "-h", str(self.root), "-p", str(self.port), "-U", DB_USER, "-d", DB_NAME,
                         "-v", "ON_ERROR_STOP=1", "-qAtc", sql).stdout

    def own(self, path: Path, mode: int) -> None:
        """Give a file to the server's user (as root: postgres) with `mode` (a key must be 0600)."""
        if self._as_root:
            owner = pwd.getpwnam(SYSTEM_USER)
            os.chown(path, owner.pw_uid, owner.pw_gid)
        path.chmod(mode)

    def server_down(self) -> None:
        """Shut the server down (fast), keeping the cluster and its port for `server_up`."""
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")

    def server_up(self) -> None:
        """Start the server again on the same port."""
        assert self.port is not None
        self._pg_ctl_start(self.port)

    def processes(self) -> list[int]:
        """The postmaster and every process it started (backends, checkpointer, ...)."""
        pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
        children = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError):
                    stat = Path(f"/proc/{entry}/stat").read_text()
                    if int(stat[stat.rfind(")") + 2:].split()[1]) == pid:
                        children.append(int(entry))
        return [pid, *children]

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """SIGSTOP the whole server (a hung database: sockets accept, nothing answers), then SIGCONT."""
        import signal

        stopped = []
        try:
            for pid in self.processes():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGSTOP)
                    stopped.append(pid)
            yield
        finally:
            for pid in stopped:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)

    def stop(self) -> None:
        """Stop the server (immediate shutdown) and delete the cluster directory."""
        atexit.unregister(self.stop)
        root = self.root
        if root is None:
            return
        if (root / "data" / "postmaster.pid").exists():
            with contextlib.suppress(PostgresUnavailable, subprocess.TimeoutExpired):
                self._run("pg_ctl", "-D", str(root / "data"), "-m", "immediate", "-w", "stop",
                          timeout=30)
        self.root = None
        self.port = None
        shutil.rmtree(root, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def postgres_session() -> Iterator[PostgresCluster]:
    """Generator for a session-scoped pytest fixture::

    @pytest.fixture(scope="session")
    def postgres():
        yield from postgres_session()

    Skips when PostgreSQL is not installed, except under CI=true, where it fails.
    """
    import pytest

    if find_bin_dir() is None:
        message = ("PostgreSQL binaries not found (/usr/lib/postgresql/*/bin/initdb): install "
                   "Debian's postgresql package (.ci/install-system-deps.sh does it)")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + "; CI=true, so this is an error, not a skip", pytrace=False)
        pytest.skip(message)
    with PostgresCluster() as cluster:
        yield cluster

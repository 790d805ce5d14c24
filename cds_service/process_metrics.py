"""Process metrics under gunicorn's multiprocess mode, where prometheus_client has none.

`prometheus_client`'s process collector describes only the process that answers /metrics; the
multiprocess registry has no process metrics at all. This collector reads /proc, at scrape time,
for the gunicorn master (the parent of the answering worker) and each of its worker processes, and
reports the standard `process_*` metrics with `pid` and `role` labels. Linux only; elsewhere nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2:].split()  # fields from `state` on (comm may hold spaces)


def _boot_time() -> float:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    return 0.0


def _open_fds(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def _family(pid: int) -> list[tuple[int, str]]:
    """(pid, role) of the gunicorn master and its live workers, seen from one worker."""
    master = os.getppid()
    workers = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields and len(fields) > 1 and int(fields[1]) == master and fields[0] != "Z":
                workers.append((int(entry), "worker"))
    return [(master, "master"), *sorted(workers)]


class WorkerProcessCollector:
    """process_resident_memory_bytes, process_cpu_seconds_total, process_open_fds,
    process_start_time_seconds, by pid and role (master, worker)."""

    def collect(self) -> Iterator[Metric]:
        if not Path("/proc/self/stat").exists():
            return
        rss = GaugeMetricFamily("process_resident_memory_bytes", "Resident memory size in bytes.",
                                labels=["pid", "role"])
        cpu = CounterMetricFamily("process_cpu_seconds", "User and system CPU time spent in seconds.",
                                  labels=["pid", "role"])
        fds = GaugeMetricFamily("process_open_fds", "Number of open file descriptors.", labels=["pid", "role"])
        start = GaugeMetricFamily("process_start_time_seconds", "Start time of the process since the epoch.",
                                  labels=["pid", "role"])
        boot = _boot_time()
        for pid, role in _family(os.getpid()):
            fields = _stat(pid)
            if fields is None or len(fields) < 22:
                continue
            labels = [str(pid), role]
            # fields[0] is `state`: utime=11, stime=12, starttime=19, rss=21 (proc(5) numbering - 3)
            cpu.add_metric(labels, (int(fields[11]) + int(fields[12])) / _TICKS)
            start.add_metric(labels, boot + int(fields[19]) / _TICKS)
            rss.add_metric(labels, int(fields[21]) * _PAGE)
            count = _open_fds(pid)
            if count is not None:
                fds.add_metric(labels, count)
        yield from (rss, cpu, fds, start)

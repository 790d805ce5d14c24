"""Development keys created by racing workers: every worker reads the one whole key that won."""

from __future__ import annotations

import threading
from pathlib import Path

from cds_service.key_files import _create_key


def _race(path: Path, workers: int = 8) -> list[bytes]:
    """`workers` threads create the key at once, each reading it right after; what each read."""
    start = threading.Barrier(workers)
    read: list[bytes] = []

    def worker() -> None:
        start.wait()
        _create_key(path)
        read.append(path.read_bytes())

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return read


def test_racing_workers_all_read_the_same_whole_key(tmp_path: Path) -> None:
    for trial in range(30):
        path = tmp_path / f"trial-{trial}" / "dev.key"
        read = _race(path)
        assert len(set(read)) == 1 and len(read[0]) >= 32, read
        assert sorted(p.name for p in path.parent.iterdir()) == ["dev.key"]  # no draft left behind
        assert path.stat().st_mode & 0o777 == 0o600

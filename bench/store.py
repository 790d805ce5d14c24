"""The store's cost on a hook call: recording the cards shown (background queue vs a strict timeout
vs the synchronous write it replaced) and the shared replay store (one use per token), on SQLite and
on a private PostgreSQL cluster (tests/support/postgres.py), healthy and frozen with SIGSTOP.

    python -m bench.store          (also a section of `make bench`)
"""

from __future__ import annotations

import contextlib
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cds_service.auth import GuardedReplayCache, InMemoryReplayCache
from cds_service.feedback_store import FeedbackStore, SqlReplayCache, StoreOptions, StoreUnavailableError
from tests.support.postgres import PostgresCluster, find_bin_dir

from .stats import markdown_table

STRICT_TIMEOUT = 0.05  # the alternative measured: write synchronously, give up after 50 ms
SERVICE = "posterior-knee-pain"


@dataclass(frozen=True)
class Row:
    what: str
    database: str
    samples: tuple[float, ...]
    note: str = ""

    def quantile(self, q: float) -> float:
        ordered = sorted(self.samples)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _timed(action: Callable[[], object], count: int) -> tuple[float, ...]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return tuple(samples)


def _card() -> list[tuple[str, str, str]]:
    return [(str(uuid.uuid4()), "dvt-likely", "critical")]


def _strict(store: FeedbackStore) -> None:
    rows = store._shown_rows(SERVICE, str(uuid.uuid4()), _card())
    with contextlib.suppress(StoreUnavailableError):  # the card still goes out; the record is lost
        store._call(lambda: store._write_shown(rows), STRICT_TIMEOUT)


def _recording(store: FeedbackStore, database: str, count: int) -> list[Row]:
    store.remember_cards(SERVICE, "warm", _card())
    queue = _timed(lambda: store.record_shown(SERVICE, str(uuid.uuid4()), _card()), count)
    store.flush(60)
    strict = _timed(lambda: _strict(store), count)
    sync = _timed(lambda: store.remember_cards(SERVICE, str(uuid.uuid4()), _card()), count)
    return [Row("background queue (chosen)", database, queue),
            Row(f"strict timeout ({STRICT_TIMEOUT * 1000:.0f} ms)", database, strict),
            Row("synchronous write (before)", database, sync)]


def _replay(cache: object, database: str, count: int) -> Row:
    add = cache.add_if_absent  # type: ignore[attr-defined]
    expiry = time.time() + 300
    return Row("replay check (add_if_absent)", database, _timed(lambda: add("https://ehr.example", uuid.uuid4().hex,
                                                                          expiry), count))


def measure(workdir: Path, quick: bool = False, progress: Callable[[str], None] = print) -> list[Row]:
    count = 60 if quick else 400
    rows: list[Row] = []
    progress("store: SQLite")
    sqlite = FeedbackStore(f"sqlite:///{workdir}/store-bench.sqlite3")
    sqlite.start()
    rows += _recording(sqlite, "SQLite", count)
    rows.append(_replay(InMemoryReplayCache(), "memory (per worker)", count))
    rows.append(_replay(GuardedReplayCache(SqlReplayCache(sqlite, 0.5)), "SQLite", count))
    sqlite.close()
    if find_bin_dir() is None:
        progress("store: PostgreSQL binaries missing, PostgreSQL rows not measured")
        return rows
    progress("store: PostgreSQL (private cluster)")
    with PostgresCluster() as cluster:
        store = FeedbackStore(cluster.url, StoreOptions(timeout=1.0))
        store.start()
        rows += _recording(store, "PostgreSQL", count)
        rows.append(_replay(GuardedReplayCache(SqlReplayCache(store, 0.5)), "PostgreSQL", count))
        progress("store: PostgreSQL frozen (SIGSTOP)")
        with cluster.frozen():
            frozen_queue = _timed(lambda: store.record_shown(SERVICE, str(uuid.uuid4()), _card()), count)
            frozen_strict = _timed(lambda: _strict(store), max(10, count // 20))
        rows.append(Row("background queue (chosen)", "PostgreSQL frozen", frozen_queue))
        rows.append(Row(f"strict timeout ({STRICT_TIMEOUT * 1000:.0f} ms)", "PostgreSQL frozen", frozen_strict))
        rows.append(Row("synchronous write (before)", "PostgreSQL frozen", (),
                        "no answer: the hook call hung (> 20 s in the adversarial review)"))
        store.close(drain_timeout=15)
    return rows


def table(rows: list[Row]) -> str:
    body = []
    for row in rows:
        if row.samples:
            body.append([row.what, row.database, str(len(row.samples)), f"{row.quantile(0.5) * 1000:.3f}",
                         f"{row.quantile(0.99) * 1000:.3f}", f"{max(row.samples) * 1000:.2f}", row.note])
        else:
            body.append([row.what, row.database, "–", "–", "–", "–", row.note])
    return markdown_table(["What the hook call waits for", "Store", "n", "p50 ms", "p99 ms", "max ms", "Note"],
                          body, ["l", "l", "r", "r", "r", "r", "l"])


INTRO = """\
Time a hook call spends on the store, per call (one card recorded; one token checked). Cards shown
are recorded through a bounded in-process queue written by a background thread (chosen), measured
against a synchronous write bounded by a strict 50 ms timeout (the alternative) and the plain
synchronous write the service did before. With the database frozen (SIGSTOP) the queue still costs
microseconds (rows beyond the queue's bound are dropped and counted in
`cds_cards_shown_not_recorded_total`), while a strict timeout costs its whole 50 ms on every call,
and the synchronous write never returned. The replay check is the shared store of one use per token
(`CDS_REPLAY_STORE=database`); the in-memory row is the per-worker cache it replaces."""


def main() -> None:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="cds-store-bench-") as workdir:
        print(table(measure(Path(workdir), progress=lambda m: print(m, flush=True))))


if __name__ == "__main__":
    main()

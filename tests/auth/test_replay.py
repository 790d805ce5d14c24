"""InMemoryReplayCache: one use per (iss, jti) until expiry, bounded, thread-safe."""

from __future__ import annotations

import threading

import pytest

from cds_service.auth import InMemoryReplayCache, ReplayCache

from .support import START, FakeClock


def test_second_use_is_refused_until_expiry(clock: FakeClock) -> None:
    cache = InMemoryReplayCache(clock=clock)
    assert cache.add_if_absent("iss", "jti", START + 360)
    assert not cache.add_if_absent("iss", "jti", START + 360)
    clock.advance(359)
    assert not cache.add_if_absent("iss", "jti", START + 360)
    clock.advance(1)
    assert cache.add_if_absent("iss", "jti", START + 720)


def test_jti_is_scoped_by_issuer(clock: FakeClock) -> None:
    cache = InMemoryReplayCache(clock=clock)
    assert cache.add_if_absent("a", "same", START + 60)
    assert cache.add_if_absent("b", "same", START + 60)


def test_expired_entries_are_purged(clock: FakeClock) -> None:
    cache = InMemoryReplayCache(clock=clock)
    for i in range(10):
        cache.add_if_absent("iss", f"j{i}", START + 10 + i)
    clock.advance(15)
    assert len(cache) == 4  # j0..j5 expire at or before now; j6..j9 remain


def test_size_is_bounded_by_evicting_the_soonest_expiring(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    cache = InMemoryReplayCache(max_entries=3, clock=clock)
    cache.add_if_absent("iss", "late", START + 900)
    cache.add_if_absent("iss", "soon", START + 100)
    cache.add_if_absent("iss", "mid", START + 500)
    assert cache.add_if_absent("iss", "new", START + 300)
    assert len(cache) == 3
    assert cache.add_if_absent("iss", "soon", START + 100)  # evicted, so no longer remembered
    assert not cache.add_if_absent("iss", "late", START + 900)
    assert "replay cache full" in caplog.text


def test_concurrent_uses_of_one_jti_admit_exactly_one(clock: FakeClock) -> None:
    cache = InMemoryReplayCache(clock=clock)
    barrier = threading.Barrier(32)
    admitted: list[bool] = []

    def use() -> None:
        barrier.wait()
        admitted.append(cache.add_if_absent("iss", "race", START + 60))

    threads = [threading.Thread(target=use) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert admitted.count(True) == 1


def test_in_memory_cache_satisfies_the_protocol(clock: FakeClock) -> None:
    cache: ReplayCache = InMemoryReplayCache(clock=clock)
    assert cache.add_if_absent("iss", "x", START + 1)


def test_max_entries_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        InMemoryReplayCache(max_entries=0)

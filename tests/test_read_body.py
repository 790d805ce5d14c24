"""The body reader (api.read_body) reads what arrives, up to the limit and one byte past it."""

from __future__ import annotations

import io
import tracemalloc

import pytest
from werkzeug.wsgi import LimitedStream

from cds_service.api import READ_CHUNK_BYTES, read_body

LIMIT = 200_000


class Trickle(io.RawIOBase):
    """A chunked body: arrives in small pieces of unknown total length."""

    def __init__(self, data: bytes, piece: int = 1000) -> None:
        self._data, self._piece = data, piece

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = self._piece if size < 0 else min(size, self._piece)
        out, self._data = self._data[:size], self._data[size:]
        return out


@pytest.mark.parametrize("size", [0, 1, 999, READ_CHUNK_BYTES, READ_CHUNK_BYTES + 1, LIMIT, LIMIT + 1, LIMIT + 5000])
def test_the_same_bytes_with_or_without_a_declared_length(size: int) -> None:
    data = bytes(range(256)) * (size // 256 + 1)
    data = data[:size]
    declared = read_body(LimitedStream(io.BytesIO(data), size), size, LIMIT)
    chunked = read_body(Trickle(data), None, LIMIT)
    assert declared == chunked == data[:LIMIT + 1]  # one byte past the limit says "too large"


def test_a_small_body_does_not_allocate_the_limit() -> None:
    data = b"{}" * 500
    tracemalloc.start()
    try:
        read_body(LimitedStream(io.BytesIO(data), len(data)), len(data), 16 * 1024 * 1024)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 100_000, peak
    tracemalloc.start()
    try:  # what the endpoint did before: a buffer of the whole limit
        LimitedStream(io.BytesIO(data), len(data)).read(16 * 1024 * 1024 + 1)
        before = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert before > 16 * 1024 * 1024

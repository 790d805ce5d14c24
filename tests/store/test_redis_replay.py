"""The replay store in Redis (CDS_REPLAY_STORE=redis://...), against a private redis-server from
Debian's package: one use per token across instances, the expiry set with EXAT, refusal when Redis is
down."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.gunicorn import free_port
from cds_service.app import create_app
from cds_service.auth import AuthenticationFailed, GuardedReplayCache, RedisReplayCache
from tests.auth.support import Minter, SigningKey
from tests.conftest import SERVICE_URL
from tests.support import fhir as F


class RedisServer:
    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            message = "redis-server is missing (Debian: apt-get install redis-server; .ci/install-system-deps.sh)"
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(message)
            pytest.skip(message)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(directory)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        self.stop()
        pytest.fail("redis-server did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture()
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    yield server
    server.stop()


def test_a_token_id_is_admitted_once_with_its_expiry(redis_server: RedisServer) -> None:
    import redis

    first, other_replica = (RedisReplayCache(redis_server.url, timeout=0.5) for _ in range(2))
    expires = time.time() + 300
    assert first.add_if_absent("iss", "jti", expires)
    assert not other_replica.add_if_absent("iss", "jti", expires)
    assert other_replica.add_if_absent("other-iss", "jti", expires)
    client = redis.Redis.from_url(redis_server.url)
    keys = list(client.scan_iter("cds:jti:*"))
    assert len(keys) == 2 and all(len(key) == len(b"cds:jti:") + 64 for key in keys)
    assert all(290 <= client.ttl(key) <= 301 for key in keys)  # EXAT: gone when the token expires


def test_racing_replicas_admit_exactly_one(redis_server: RedisServer) -> None:
    caches = [RedisReplayCache(redis_server.url, timeout=2) for _ in range(4)]
    barrier = threading.Barrier(16)
    admitted: list[bool] = []

    def use(cache: RedisReplayCache) -> None:
        barrier.wait()
        admitted.append(cache.add_if_absent("iss", "race", time.time() + 60))

    threads = [threading.Thread(target=use, args=(caches[i % 4],)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert admitted.count(True) == 1 and len(admitted) == 16


def test_redis_down_refuses_the_token(redis_server: RedisServer) -> None:
    guarded = GuardedReplayCache(RedisReplayCache(redis_server.url, timeout=0.5))
    assert guarded.add_if_absent("iss", "before", time.time() + 60)
    redis_server.stop()
    with pytest.raises(AuthenticationFailed, match="replay_store_unavailable"):
        guarded.add_if_absent("iss", "after", time.time() + 60)


def test_the_service_with_redis_accepts_a_token_once(redis_server: RedisServer, tmp_path: Path,
                                                     trust_file: Path, signing_key: SigningKey) -> None:
    settings = {"database_url": f"sqlite:///{tmp_path}/s.sqlite3", "auth": "required",
                "replay_store": redis_server.url, "trusted_issuers": str(trust_file),
                "public_base_url": "http://cds.test", "TESTING": True}
    first, second = create_app(settings), create_app({**settings, "database_url": f"sqlite:///{tmp_path}/t.sqlite3"})
    token = Minter(time.time).token(signing_key, aud="http://cds.test" + SERVICE_URL)
    body = F.hook_request([F.patient(age=60)])
    headers = {"Authorization": f"Bearer {token}"}
    assert first.test_client().post(SERVICE_URL, json=body, headers=headers).status_code == 200
    assert second.test_client().post(SERVICE_URL, json=body, headers=headers).status_code == 401

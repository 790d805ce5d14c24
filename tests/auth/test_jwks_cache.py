"""KeySetCache against a real local HTTP server: caching, rotation, rate limit, failures."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests

from cds_service.auth import AuthenticationFailed, JwksFetchError, JwtVerifier, KeySetCache

from .support import AUD, FakeClock, JwksServer, Minter, SigningKey, jwk_set


def test_key_rotation_is_picked_up_after_the_rate_limit_window(
    jwks_server: JwksServer,
    verifier: JwtVerifier,
    minter: Minter,
    clock: FakeClock,
    ec_key: SigningKey,
    ec_key_2: SigningKey,
) -> None:
    jwks_server.serve(jwk_set(ec_key))
    verifier.verify(minter.token(ec_key), AUD)
    assert jwks_server.requests == 1

    jwks_server.serve(jwk_set(ec_key_2))  # the issuer rotates: old key gone, new kid
    clock.advance(10)
    with pytest.raises(AuthenticationFailed) as excinfo:
        verifier.verify(minter.token(ec_key_2), AUD)
    assert excinfo.value.reason == "unknown_kid"
    assert jwks_server.requests == 1  # unknown kid inside the 60 s window: no second fetch

    clock.advance(51)  # 61 s after the first fetch
    client = verifier.verify(minter.token(ec_key_2), AUD)
    assert client.kid == ec_key_2.kid
    assert jwks_server.requests == 2

    clock.advance(5)
    with pytest.raises(AuthenticationFailed) as excinfo:
        verifier.verify(minter.token(ec_key), AUD)  # the retired key is no longer trusted
    assert excinfo.value.reason == "unknown_kid"
    assert jwks_server.requests == 2


def test_unknown_kids_cannot_force_fetches(
    jwks_server: JwksServer, key_cache: KeySetCache, clock: FakeClock, ec_key: SigningKey
) -> None:
    jwks_server.serve(jwk_set(ec_key))
    for i in range(20):
        assert key_cache.get_key(jwks_server.url, f"made-up-{i}") is None
        clock.advance(1)
    assert jwks_server.requests == 1
    clock.advance(40)
    assert key_cache.get_key(jwks_server.url, "made-up-again") is None
    assert jwks_server.requests == 2


def test_known_kid_is_served_from_cache_until_the_ttl(
    jwks_server: JwksServer, key_cache: KeySetCache, clock: FakeClock, ec_key: SigningKey
) -> None:
    jwks_server.serve(jwk_set(ec_key))
    for _ in range(5):
        assert key_cache.get_key(jwks_server.url, ec_key.kid) is not None
        clock.advance(600)
    assert jwks_server.requests == 1  # 0 .. 2400 s: inside the 1 h TTL
    clock.advance(1200)  # 3600 s
    assert key_cache.get_key(jwks_server.url, ec_key.kid) is not None
    assert jwks_server.requests == 2


def test_ttl_and_refresh_interval_are_configurable(
    jwks_server: JwksServer, session: requests.Session, clock: FakeClock, ec_key: SigningKey
) -> None:
    jwks_server.serve(jwk_set(ec_key))
    cache = KeySetCache(session, ttl=30, min_refresh_interval=5, allow_http_jwks=True, clock=clock)
    cache.get_key(jwks_server.url, ec_key.kid)
    clock.advance(5)
    cache.get_key(jwks_server.url, "unknown")
    clock.advance(30)
    cache.get_key(jwks_server.url, ec_key.kid)
    assert jwks_server.requests == 3


def test_concurrent_first_use_fetches_once(
    jwks_server: JwksServer, key_cache: KeySetCache, ec_key: SigningKey
) -> None:
    jwks_server.serve(jwk_set(ec_key))
    jwks_server.delay = 0.1
    results: list[Any] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(key_cache.get_key(jwks_server.url, ec_key.kid))
        )
        for _ in range(16)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 16 and all(r is not None for r in results)
    assert jwks_server.requests == 1


def test_failed_fetch_is_jwks_unavailable_and_not_retried_within_the_window(
    jwks_server: JwksServer,
    verifier: JwtVerifier,
    minter: Minter,
    clock: FakeClock,
    ec_key: SigningKey,
) -> None:
    jwks_server.status = 500
    for _ in range(3):
        with pytest.raises(AuthenticationFailed) as excinfo:
            verifier.verify(minter.token(ec_key), AUD)
        assert excinfo.value.reason == "jwks_unavailable"
    assert jwks_server.requests == 1
    jwks_server.status = 200
    clock.advance(60)
    verifier.verify(minter.token(ec_key), AUD)
    assert jwks_server.requests == 2


def test_cached_keys_survive_a_failed_refresh(
    jwks_server: JwksServer, key_cache: KeySetCache, clock: FakeClock, ec_key: SigningKey
) -> None:
    jwks_server.serve(jwk_set(ec_key))
    assert key_cache.get_key(jwks_server.url, ec_key.kid) is not None
    jwks_server.status = 503
    clock.advance(3600)
    assert key_cache.get_key(jwks_server.url, ec_key.kid) is not None
    assert jwks_server.requests == 2


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (b"<html>not json</html>", "not a JSON document"),
        ({"no": "keys"}, '"keys" array'),
        (b'{"keys": NaN}', "not a JSON document"),
    ],
)
def test_unparseable_key_set_is_a_fetch_error(
    jwks_server: JwksServer, key_cache: KeySetCache, document: Any, problem: str
) -> None:
    jwks_server.serve(document)
    with pytest.raises(JwksFetchError, match=problem):
        key_cache.get_key(jwks_server.url, "any")


def test_unusable_keys_are_skipped_and_the_rest_used(
    jwks_server: JwksServer,
    key_cache: KeySetCache,
    ec_key: SigningKey,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}
    encryption = {**ec_key.public_jwk(), "kid": "enc-1", "use": "enc"}
    jwks_server.serve({"keys": [secret, encryption, ec_key.public_jwk()]})
    assert key_cache.get_key(jwks_server.url, ec_key.kid) is not None
    assert key_cache.get_key(jwks_server.url, "hmac") is None
    assert key_cache.get_key(jwks_server.url, "enc-1") is None
    assert "symmetric ('oct') keys are not allowed" in caplog.text


def test_http_url_is_refused_unless_allowed(
    jwks_server: JwksServer, session: requests.Session, ec_key: SigningKey
) -> None:
    jwks_server.serve(jwk_set(ec_key))
    cache = KeySetCache(session)  # allow_http_jwks defaults to False
    with pytest.raises(JwksFetchError, match="https"):
        cache.get_key(jwks_server.url, ec_key.kid)
    assert jwks_server.requests == 0


def test_redirects_are_not_followed(
    jwks_server: JwksServer, key_cache: KeySetCache, ec_key: SigningKey
) -> None:
    jwks_server.serve(jwk_set(ec_key))
    with pytest.raises(JwksFetchError, match="HTTP 302"):
        key_cache.get_key(jwks_server.url.replace("/jwks.json", "/redirect"), ec_key.kid)
    assert jwks_server.requests == 1


def test_oversized_key_set_is_refused(
    jwks_server: JwksServer, session: requests.Session, ec_key: SigningKey
) -> None:
    jwks_server.serve(jwk_set(ec_key))
    cache = KeySetCache(session, allow_http_jwks=True, max_bytes=100)
    with pytest.raises(JwksFetchError, match="larger than 100 bytes"):
        cache.get_key(jwks_server.url, ec_key.kid)


def test_slow_server_hits_the_read_timeout(
    jwks_server: JwksServer, session: requests.Session, ec_key: SigningKey
) -> None:
    jwks_server.serve(jwk_set(ec_key))
    jwks_server.delay = 0.5
    cache = KeySetCache(session, allow_http_jwks=True, timeout=(0.5, 0.1))
    with pytest.raises(JwksFetchError, match="ReadTimeout"):
        cache.get_key(jwks_server.url, ec_key.kid)


class RecordingSession(requests.Session):
    """A real session that remembers the keyword arguments of each GET."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[dict[str, Any]] = []

    def get(self, url: str | bytes, **kwargs: Any) -> requests.Response:
        self.calls.append(kwargs)
        return super().get(url, **kwargs)


def test_requests_use_the_default_timeouts_and_no_redirects(
    jwks_server: JwksServer, ec_key: SigningKey
) -> None:
    jwks_server.serve(jwk_set(ec_key))
    with RecordingSession() as recording:
        KeySetCache(recording, allow_http_jwks=True).get_key(jwks_server.url, ec_key.kid)
    assert recording.calls[0]["timeout"] == (2.0, 3.0)
    assert recording.calls[0]["allow_redirects"] is False


class CountingSession(requests.Session):
    """A real session that counts close() calls."""

    def __init__(self) -> None:
        super().__init__()
        self.closed = 0

    def close(self) -> None:
        self.closed += 1
        super().close()


def test_cache_closes_only_a_session_it_created() -> None:
    with CountingSession() as shared:
        KeySetCache(shared).close()
        assert shared.closed == 0
    own = KeySetCache()
    own.close()

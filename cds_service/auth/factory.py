"""Build a ready `JwtVerifier` from a trust configuration file."""

from __future__ import annotations

from pathlib import Path

import requests

from .claims import DEFAULT_MAX_LIFETIME
from .jwks import KeySetCache
from .replay import InMemoryReplayCache, ReplayCache
from .trust import load_trust_config
from .verifier import DEFAULT_LEEWAY, JwtVerifier


def create_verifier(
    trust_path: str | Path,
    *,
    allow_http_jwks: bool = False,
    leeway: float = DEFAULT_LEEWAY,
    max_lifetime: float = DEFAULT_MAX_LIFETIME,
    session: requests.Session | None = None,
    key_cache: KeySetCache | None = None,
    replay_cache: ReplayCache | None = None,
) -> JwtVerifier:
    """Load `trust_path` (raises `TrustConfigError`) and wire the key and replay caches."""
    issuers = load_trust_config(trust_path, allow_http_jwks=allow_http_jwks)
    if key_cache is None:
        key_cache = KeySetCache(session, allow_http_jwks=allow_http_jwks)
    return JwtVerifier(
        issuers,
        key_cache,
        replay_cache if replay_cache is not None else InMemoryReplayCache(),
        leeway=leeway,
        max_lifetime=max_lifetime,
    )

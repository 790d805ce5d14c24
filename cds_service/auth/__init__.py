"""Authentication of CDS clients: verify the JWT each CDS Hooks call carries (CDS Hooks 2.0).

Exceptions::

    Exception
     └── AuthError                 base of everything raised here
          ├── AuthenticationFailed  a request's JWT is rejected → bare 401,
          │                         `WWW-Authenticate: Bearer`; `.reason` is a code from
          │                         REASONS, safe to log (never the token)
          ├── TrustConfigError      the trust file is invalid → refuse to start (also a
          │                         ValueError; the message names the file and the problem)
          └── JwksFetchError        a JWK Set could not be fetched; `JwtVerifier` turns it
                                    into AuthenticationFailed("jwks_unavailable")

Typical use::

    verifier = create_verifier(os.environ[TRUST_CONFIG_ENV])
    client = verifier.verify(token, audience=url_of_the_endpoint_called)
"""

from __future__ import annotations

from .algorithms import ALWAYS_ALLOWED, ASYMMETRIC, OPTIONAL
from .errors import REASONS, AuthenticationFailed, AuthError, JwksFetchError, TrustConfigError
from .factory import create_verifier
from .jwks import KeySetCache
from .keys import KeySet, PublicJwk
from .replay import GuardedReplayCache, InMemoryReplayCache, RedisReplayCache, ReplayCache
from .trust import TRUST_CONFIG_ENV, IssuerTrust, load_trust_config
from .verifier import JwtVerifier, VerifiedClient

__all__ = [
    "ALWAYS_ALLOWED",
    "ASYMMETRIC",
    "OPTIONAL",
    "REASONS",
    "TRUST_CONFIG_ENV",
    "AuthError",
    "AuthenticationFailed",
    "GuardedReplayCache",
    "InMemoryReplayCache",
    "IssuerTrust",
    "JwksFetchError",
    "JwtVerifier",
    "KeySet",
    "KeySetCache",
    "PublicJwk",
    "RedisReplayCache",
    "ReplayCache",
    "TrustConfigError",
    "VerifiedClient",
    "create_verifier",
    "load_trust_config",
]

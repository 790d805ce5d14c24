"""Exceptions raised by the CDS-client authentication package."""

from __future__ import annotations

from typing import ClassVar

#: Every reason code `AuthenticationFailed` may carry (short, stable, safe to log).
REASONS: frozenset[str] = frozenset(
    {
        "missing_token",  # no bearer token at all
        "malformed",  # not a compact JWS, bad base64/JSON, bad header or claim types
        "wrong_typ",  # header `typ` present and not JWT
        "alg_not_allowed",  # none, HMAC, unknown, or asymmetric but not enabled for the issuer
        "missing_kid",  # header has no `kid`
        "missing_claim",  # a required claim (iss, aud, exp, iat, jti, tenant) is absent
        "unknown_issuer",  # `iss` is not in the trust configuration
        "jku_not_allowed",  # header `jku` is not on the issuer's allowlist
        "jwks_unavailable",  # the issuer's key set could not be fetched
        "unknown_kid",  # no key with that `kid` in the issuer's key set
        "key_mismatch",  # the key's type, curve or `alg` does not fit the header `alg`
        "bad_signature",  # signature does not verify
        "expired",  # exp + leeway has passed
        "not_yet_valid",  # nbf - leeway is still in the future
        "iat_in_future",  # iat - leeway is still in the future
        "lifetime_too_long",  # exp - iat is longer than the configured maximum token lifetime + leeway
        "untrusted_host",  # no CDS_PUBLIC_BASE_URL and the Host header is not a loopback name
        "wrong_audience",  # `aud` does not name the endpoint called
        "wrong_tenant",  # `tenant` not in the issuer's tenant list
        "replayed_jti",  # the same iss + jti was already accepted
        "replay_store_unavailable",  # the shared replay store failed or did not answer in time
    }
)


class AuthError(Exception):
    """Base class of every exception raised by `cds_service.auth`."""


class AuthenticationFailed(AuthError):
    """A request's JWT was rejected; `reason` is a short machine code, never the token."""

    status_code: ClassVar[int] = 401

    def __init__(self, reason: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown authentication failure reason: {reason!r}")
        super().__init__(reason)
        self.reason = reason


class TrustConfigError(AuthError, ValueError):
    """The trust configuration file is invalid; the message names the file and the problem."""


class JwksFetchError(AuthError):
    """A JWK Set could not be fetched or parsed (the verifier turns it into `jwks_unavailable`)."""

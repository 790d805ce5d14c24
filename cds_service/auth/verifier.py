"""Verify the bearer JWT a CDS client sends (CDS Hooks 2.0, Trusting CDS Clients)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from jwt.api_jws import PyJWS
from jwt.exceptions import (
    InvalidAlgorithmError,
    InvalidKeyError,
    InvalidSignatureError,
    InvalidTokenError,
)

from .algorithms import ASYMMETRIC, is_forbidden
from .claims import DEFAULT_MAX_LIFETIME, check_claims, parse_claims
from .errors import AuthenticationFailed, JwksFetchError
from .jwks import KeySetCache
from .keys import PublicJwk
from .replay import ReplayCache
from .trust import IssuerTrust

DEFAULT_LEEWAY = 60.0
MAX_TOKEN_CHARS = 16 * 1024


@dataclass(frozen=True)
class VerifiedClient:
    """Who called: the verified issuer and token identity."""

    iss: str
    jti: str
    tenant: str | None
    kid: str
    alg: str
    exp: float


class JwtVerifier:
    """Checks header, key, signature, claims and replay; raises `AuthenticationFailed(reason)`."""

    def __init__(
        self,
        issuers: Mapping[str, IssuerTrust],
        key_cache: KeySetCache,
        replay_cache: ReplayCache,
        leeway: float = DEFAULT_LEEWAY,
        clock: Callable[[], float] = time.time,
        max_lifetime: float = DEFAULT_MAX_LIFETIME,
    ) -> None:
        if leeway < 0:
            raise ValueError("leeway must not be negative")
        if max_lifetime <= 0:
            raise ValueError("max_lifetime must be positive")
        self._max_lifetime = max_lifetime
        self._issuers = dict(issuers)
        self._keys = key_cache
        self._replay = replay_cache
        self._leeway = leeway
        self._clock = clock
        self._jws = PyJWS(
            algorithms=sorted(ASYMMETRIC), options={"enforce_minimum_key_length": True}
        )

    def verify(self, token: str, audience: str) -> VerifiedClient:
        """Verify `token` for the endpoint URL `audience`; return the client or raise."""
        if not audience:
            raise ValueError("audience (the URL of the endpoint called) is required")
        if not isinstance(token, str) or not token.strip():
            raise AuthenticationFailed("missing_token")
        if len(token) > MAX_TOKEN_CHARS:
            raise AuthenticationFailed("malformed")
        header, unverified = self._unverified(token)
        alg = self._check_header(header)
        issuer = self._issuer(unverified)
        if alg not in issuer.algorithms:
            raise AuthenticationFailed("alg_not_allowed")
        kid = header.get("kid")
        if kid is None or kid == "":
            raise AuthenticationFailed("missing_kid")
        if not isinstance(kid, str):
            raise AuthenticationFailed("malformed")
        jwk = self._find_key(issuer, header.get("jku"), kid)
        if not jwk.fits(alg):
            raise AuthenticationFailed("key_mismatch")
        claims = self._verified_claims(token, jwk, alg)
        check_claims(
            claims,
            audience=audience,
            now=self._clock(),
            leeway=self._leeway,
            tenants=issuer.tenants,
            max_lifetime=self._max_lifetime,
        )
        if not self._replay.add_if_absent(issuer.iss, claims["jti"], claims["exp"] + self._leeway):
            raise AuthenticationFailed("replayed_jti")
        return VerifiedClient(
            iss=issuer.iss,
            jti=claims["jti"],
            tenant=claims.get("tenant"),
            kid=kid,
            alg=alg,
            exp=claims["exp"],
        )

    def _unverified(self, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Header and claims before the signature is checked (used only to pick issuer and key)."""
        try:
            decoded = self._jws.decode_complete(token, options={"verify_signature": False})
        except InvalidTokenError:
            raise AuthenticationFailed("malformed") from None
        return decoded["header"], parse_claims(decoded["payload"])

    def _check_header(self, header: Mapping[str, Any]) -> str:
        """Check `typ` and that `alg` is an asymmetric algorithm; return `alg`."""
        typ = header.get("typ")
        if typ is not None and (not isinstance(typ, str) or typ.upper() != "JWT"):
            raise AuthenticationFailed("wrong_typ")
        alg = header.get("alg")
        if not isinstance(alg, str) or is_forbidden(alg) or alg not in ASYMMETRIC:
            raise AuthenticationFailed("alg_not_allowed")
        return alg

    def _issuer(self, unverified: Mapping[str, Any]) -> IssuerTrust:
        """The trusted issuer named by the (not yet verified) `iss` claim."""
        iss = unverified.get("iss")
        if iss is None:
            raise AuthenticationFailed("missing_claim")
        if not isinstance(iss, str):
            raise AuthenticationFailed("malformed")
        issuer = self._issuers.get(iss)
        if issuer is None:
            raise AuthenticationFailed("unknown_issuer")
        return issuer

    def _find_key(self, issuer: IssuerTrust, jku: object, kid: str) -> PublicJwk:
        """The issuer's key `kid`: inline set first, then the allowlisted `jku` or `jwks_url`."""
        if jku is not None and (not isinstance(jku, str) or jku not in issuer.jku):
            raise AuthenticationFailed("jku_not_allowed")
        if issuer.jwks is not None:
            key = issuer.jwks.get(kid)
            if key is not None:
                return key
        url = jku if isinstance(jku, str) else issuer.jwks_url
        if url is None:
            raise AuthenticationFailed("unknown_kid")
        try:
            key = self._keys.get_key(url, kid)
        except JwksFetchError as exc:
            raise AuthenticationFailed("jwks_unavailable") from exc
        if key is None:
            raise AuthenticationFailed("unknown_kid")
        return key

    def _verified_claims(self, token: str, jwk: PublicJwk, alg: str) -> dict[str, Any]:
        """Verify the signature with `jwk` and `alg` only; return the claims it covers."""
        try:
            decoded = self._jws.decode_complete(token, key=jwk.key, algorithms=[alg])
        except InvalidSignatureError:
            raise AuthenticationFailed("bad_signature") from None
        except InvalidKeyError:
            raise AuthenticationFailed("key_mismatch") from None
        except InvalidAlgorithmError:
            raise AuthenticationFailed("alg_not_allowed") from None
        except InvalidTokenError:
            raise AuthenticationFailed("malformed") from None
        return parse_claims(decoded["payload"])

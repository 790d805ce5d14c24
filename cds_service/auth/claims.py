"""Check the registered claims of a CDS Hooks client JWT (pure: no I/O, the caller gives `now`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from . import strict_json
from .errors import AuthenticationFailed

REQUIRED = ("iss", "aud", "exp", "iat", "jti")
# NumericDate bounds (RFC 7519 §2): 1970-01-01 to 9999-12-31. Outside them a value is malformed, and an
# integer of hundreds of digits never reaches float arithmetic (OverflowError).
MIN_NUMERIC_DATE = 0
MAX_NUMERIC_DATE = 253_402_300_799
DEFAULT_MAX_LIFETIME = 300.0  # the CDS Hooks sandbox and the EHRs mint tokens for 5 minutes


def parse_claims(payload: bytes) -> dict[str, Any]:
    """Decode a JWT payload into a claims object; `malformed` unless it is a JSON object."""
    try:
        claims = strict_json.loads(payload)
    except (ValueError, RecursionError):
        raise AuthenticationFailed("malformed") from None
    if not isinstance(claims, dict):
        raise AuthenticationFailed("malformed")
    return claims


def check_claims(
    claims: Mapping[str, Any],
    *,
    audience: str,
    now: float,
    leeway: float,
    tenants: frozenset[str] | None,
    max_lifetime: float = DEFAULT_MAX_LIFETIME,
) -> None:
    """Raise `AuthenticationFailed` unless the claims are complete, current, short-lived
    (exp − iat ≤ `max_lifetime` + `leeway`) and meant for us."""
    for name in REQUIRED:
        if name not in claims:
            raise AuthenticationFailed("missing_claim")
    _check_types(claims)
    if claims["exp"] - claims["iat"] > max_lifetime + leeway:
        raise AuthenticationFailed("lifetime_too_long")
    if claims["exp"] + leeway <= now:
        raise AuthenticationFailed("expired")
    if "nbf" in claims and claims["nbf"] - leeway > now:
        raise AuthenticationFailed("not_yet_valid")
    if claims["iat"] - leeway > now:
        raise AuthenticationFailed("iat_in_future")
    aud = claims["aud"]
    if audience not in ([aud] if isinstance(aud, str) else aud):
        raise AuthenticationFailed("wrong_audience")
    if tenants is not None:
        if "tenant" not in claims:
            raise AuthenticationFailed("missing_claim")
        if claims["tenant"] not in tenants:
            raise AuthenticationFailed("wrong_tenant")


def _check_types(claims: Mapping[str, Any]) -> None:
    """`malformed` when a claim has the wrong JSON type."""
    strings_ok = all(_is_text(claims[name]) for name in ("iss", "jti"))
    aud = claims["aud"]
    aud_ok = _is_text(aud) or (isinstance(aud, list) and bool(aud) and all(map(_is_text, aud)))
    dates_ok = all(_is_numeric_date(claims[n]) for n in ("exp", "iat", "nbf") if n in claims)
    tenant_ok = "tenant" not in claims or _is_text(claims["tenant"])
    if not (strings_ok and aud_ok and dates_ok and tenant_ok):
        raise AuthenticationFailed("malformed")


def _is_text(value: object) -> bool:
    """A non-empty string."""
    return isinstance(value, str) and bool(value)


def _is_numeric_date(value: object) -> bool:
    """A JSON number (RFC 7519 NumericDate) between 1970 and the end of 9999; booleans are not numbers.
    The range is checked before any float conversion, so a 400-digit integer is simply out of range."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return MIN_NUMERIC_DATE <= value <= MAX_NUMERIC_DATE

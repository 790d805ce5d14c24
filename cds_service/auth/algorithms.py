"""Which JWS algorithms a CDS client may use, and which key fits which algorithm."""

from __future__ import annotations

#: Recommended by CDS Hooks (§JWT Signing Algorithm): accepted from every trusted issuer.
ALWAYS_ALLOWED: frozenset[str] = frozenset({"ES384", "RS384"})

#: Asymmetric algorithms an issuer may enable with `algorithms:` in the trust configuration.
OPTIONAL: frozenset[str] = frozenset(
    {"ES256", "ES512", "RS256", "RS512", "PS256", "PS384", "PS512", "EdDSA"}
)

#: Every algorithm the verifier knows how to check.
ASYMMETRIC: frozenset[str] = ALWAYS_ALLOWED | OPTIONAL

# kty and, for curves, crv that each algorithm needs.
_KEY_SHAPES: dict[str, tuple[str, frozenset[str] | None]] = {
    "ES256": ("EC", frozenset({"P-256"})),
    "ES384": ("EC", frozenset({"P-384"})),
    "ES512": ("EC", frozenset({"P-521"})),
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
    "EdDSA": ("OKP", frozenset({"Ed25519", "Ed448"})),
}


def is_forbidden(alg: str) -> bool:
    """True for `none` and symmetric (HMAC) algorithms, which CDS Hooks SHALL NOT use."""
    return alg.lower() == "none" or alg.upper().startswith("HS")


def key_fits(alg: str, kty: str, crv: str | None) -> bool:
    """True when a key of type `kty` (curve `crv`) can verify signatures made with `alg`."""
    shape = _KEY_SHAPES.get(alg)
    if shape is None:
        return False
    want_kty, want_crv = shape
    return kty == want_kty and (want_crv is None or crv in want_crv)

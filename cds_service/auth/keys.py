"""Parse JSON Web Keys (RFC 7517) into public signing keys; refuse private and symmetric ones."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from jwt.exceptions import InvalidKeyError

from .algorithms import ASYMMETRIC, is_forbidden, key_fits

PublicKey = RSAPublicKey | EllipticCurvePublicKey | Ed25519PublicKey | Ed448PublicKey

MIN_RSA_BITS = 2048
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
_CURVES = {"EC": frozenset({"P-256", "P-384", "P-521"}), "OKP": frozenset({"Ed25519", "Ed448"})}
_LOADERS = {"EC": ECAlgorithm.from_jwk, "RSA": RSAAlgorithm.from_jwk, "OKP": OKPAlgorithm.from_jwk}


class InvalidJwk(ValueError):
    """One JWK (or a JWK Set document) is unusable; the message says why, without key material."""


@dataclass(frozen=True)
class PublicJwk:
    """A parsed public signing key with the JWK members that decide which `alg` it may verify."""

    kid: str
    kty: str
    crv: str | None
    alg: str | None
    key: PublicKey = field(repr=False, compare=False)

    def fits(self, alg: str) -> bool:
        """True when this key may verify a signature made with `alg`."""
        return (self.alg is None or self.alg == alg) and key_fits(alg, self.kty, self.crv)


@dataclass(frozen=True)
class KeySet:
    """An immutable JWK Set indexed by `kid`."""

    by_kid: Mapping[str, PublicJwk] = field(default_factory=lambda: MappingProxyType({}))

    def get(self, kid: str) -> PublicJwk | None:
        """The key with this `kid`, or None."""
        return self.by_kid.get(kid)

    def __len__(self) -> int:
        return len(self.by_kid)


def parse_jwk(obj: object) -> PublicJwk:
    """Parse one public signing JWK; raise `InvalidJwk` for anything else."""
    if not isinstance(obj, dict):
        raise InvalidJwk("a JWK must be a JSON object")
    kid = obj.get("kid")
    if not isinstance(kid, str) or not kid:
        raise InvalidJwk("JWK has no 'kid' (keys are looked up by kid)")
    where = f"JWK {kid!r}"
    kty = obj.get("kty")
    if kty == "oct":
        raise InvalidJwk(f"{where}: symmetric ('oct') keys are not allowed")
    if kty not in _LOADERS:
        raise InvalidJwk(f"{where}: unsupported kty {kty!r} (expected EC, RSA or OKP)")
    private = [m for m in _PRIVATE_MEMBERS if m in obj]
    if private:
        raise InvalidJwk(f"{where}: has private key members {private}; publish public keys only")
    _check_usage(obj, where)
    crv = obj.get("crv")
    if kty in _CURVES and crv not in _CURVES[kty]:
        raise InvalidJwk(f"{where}: unsupported crv {crv!r} for kty {kty}")
    alg = obj.get("alg")
    if alg is not None:
        _check_alg(alg, kty, crv, where)
    key = _load_key(obj, kty, where)
    return PublicJwk(kid=kid, kty=kty, crv=crv if kty != "RSA" else None, alg=alg, key=key)


def parse_jwk_set(document: object) -> KeySet:
    """Parse a JWK Set strictly: any unusable key or duplicate kid raises `InvalidJwk`."""
    by_kid: dict[str, PublicJwk] = {}
    for index, raw in enumerate(_keys_of(document)):
        try:
            jwk = parse_jwk(raw)
        except InvalidJwk as exc:
            raise InvalidJwk(f"keys[{index}]: {exc}") from None
        if jwk.kid in by_kid:
            raise InvalidJwk(f"keys[{index}]: duplicate kid {jwk.kid!r}")
        by_kid[jwk.kid] = jwk
    return KeySet(MappingProxyType(by_kid))


def parse_jwk_set_lenient(document: object) -> tuple[KeySet, list[str]]:
    """Parse a fetched JWK Set, skipping unusable keys; return the set and why keys were skipped."""
    by_kid: dict[str, PublicJwk] = {}
    skipped: list[str] = []
    for index, raw in enumerate(_keys_of(document)):
        if isinstance(raw, dict) and raw.get("use", "sig") != "sig":
            continue  # encryption keys may share the set; they are not ours to use
        try:
            jwk = parse_jwk(raw)
        except InvalidJwk as exc:
            skipped.append(f"keys[{index}]: {exc}")
            continue
        if jwk.kid in by_kid:
            skipped.append(f"keys[{index}]: duplicate kid {jwk.kid!r}, first one kept")
            continue
        by_kid[jwk.kid] = jwk
    return KeySet(MappingProxyType(by_kid)), skipped


def _keys_of(document: object) -> Iterator[Any]:
    """The `keys` array of a JWK Set document."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise InvalidJwk('a JWK Set must be a JSON object with a "keys" array')
    yield from document["keys"]


def _check_usage(obj: dict[str, Any], where: str) -> None:
    """Refuse keys declared for anything but signature verification."""
    use = obj.get("use")
    if use is not None and use != "sig":
        raise InvalidJwk(f"{where}: 'use' is {use!r}, expected 'sig'")
    ops = obj.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        raise InvalidJwk(f"{where}: 'key_ops' does not include 'verify'")


def _check_alg(alg: object, kty: str, crv: object, where: str) -> None:
    """Refuse a JWK `alg` that is forbidden, unknown, or does not fit the key."""
    if not isinstance(alg, str) or (alg not in ASYMMETRIC and not is_forbidden(alg)):
        raise InvalidJwk(f"{where}: unsupported alg {alg!r}")
    if is_forbidden(alg):
        raise InvalidJwk(f"{where}: alg {alg} is not allowed (none and HMAC are forbidden)")
    if not key_fits(alg, kty, crv if isinstance(crv, str) else None):
        raise InvalidJwk(f"{where}: alg {alg} does not fit a {kty} key with crv {crv!r}")


def _load_key(obj: dict[str, Any], kty: str, where: str) -> PublicKey:
    """Build the cryptography public key object."""
    try:
        key = _LOADERS[kty](obj)
    except (InvalidKeyError, ValueError, TypeError) as exc:
        raise InvalidJwk(f"{where}: invalid {kty} key ({exc})") from None
    if not isinstance(key, PublicKey):
        raise InvalidJwk(f"{where}: not a public key")
    if isinstance(key, RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise InvalidJwk(f"{where}: RSA key of {key.key_size} bits, at least {MIN_RSA_BITS} needed")
    return key

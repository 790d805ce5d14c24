"""Trust configuration: which CDS clients (JWT issuers) are trusted, and with which keys."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .algorithms import ALWAYS_ALLOWED, ASYMMETRIC, OPTIONAL, is_forbidden
from .errors import TrustConfigError
from .keys import InvalidJwk, KeySet, parse_jwk_set
from .urls import jwks_url_problem

#: Environment variable naming the trust configuration file (read by the application, not here).
TRUST_CONFIG_ENV = "CDS_TRUSTED_ISSUERS"

_TOP_KEYS = ("issuers",)
_ISSUER_KEYS = ("iss", "jwks", "jwks_url", "jku", "algorithms", "tenants")


@dataclass(frozen=True)
class IssuerTrust:
    """One trusted issuer: its keys (inline and/or by URL), allowed `jku`s, algorithms, tenants."""

    iss: str
    jwks: KeySet | None = None
    jwks_url: str | None = None
    jku: frozenset[str] = frozenset()
    algorithms: frozenset[str] = ALWAYS_ALLOWED  # always includes ES384 and RS384
    tenants: frozenset[str] | None = None  # None: any or no tenant

    def __post_init__(self) -> None:
        if not self.iss:
            raise ValueError("iss must not be empty")
        if self.jwks is None and self.jwks_url is None:
            raise ValueError(f"issuer {self.iss!r} needs jwks or jwks_url")
        bad = sorted(a for a in self.algorithms if a not in ASYMMETRIC)
        if bad:
            raise ValueError(f"issuer {self.iss!r}: algorithms not allowed: {bad}")
        if self.tenants is not None and not self.tenants:
            raise ValueError(f"issuer {self.iss!r}: tenants must not be empty")
        object.__setattr__(self, "algorithms", frozenset(self.algorithms) | ALWAYS_ALLOWED)


def load_trust_config(path: str | Path, *, allow_http_jwks: bool = False) -> dict[str, IssuerTrust]:
    """Load and strictly validate a JSON or YAML trust file; return issuers keyed by `iss`."""
    path = Path(path)
    document = _read(path)
    if not isinstance(document, dict):
        raise TrustConfigError(f'{path}: must be a mapping with an "issuers" list')
    _check_keys(document, _TOP_KEYS, f"{path}")
    entries = document.get("issuers")
    if not isinstance(entries, list):
        raise TrustConfigError(f'{path}: "issuers" must be a list (use [] to trust no one)')
    issuers: dict[str, IssuerTrust] = {}
    for index, entry in enumerate(entries):
        where = f"{path}: issuers[{index}]"
        issuer = _issuer(entry, where, allow_http_jwks)
        if issuer.iss in issuers:
            raise TrustConfigError(f"{where}: duplicate iss {issuer.iss!r}")
        issuers[issuer.iss] = issuer
    return issuers


def _read(path: Path) -> Any:
    """Parse the file as JSON (`.json`) or YAML (anything else)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TrustConfigError(f"{path}: cannot read trust configuration: {exc}") from exc
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise TrustConfigError(f"{path}: invalid JSON: {exc}") from exc
    except yaml.YAMLError as exc:
        raise TrustConfigError(f"{path}: invalid YAML: {exc}") from exc


def _issuer(entry: object, where: str, allow_http: bool) -> IssuerTrust:
    """Validate one `issuers` entry."""
    if not isinstance(entry, dict):
        raise TrustConfigError(f"{where}: must be a mapping")
    iss = entry.get("iss")
    if not isinstance(iss, str) or not iss.strip():
        raise TrustConfigError(f"{where}: 'iss' is required and must be a non-empty string")
    if iss != iss.strip():
        raise TrustConfigError(f"{where}: 'iss' {iss!r} has leading or trailing whitespace")
    where = f"{where} ({iss})"
    _check_keys(entry, _ISSUER_KEYS, where)
    if "jwks" not in entry and "jwks_url" not in entry:
        raise TrustConfigError(f"{where}: needs 'jwks' (inline key set) or 'jwks_url'")
    issuer = IssuerTrust(
        iss=iss,
        jwks=_jwks(entry["jwks"], where) if "jwks" in entry else None,
        jwks_url=_url(entry["jwks_url"], f"{where}: jwks_url", allow_http)
        if "jwks_url" in entry
        else None,
        jku=frozenset(
            _url(u, f"{where}: jku[{i}]", allow_http)
            for i, u in enumerate(_list(entry, "jku", where))
        ),
        algorithms=frozenset(_algorithm(a, where) for a in _list(entry, "algorithms", where)),
        tenants=_tenants(entry, where),
    )
    _check_inline_algs(issuer, where)
    return issuer


def _check_inline_algs(issuer: IssuerTrust, where: str) -> None:
    """Refuse an inline key whose `alg` the issuer does not allow (it could never verify)."""
    for jwk in issuer.jwks.by_kid.values() if issuer.jwks is not None else ():
        if jwk.alg is not None and jwk.alg not in issuer.algorithms:
            raise TrustConfigError(
                f"{where}: jwks key {jwk.kid!r} has alg {jwk.alg}, which this issuer does not "
                f"allow; add {jwk.alg} to 'algorithms'"
            )


def _check_keys(mapping: Mapping[Any, Any], allowed: tuple[str, ...], where: str) -> None:
    """Refuse unknown keys, suggesting the closest known one."""
    for key in mapping:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise TrustConfigError(
                f"{where}: unknown key {key!r}{hint}; allowed: {', '.join(allowed)}"
            )


def _jwks(value: object, where: str) -> KeySet:
    """Parse an inline JWK Set strictly."""
    try:
        keys = parse_jwk_set(value)
    except InvalidJwk as exc:
        raise TrustConfigError(f"{where}: jwks: {exc}") from None
    if not keys:
        raise TrustConfigError(f"{where}: jwks has no keys")
    return keys


def _url(value: object, where: str, allow_http: bool) -> str:
    """Validate a key-set URL."""
    problem = jwks_url_problem(value, allow_http=allow_http)
    if problem or not isinstance(value, str):
        raise TrustConfigError(f"{where}: {problem}")
    return value


def _list(entry: Mapping[str, Any], key: str, where: str) -> list[Any]:
    """An optional list-valued key (absent means empty)."""
    value = entry.get(key, [])
    if not isinstance(value, list):
        raise TrustConfigError(f"{where}: '{key}' must be a list")
    return value


def _algorithm(value: object, where: str) -> str:
    """Validate one extra algorithm name; none and HMAC are refused."""
    if isinstance(value, str) and is_forbidden(value):
        raise TrustConfigError(
            f"{where}: algorithm {value!r} refused: CDS Hooks forbids 'none' and HMAC (symmetric)"
        )
    if not isinstance(value, str) or value not in ASYMMETRIC:
        choices = ", ".join(sorted(OPTIONAL))
        raise TrustConfigError(f"{where}: unknown algorithm {value!r}; choose from {choices}")
    return value


def _tenants(entry: Mapping[str, Any], where: str) -> frozenset[str] | None:
    """The tenant allowlist, or None when the key is absent."""
    if "tenants" not in entry:
        return None
    values = _list(entry, "tenants", where)
    if not values:
        raise TrustConfigError(f"{where}: 'tenants' is empty; omit it to accept any tenant")
    if not all(isinstance(t, str) and t for t in values):
        raise TrustConfigError(f"{where}: 'tenants' must be non-empty strings")
    return frozenset(values)

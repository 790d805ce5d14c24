"""Opaque, signed, short-lived references to one evaluation: what a companion-page link carries.

A reference is a random snapshot id (128 bits) with a timestamp and an HMAC signature (itsdangerous,
which Flask ships): `3f9c…e2.Zx1AbQ.c2lnbmF0dXJl`. It names no patient and holds no clinical data; a
forged, altered or expired one is refused before the store is asked.

The signing key comes from CDS_COMPANION_KEY_FILE (the same file on every worker and replica). In
development without it, a random key is created once in a file beside the SQLite database (or under
var/), so that every worker of `make run` signs alike. In production without it, links are off.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner

from ..config import Settings
from ..key_files import load_key_file

SALT = "posterior-knee-cds.companion"

@dataclass(frozen=True)
class Reference:
    snapshot_id: str
    token: str


def new_snapshot_id() -> str:
    return secrets.token_hex(16)


def load_key(settings: Settings) -> bytes | None:
    """The signing key, or None when links are off (CDS_COMPANION_LINK=off, or production without a key)."""
    if settings.companion_link == "off":
        return None
    return load_key_file(settings, setting="CDS_COMPANION_KEY_FILE", configured=settings.companion_key_file,
                         development_name="companion.key",
                         off_in_production="companion page links are off (critical and DVT cards link to "
                                           "the companion page only with a key)")


class ReferenceSigner:
    """Signs snapshot ids into references and checks references (signature and age)."""

    def __init__(self, key: bytes, max_age_seconds: float) -> None:
        self._signer = TimestampSigner(key, salt=SALT)
        self.max_age_seconds = max_age_seconds

    def new(self) -> Reference:
        snapshot_id = new_snapshot_id()
        return Reference(snapshot_id, self._signer.sign(snapshot_id).decode())

    def snapshot_id(self, token: str) -> str | None:
        """The snapshot id a valid, unexpired reference names; None otherwise."""
        if not token or len(token) > 200:
            return None
        try:
            value = self._signer.unsign(token, max_age=self.max_age_seconds)
        except (SignatureExpired, BadSignature):
            return None
        return value.decode()

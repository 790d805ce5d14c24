"""Opaque, signed, short-lived references to one evaluation: what a companion-page link carries.

A reference is a random snapshot id (128 bits) with a timestamp and an HMAC signature (itsdangerous,
which Flask ships): `3f9c…e2.Zx1AbQ.c2lnbmF0dXJl`. It names no patient and holds no clinical data; a
forged, altered or expired one is refused before the store is asked.

The signing key comes from CDS_COMPANION_KEY_FILE (the same file on every worker and replica). In
development without it, a random key is created once in a file beside the SQLite database (or under
var/), so that every worker of `make run` signs alike. In production without it, links are off.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner

from ..config import Settings

log = logging.getLogger(__name__)
SALT = "posterior-knee-cds.companion"
KEY_MIN_BYTES = 32


class CompanionKeyError(ValueError):
    """The signing key file cannot be used."""


@dataclass(frozen=True)
class Reference:
    snapshot_id: str
    token: str


def new_snapshot_id() -> str:
    return secrets.token_hex(16)


def _development_key_path(settings: Settings) -> Path:
    url = settings.database_url
    if url.startswith("sqlite:///") and not url.endswith(":memory:"):
        return Path(url.split("///", 1)[1]).parent / "companion.key"
    return Path("var") / "companion.key"


def _create_key(path: Path) -> None:
    """Write a random key once; another worker racing to do the same keeps the first one. The key is written whole
    to a file of its own and then linked into place, so a worker that loses the race never reads a
    file the winner has created but not yet written (it failed to boot: "the key must be at least 32
    bytes")."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return
    descriptor, draft = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w") as handle:  # mkstemp: mode 0o600
            handle.write(secrets.token_urlsafe(48))
        with contextlib.suppress(FileExistsError):  # another worker linked its key first: that one is kept
            os.link(draft, path)
    finally:
        os.unlink(draft)


def load_key(settings: Settings) -> bytes | None:
    """The signing key, or None when links are off (CDS_COMPANION_LINK=off, or production without a key)."""
    if settings.companion_link == "off":
        return None
    if settings.companion_key_file:
        path = Path(settings.companion_key_file)
    elif settings.production and not settings.allow_insecure_dev:
        log.warning("companion page links are off: set CDS_COMPANION_KEY_FILE (a secret shared by every "
                    "replica) to link critical and DVT cards to the companion page")
        return None
    else:
        path = _development_key_path(settings)
        _create_key(path)
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise CompanionKeyError(f"CDS_COMPANION_KEY_FILE {path}: {exc.strerror}") from None
    if len(key) < KEY_MIN_BYTES:
        raise CompanionKeyError(f"CDS_COMPANION_KEY_FILE {path}: the key must be at least {KEY_MIN_BYTES} bytes")
    return key


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

"""A keyed hash of the patient, recorded with each card shown so that repeats for the same patient can
be counted without ever storing the patient's id.

HMAC-SHA256 with a secret from CDS_PATIENT_HASH_KEY_FILE (the same file on every worker and replica,
so that the same patient gets the same hash everywhere) over the CDS client's issuer (when JWTs are on:
two EHRs may use the same ids) and `context.patientId`. Without the key the hash cannot be recomputed
from an id, so the store alone does not tell whose cards they were. In development without the file, a
random key is created once beside the SQLite database (or under var/), shared by the workers of `make
run`. In production without it, no hash is recorded and the repeat rate is not available (a warning at
start-up).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import tempfile
from pathlib import Path

from ..config import Settings

log = logging.getLogger(__name__)
KEY_MIN_BYTES = 32
DEVELOPMENT_KEY_NAME = "patient-hash.key"


class PatientKeyError(ValueError):
    """The key file cannot be used."""


def _development_key_path(settings: Settings) -> Path:
    url = settings.database_url
    if url.startswith("sqlite:///") and not url.endswith(":memory:"):
        return Path(url.split("///", 1)[1]).parent / DEVELOPMENT_KEY_NAME
    return Path("var") / DEVELOPMENT_KEY_NAME


def _create_key(path: Path) -> None:
    """Write a random key once; a worker racing to do the same keeps the first one. The key is written whole
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


class PatientHasher:
    """patient id → 64 hex digits (HMAC-SHA256), the same on every worker holding the same key."""

    def __init__(self, key: bytes) -> None:
        self._mac = hmac.new(key, digestmod=hashlib.sha256)

    def __call__(self, patient_id: str, issuer: str | None = None) -> str:
        mac = self._mac.copy()
        mac.update(f"{issuer or ''}\x00{patient_id}".encode())
        return mac.hexdigest()

    @classmethod
    def load(cls, settings: Settings) -> PatientHasher | None:
        """The hasher, or None in production without CDS_PATIENT_HASH_KEY_FILE (no hash recorded)."""
        if settings.patient_hash_key_file:
            path = Path(settings.patient_hash_key_file)
        elif settings.production and not settings.allow_insecure_dev:
            log.warning("no patient hash is recorded with the cards shown, so the dashboard's repeat rate is not "
                        "available: set CDS_PATIENT_HASH_KEY_FILE (a secret shared by every replica)")
            return None
        else:
            path = _development_key_path(settings)
            _create_key(path)
        try:
            key = path.read_bytes().strip()
        except OSError as exc:
            raise PatientKeyError(f"CDS_PATIENT_HASH_KEY_FILE {path}: {exc.strerror}") from None
        if len(key) < KEY_MIN_BYTES:
            raise PatientKeyError(f"CDS_PATIENT_HASH_KEY_FILE {path}: the key must be at least {KEY_MIN_BYTES} bytes")
        return cls(key)

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

import hashlib
import hmac

from ..config import Settings
from ..key_files import load_key_file


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
        key = load_key_file(settings, setting="CDS_PATIENT_HASH_KEY_FILE", configured=settings.patient_hash_key_file,
                            development_name="patient-hash.key",
                            off_in_production="no patient hash is recorded with the cards shown, so the "
                                              "dashboard's repeat rate is not available")
        return cls(key) if key is not None else None

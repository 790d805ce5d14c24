"""What is running: version, source commit and a digest of the knowledge files, as `cds_build_info`."""

from __future__ import annotations

import hashlib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from . import metrics
from .config import Settings


def service_version() -> str:
    try:
        return version("posterior-knee-cds")
    except PackageNotFoundError:  # run from a source tree that was not installed
        return "0.0.0+source"


def knowledge_digest(cards_dir: Path) -> str:
    """First 12 hex digits of a SHA-256 over every file of the knowledge directory (path and content),
    so two pods answer from the same knowledge exactly when their digests match."""
    digest = hashlib.sha256()
    for path in sorted(p for p in cards_dir.rglob("*") if p.is_file()):
        digest.update(path.relative_to(cards_dir).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def record_build_info(settings: Settings) -> dict[str, str]:
    labels = {"version": service_version(), "commit": settings.build_commit or "unknown",
              "knowledge": knowledge_digest(settings.cards_dir)}
    metrics.BUILD_INFO.labels(**labels).set(1)
    return labels

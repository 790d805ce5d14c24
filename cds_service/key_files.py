"""Secret key files that every worker and replica must share: the companion links' signing key and the
key of the analytics' patient hash.

In development without the file, a random key is created once beside the SQLite database (or under
var/), so that every worker of `make run` uses the same one. In production without it, the feature that
needs it is off (the caller says which, at start-up). An unreadable or short file stops start-up.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import tempfile
from pathlib import Path

from .config import ConfigError, Settings

log = logging.getLogger(__name__)
KEY_MIN_BYTES = 32


class KeyFileError(ConfigError):
    """A configured key file cannot be used."""


def load_key_file(settings: Settings, *, setting: str, configured: str, development_name: str,
                  off_in_production: str) -> bytes | None:
    """The key held by `configured` (the value of `setting`); None in production without one, after
    logging `off_in_production`; a development key created once when nothing is configured."""
    if configured:
        path = Path(configured)
    elif settings.production and not settings.allow_insecure_dev:
        log.warning("%s: set %s (a secret shared by every replica)", off_in_production, setting)
        return None
    else:
        path = _development_key_path(settings, development_name)
        _create_key(path)
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise KeyFileError(f"{setting} {path}: {exc.strerror}") from None
    if len(key) < KEY_MIN_BYTES:
        raise KeyFileError(f"{setting} {path}: the key must be at least {KEY_MIN_BYTES} bytes")
    return key


def _development_key_path(settings: Settings, name: str) -> Path:
    url = settings.database_url
    if url.startswith("sqlite:///") and not url.endswith(":memory:"):
        return Path(url.split("///", 1)[1]).parent / name
    return Path("var") / name


def _create_key(path: Path) -> None:
    """Write a random key once; a worker racing to do the same keeps the first one. The key is written
    whole to a file of its own and then linked into place, so a worker that loses the race never reads
    a file the winner has created but not yet written (it failed to boot: "the key must be at least 32
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

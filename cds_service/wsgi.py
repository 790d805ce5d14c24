"""WSGI entry point for gunicorn: `gunicorn cds_service.wsgi:app` (settings from CDS_* variables).

A broken knowledge file, trust file or setting stops the worker with a one-line message and exit
code 3, which makes gunicorn stop instead of restarting the worker forever.
"""

from __future__ import annotations

import sys

from .app import create_app
from .auth import TrustConfigError
from .config import ConfigError
from .knowledge import KnowledgeError

try:
    app = create_app()
except (KnowledgeError, ConfigError, TrustConfigError) as exc:
    print(f"cds_service: configuration error: {exc}", file=sys.stderr, flush=True)
    raise SystemExit(3) from None

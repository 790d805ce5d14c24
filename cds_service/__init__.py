"""CDS Hooks 2.0 service for posterior knee pain (patient-view).

`create_app()` builds the Flask app; `knee-cds` is the command line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["create_app"]


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the service (see cds_service.app.create_app)."""
    from .app import create_app as _create_app

    return _create_app(config)

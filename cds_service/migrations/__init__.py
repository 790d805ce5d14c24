"""Alembic migrations of the store (see docs/deployment.md, "Database migrations")."""

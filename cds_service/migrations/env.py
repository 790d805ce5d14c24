"""Alembic environment: migrations always run on a connection the service hands over.

`cds_service.feedback_store.migrate` opens that connection (with the service's own URL, password
file and TLS settings) and holds the migration lock; this file never reads a URL itself.
"""

from __future__ import annotations

from alembic import context

from cds_service.feedback_store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `knee-cds db upgrade`, which supplies the connection")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()

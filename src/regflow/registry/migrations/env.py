"""Alembic's environment for the registry index: always on a connection regflow passes in.

`regflow.registry.migrations` runs Alembic's commands with the connection (already inside
a write transaction) in `config.attributes["connection"]`; there is no database URL here.
"""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
# The caller's transaction is open, so this joins it: regflow commits or rolls back.
with context.begin_transaction():
    context.run_migrations()

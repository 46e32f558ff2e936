"""Alembic revisions of the registry index (a package so the wheel ships them)."""

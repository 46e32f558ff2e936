"""Schema migrations (Alembic) on both backends: a later revision added here upgrades an
index written by the current schema, that index is then refused by the current code, an
index from before Alembic is stamped and upgraded, and the revisions build the tables the
code queries."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from rawindex import edit_index
from sqlalchemy import create_engine, inspect, text
from typer.testing import CliRunner

from regflow.cli.models import models_app
from regflow.registry import Registry, SchemaVersionError, migrations
from regflow.registry.index import metadata

runner = CliRunner()

LATER = '''"""A later schema, as a future regflow would add it: a column and a table.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("model_versions", sa.Column("note", sa.Text))
    op.create_table("later_things", sa.Column("id", sa.Integer, primary_key=True))
    op.execute("UPDATE registry_meta SET value = '3' WHERE key = 'schema_version'")


def downgrade() -> None:
    op.drop_table("later_things")
    op.drop_column("model_versions", "note")
'''


def _revision(reg: Registry) -> str | None:
    with reg._index.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _migrate(uri: str) -> dict:
    done = runner.invoke(models_app, ["migrate", "--registry", uri, "--json"])
    assert done.exit_code == 0, (done.stdout, done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_later_migration_upgrades_the_index_and_the_current_code_refuses_it(
    backend: str,
    registry_uri: str,
    tmp_path: Path,
    run_factory: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with Registry.open(registry_uri) as reg:  # written by the current schema
        reg.register("demo", run_factory())
        assert _revision(reg) == migrations.head_revision() == "0002"
    later = tmp_path / "later_versions"
    later.mkdir()
    (later / "0003_later.py").write_text(LATER)
    monkeypatch.setattr(migrations, "extra_version_locations", [str(later)])

    if backend == "postgresql":  # a shared server's index waits for `models migrate`
        with pytest.raises(SchemaVersionError, match="regflow models migrate --registry"):
            Registry.open(registry_uri)
        assert _migrate(registry_uri) | {"registry": None} == {
            "status": "ok",
            "registry": None,
            "from": "0002",
            "to": "0003",
        }
    with Registry.open(registry_uri) as reg:  # SQLite: upgraded here, on open
        assert _revision(reg) == "0003"
        assert reg.resolve("demo").version == 1  # the data came along
        reg.register("demo", run_factory())
        with reg._index.engine.connect() as conn:
            assert "note" in {c["name"] for c in inspect(conn).get_columns("model_versions")}
            assert inspect(conn).has_table("later_things")
    assert _migrate(registry_uri)["from"] == "0003"  # nothing left to do

    monkeypatch.setattr(migrations, "extra_version_locations", [])  # the current regflow
    with pytest.raises(SchemaVersionError) as refused:
        Registry.open(registry_uri)
    message = str(refused.value)
    assert "0003" in message and "0002" in message and "upgrade regflow" in message
    if backend == "sqlite":
        with pytest.raises(SchemaVersionError):
            Registry.open(registry_uri, read_only=True)
    cli = runner.invoke(models_app, ["list", "--registry", registry_uri])
    assert cli.exit_code == 1 and "upgrade regflow" in cli.stderr
    assert "Traceback" not in cli.stderr and len(cli.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("legacy", [1, 2])
def test_an_index_from_before_alembic_is_stamped_and_upgraded(
    backend: str, registry_uri: str, run_factory: Callable[..., Path], legacy: int
) -> None:
    with Registry.open(registry_uri) as reg:
        reg.register("demo", run_factory())
        # What regflow before Alembic left: no alembic_version; schema 1 had no monitoring.
        edit_index(reg, "DROP TABLE alembic_version")
        if legacy == 1:
            edit_index(reg, "DROP TABLE monitoring")
            edit_index(reg, "UPDATE registry_meta SET value = '1' WHERE key = 'schema_version'")
    revision = f"000{legacy}"
    if backend == "postgresql":
        with pytest.raises(SchemaVersionError, match=f"revision {revision} \\(not yet stamped"):
            Registry.open(registry_uri)
        assert _migrate(registry_uri)["from"] == revision
    with Registry.open(registry_uri) as reg:
        assert _revision(reg) == "0002"
        reg.record_monitoring("demo", 1, status="ok", rows=1, failed=[], report={})
        assert reg.resolve("demo").version == 1 and len(reg.list_monitoring("demo")) == 1
        with reg._index.engine.connect() as conn:
            meta = conn.execute(text("SELECT value FROM registry_meta")).scalar()
        assert meta == "2"  # regflow before Alembic reads this number


def test_the_revisions_build_the_tables_the_code_uses(registry: Registry) -> None:
    with registry._index.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert [d for d in diff if "alembic_version" not in str(d)] == []


def test_migrate_names_a_missing_registry_and_a_database_of_other_tables(
    tmp_path: Path,
) -> None:
    missing = runner.invoke(models_app, ["migrate", "--registry", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "no registry" in missing.stderr
    other = tmp_path / "other.db"
    with create_engine(f"sqlite:///{other}").begin() as conn:
        conn.execute(text("CREATE TABLE customers (id INTEGER)"))
    done = runner.invoke(models_app, ["migrate", "--registry", f"sqlite:///{other}"])
    assert done.exit_code == 2 and "not a regflow registry index" in done.stderr

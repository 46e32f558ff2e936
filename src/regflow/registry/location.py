"""Opening a registry: where its index and files are, and `Registry.open` / `close`.

A location is a folder (`index.db` + `store/`) or a database URL plus a file store. When none
is given, $REGFLOW_REGISTRY names it, else `artifacts/registry`; $REGFLOW_REGISTRY_STORE
names the store of a database URL.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url

from regflow.errors import UsageError
from regflow.registry import migrations
from regflow.registry.errors import (
    InvalidReferenceError,
    NotFoundError,
    RegistryError,
    RegistryReadOnlyError,
)
from regflow.registry.index import RegistryIndex, sqlite_read_only_url
from regflow.registry.object_store import FsspecStore
from regflow.registry.reading import RegistryBase
from regflow.registry.store import LocalDirectoryStore

ENV_VAR = "REGFLOW_REGISTRY"
ENV_STORE = "REGFLOW_REGISTRY_STORE"
DEFAULT_LOCATION = "artifacts/registry"
# SQLAlchemy imports a database driver by module name; the package to install for each.
DRIVER_PACKAGES = {
    "psycopg2": "psycopg2-binary",
    "psycopg": "psycopg[binary]",
    "asyncpg": "asyncpg",
    "pg8000": "pg8000",
    "pymysql": "pymysql",
    "MySQLdb": "mysqlclient",
    "mysql": "mysql-connector-python",
    "oracledb": "oracledb",
    "pyodbc": "pyodbc",
}
# SQLite's companions of a database file: writing over one corrupts the index too.
SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")


@dataclass(frozen=True)
class Location:
    """Where one registry lives: its index URL, its store folder, and how to show it."""

    index_url: str
    store_path: str
    display: str


def resolve_location(
    uri: str | os.PathLike[str] | None, *, store: str | None, create: bool
) -> Location:
    """Find (and unless `create=False`, make) the index and store that `uri` names.

    See `Registry.open` for the rules.
    """
    text = os.fspath(uri) if uri is not None else os.environ.get(ENV_VAR) or DEFAULT_LOCATION
    if "://" in text and not text.startswith("file://"):
        return _database_location(text, store, create)
    root = Path(text.removeprefix("file://")).expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise InvalidReferenceError(f"registry location {root} is a file, not a folder")
    if not create and not (root / "index.db").exists():
        raise NotFoundError(
            f"no registry at {root} (no index.db): register a model first, or pass "
            f"--registry / set {ENV_VAR}"
        )
    _make_folder(root, create)
    return Location(
        index_url=f"sqlite:///{root / 'index.db'}",
        store_path=store or str(root / "store"),
        display=str(root),
    )


def _database_location(text: str, store: str | None, create: bool) -> Location:
    try:
        url = make_url(text)
    except sa_exc.ArgumentError as exc:
        raise InvalidReferenceError(f"cannot parse registry URL {text!r}: {exc}") from None
    _check_driver(url)
    store_path = store or os.environ.get(ENV_STORE)
    if store_path is None:
        if url.get_backend_name() != "sqlite" or not url.database:
            raise InvalidReferenceError(
                f"registry index {url.render_as_string(hide_password=True)} needs a "
                f"file store: pass store=... or set {ENV_STORE}"
            )
        store_path = str(Path(url.database).resolve().parent / "store")
    if url.get_backend_name() == "sqlite" and url.database:
        db = Path(url.database).resolve()
        if not create and not db.exists():
            raise NotFoundError(f"no registry index at {db}")
        _make_folder(db.parent, create)
    return Location(
        index_url=text,
        store_path=store_path,
        display=url.render_as_string(hide_password=True),
    )


def _make_folder(folder: Path, create: bool) -> None:
    """Make the registry's folder when creating; a folder we may not write says so."""
    if not create or folder.is_dir():
        return  # readers write nothing at open time
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except PermissionError:
        raise RegistryReadOnlyError(str(folder), "create a registry there") from None
    except OSError as exc:
        if exc.errno != errno.EROFS:
            raise
        raise RegistryReadOnlyError(str(folder), "create a registry there") from None


def _sqlite_file(where: Location) -> Path | None:
    url = make_url(where.index_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database).expanduser().resolve()


def is_read_only(where: Location) -> bool:
    """Whether this process cannot write the registry's SQLite index or its store.

    `os.access` also reports a read-only mount (EROFS). A database URL other than SQLite
    is writable as far as we can tell; its server refuses what it must.
    """
    db = _sqlite_file(where)
    if db is None:
        return False
    # An object store's permissions are its server's to enforce (like a database's).
    store = None if is_store_url(where.store_path) else local_store_path(where.store_path)
    return (
        not os.access(db.parent, os.W_OK)
        or (db.exists() and not os.access(db, os.W_OK))
        or (store is not None and store.exists() and not os.access(store, os.W_OK))
    )


def is_store_url(store: str) -> bool:
    """Whether `store` names an fsspec filesystem (`s3://...`) rather than a local folder."""
    return "://" in store and not store.startswith("file://")


def local_store_path(store: str) -> Path:
    return Path(store.removeprefix("file://")).expanduser()


def open_store(
    where: Location, *, create: bool, read_only: bool
) -> LocalDirectoryStore | FsspecStore:
    """The file store `where` names: a local folder, or any fsspec URL."""
    if is_store_url(where.store_path):
        return FsspecStore(
            where.store_path, create=create, read_only=read_only, registry=where.display
        )
    return LocalDirectoryStore(
        local_store_path(where.store_path),
        create=create,
        read_only=read_only,
        registry=where.display,
    )


def read_only_index_url(where: Location) -> str:
    """The URL that opens the index read-only: SQLite `mode=ro`, plus `immutable=1` if needed.

    A WAL database needs its -shm and -wal files. Without them, SQLite would create them
    (a writable folder) or fail (a read-only one), so it opens the file as immutable: with
    no -wal no writer is active, and in a read-only folder none can start. With them (a
    writer may be active) it reads through them.
    """
    db = _sqlite_file(where)
    if db is None:
        return where.index_url
    companions = [db.with_name(db.name + suffix) for suffix in ("-wal", "-shm")]
    immutable = not all(p.exists() for p in companions)
    return sqlite_read_only_url(db, immutable=immutable)


def open_index(where: Location, *, read_only: bool = False, migrate: bool = False) -> RegistryIndex:
    """The index at `where`; a missing driver or a file that is no index is one clear error.

    `migrate`: upgrade an older schema on any database (else only SQLite upgrades itself).
    """
    url = make_url(where.index_url)
    shown = url.database if url.get_backend_name() == "sqlite" and url.database else where.display
    try:
        if read_only:
            url_ro = read_only_index_url(where)
            return RegistryIndex(url_ro, read_only=True, location=where.display)
        return RegistryIndex(where.index_url, location=where.display, migrate=migrate)
    except sa_exc.OperationalError as exc:
        # Unreachable server, locked or unreadable file: may pass, so not a usage error.
        raise RegistryError(f"cannot open registry index {shown}: {exc.orig}") from None
    except sa_exc.DatabaseError as exc:
        raise InvalidReferenceError(
            f"{shown} is not a regflow registry index ({exc.orig})"
        ) from None


def migrate_index(uri: str | os.PathLike[str] | None) -> tuple[str | None, str, str]:
    """Upgrade the index at `uri` to this regflow's schema: (revision before, after, where).

    Only the index changes, so a database URL needs no store here. Before is None for an
    index that had no tables (it is created).
    """
    # The store is neither opened nor created: any placeholder satisfies resolve_location.
    where = resolve_location(uri, store=os.devnull, create=False)
    index = open_index(where, migrate=True)
    try:
        return index.revision_before, migrations.head_revision(), where.display
    finally:
        index.dispose()


def _local_path(text: str | os.PathLike[str]) -> Path | None:
    """`text` made absolute with symlinks resolved, or None when it is a URL."""
    text = os.fspath(text)
    if "://" in text and not text.startswith("file://"):
        return None
    return Path(text.removeprefix("file://")).expanduser().resolve()


def registry_paths(uri: str | os.PathLike[str] | None) -> list[Path]:
    """The local files and folders the registry at `uri` owns; nothing is created."""
    text = os.fspath(uri) if uri is not None else os.environ.get(ENV_VAR) or DEFAULT_LOCATION
    root = _local_path(text)
    if root is not None:
        return [root]
    try:
        url = make_url(text)
    except sa_exc.ArgumentError:
        return []
    paths: list[Path] = []
    store = os.environ.get(ENV_STORE)
    if url.get_backend_name() == "sqlite" and url.database:
        db = Path(url.database).expanduser().resolve()
        paths += [db.with_name(db.name + suffix) for suffix in SQLITE_SUFFIXES]
        store = store or str(db.parent / "store")
    local_store = _local_path(store) if store else None
    return paths + ([local_store] if local_store is not None else [])


def inside_registry(path: str | os.PathLike[str], registry: str | os.PathLike[str] | None) -> bool:
    """Whether writing `path` would write into the registry's folder, store or index file."""
    target = _local_path(path)
    if target is None:
        return False
    return any(target == owned or owned in target.parents for owned in registry_paths(registry))


def refuse_output_inside_registry(
    path: str | os.PathLike[str], registry: str | os.PathLike[str] | None
) -> None:
    """UsageError (check `output_path`) when `path` lies inside the registry (no Prefect)."""
    if inside_registry(path, registry):
        raise UsageError(
            f"output path {path} is inside the model registry: writing there could corrupt "
            "stored versions; choose a path outside it",
            check="output_path",
        )


def check_output_path(
    path: str | os.PathLike[str],
    registry: str | os.PathLike[str] | None,
    *,
    data: str | None = None,
    folder: bool = False,
) -> None:
    """Refuse an output inside the registry, over the input `data`, or a file for a folder."""
    refuse_output_inside_registry(path, registry)
    target = _local_path(path)
    if target is None:
        return
    if folder and target.exists() and not target.is_dir():
        raise UsageError(f"output path {path} is a file; it must be a folder", check="output_path")
    if data is not None and _local_path(data) == target:
        raise UsageError(
            f"output path {path} is the input file: scoring would overwrite its data",
            check="output_path",
        )


def _check_driver(url: URL) -> None:
    """Load the URL's dialect and driver now, so a missing one names the package to install."""
    shown = url.render_as_string(hide_password=True)
    try:
        url.get_dialect().import_dbapi()
    except sa_exc.NoSuchModuleError as exc:
        raise InvalidReferenceError(
            f"registry index {shown}: unknown database kind ({exc})"
        ) from None
    except ModuleNotFoundError as exc:
        module = (exc.name or "").partition(".")[0]
        package = DRIVER_PACKAGES.get(module, module)
        raise InvalidReferenceError(
            f"registry index {shown} needs the database driver {module!r}, which is not "
            f"installed: pip install '{package}'"
        ) from None


class LocationMixin(RegistryBase):
    """`Registry.open`, `close` and the context manager."""

    @classmethod
    def open(
        cls,
        uri: str | os.PathLike[str] | None = None,
        *,
        store: str | None = None,
        create: bool = True,
        read_only: bool | None = None,
    ) -> Self:
        """Open the registry at `uri`, creating it unless `create=False`.

        `uri` None -> $REGFLOW_REGISTRY -> `artifacts/registry`. A directory path holds
        `index.db` (SQLite) and `store/`. A database URL (`sqlite:///x.db`,
        `postgresql://...`) names the index; the files then go to `store`, or
        $REGFLOW_REGISTRY_STORE, or (SQLite only) `store/` beside the database file.
        With `create=False` a missing SQLite registry is a NotFoundError (a typo in
        `--registry` should not silently create an empty registry), and nothing is written.
        `read_only` None: read-only when this process cannot write the SQLite index or the
        store (see `is_read_only`); then reads work and every write is a
        RegistryReadOnlyError (exit 2), raised before anything changes.
        """
        where = resolve_location(uri, store=store, create=create)
        if read_only is None:
            read_only = is_read_only(where)
        db = _sqlite_file(where)
        if read_only and db is not None and not db.exists():
            raise RegistryReadOnlyError(where.display, "create a registry there")
        return cls(
            open_index(where, read_only=read_only),
            open_store(where, create=create, read_only=read_only),
            where.display,
        )

    @property
    def read_only(self) -> bool:
        """Whether this registry was opened read-only (every write refuses)."""
        return self._index.read_only

    def close(self) -> None:
        self._index.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""Opening a registry: where its index and files are, and `Registry.open` / `close`.

A location is a folder (`index.db` + `store/`) or a database URL plus a file store. When none
is given, $REGFLOW_REGISTRY names it, else `artifacts/registry`; $REGFLOW_REGISTRY_STORE
names the store of a database URL.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from regflow.registry.errors import InvalidReferenceError, NotFoundError
from regflow.registry.index import RegistryIndex
from regflow.registry.reading import RegistryBase
from regflow.registry.store import LocalDirectoryStore

ENV_VAR = "REGFLOW_REGISTRY"
ENV_STORE = "REGFLOW_REGISTRY_STORE"
DEFAULT_LOCATION = "artifacts/registry"


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
    root.mkdir(parents=True, exist_ok=True)
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
        db.parent.mkdir(parents=True, exist_ok=True)
    return Location(
        index_url=text,
        store_path=store_path,
        display=url.render_as_string(hide_password=True),
    )


class LocationMixin(RegistryBase):
    """`Registry.open`, `close` and the context manager."""

    @classmethod
    def open(
        cls,
        uri: str | os.PathLike[str] | None = None,
        *,
        store: str | None = None,
        create: bool = True,
    ) -> Self:
        """Open the registry at `uri`, creating it unless `create=False`.

        `uri` None -> $REGFLOW_REGISTRY -> `artifacts/registry`. A directory path holds
        `index.db` (SQLite) and `store/`. A database URL (`sqlite:///x.db`,
        `postgresql://...`) names the index; the files then go to `store`, or
        $REGFLOW_REGISTRY_STORE, or (SQLite only) `store/` beside the database file.
        With `create=False` a missing SQLite registry is a NotFoundError (a typo in
        `--registry` should not silently create an empty registry).
        """
        where = resolve_location(uri, store=store, create=create)
        return cls(
            RegistryIndex(where.index_url),
            LocalDirectoryStore(Path(where.store_path)),
            where.display,
        )

    def close(self) -> None:
        self._index.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

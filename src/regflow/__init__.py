"""regflow: a Prefect pipeline that trains linear-regression models into a model registry.

`from regflow import train, predict, Registry` is the Python API (docs/python-api.md). They
load on first use, so `import regflow` (and `regflow --version`) stays free of torch and
Prefect.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from regflow.api import predict, train
    from regflow.registry import Registry

__version__ = "0.1.0"
__all__ = ["Registry", "__version__", "predict", "train"]


def __getattr__(name: str) -> Any:
    if name in ("train", "predict"):
        from regflow import api

        return getattr(api, name)
    if name == "Registry":
        from regflow.registry import Registry

        return Registry
    raise AttributeError(f"module 'regflow' has no attribute {name!r}")

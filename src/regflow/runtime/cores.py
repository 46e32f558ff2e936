"""The cores this process may use (its CPU affinity where the platform has one), and their model."""

from __future__ import annotations

import contextlib
import functools
import os
import platform
from typing import Any


def usable_cores() -> int:
    # sched_getaffinity is Linux-only (macOS, where MPS trains, lacks it); it also respects
    # taskset and cgroup cpusets, which os.cpu_count() ignores.
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def cpu_model() -> str:
    """The processor's model name, for the model card: '/proc/cpuinfo', else the platform's.

    platform.processor() is often only the architecture ('x86_64') or empty on Linux, so the
    kernel's own name comes first.
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                if line.startswith(("model name", "Hardware", "Processor")) and ":" in line:
                    name = line.split(":", 1)[1].strip()
                    if name:
                        return name
    except OSError:
        pass
    return platform.processor() or "CPU"


@functools.cache
def _blas_controller() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def one_blas_thread() -> contextlib.AbstractContextManager[Any]:
    """BLAS held to one thread while the context lasts. The controller lists the process's
    libraries once: threadpool_limits lists them on every call (~2 ms in a Dask worker, a
    tenth of a partition's moment sweep). numpy's BLAS is loaded before any caller runs."""
    return _blas_controller().limit(limits=1, user_api="blas")

"""How many cores this process may use (its CPU affinity where the platform has one)."""

from __future__ import annotations

import os


def usable_cores() -> int:
    # sched_getaffinity is Linux-only (macOS, where MPS trains, lacks it); it also respects
    # taskset and cgroup cpusets, which os.cpu_count() ignores.
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)

"""`python -m benchmarks.spawn REPORT -- ARGV...`: run ARGV, write its wall time and peak RSS.

A child's ru_maxrss on Linux starts from the high-water mark of the process that spawned it
(exec records the old address space's peak), so spawning from the benchmark's own process,
which held gigabytes of generated data, would charge that to every contender. This small
process spawns the contender instead; its own few MiB are all it can add.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def main(argv: list[str]) -> int:
    report, command = argv[0], argv[argv.index("--") + 1 :]
    started = time.perf_counter()
    proc = subprocess.Popen(command)  # stdout and stderr: this process's, captured upstream
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    with open(report, "w") as out:
        json.dump(
            {"returncode": proc.returncode, "wall_s": wall, "maxrss_kib": usage.ru_maxrss}, out
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""One 'training run' for the concurrency test: register, then promote by compare-and-set.

Run as a separate process: python registry_worker.py REGISTRY RUN_DIR GO_FILE INDEX
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1]), str(HERE)]

from runfolder import make_run  # noqa: E402

from regflow.registry import AliasConflict, Registry  # noqa: E402


def main() -> None:
    registry, run_dir, go_file, index = (
        sys.argv[1],
        Path(sys.argv[2]),
        Path(sys.argv[3]),
        sys.argv[4],
    )
    run = make_run(run_dir, coef=[1.0 + int(index)], flow_run_id=f"flow-run-{index}")
    reg = Registry.open(registry)
    deadline = time.monotonic() + 60
    while not go_file.exists():  # start together, for maximum contention
        if time.monotonic() > deadline:
            raise SystemExit("never got the go signal")
        time.sleep(0.005)
    mv = reg.register("demo", run, actor=f"flow-run-{index}")
    conflicts = 0
    while True:  # every run becomes champion once, each move from the holder it saw
        current = reg.get_alias("demo", "champion")
        try:
            reg.set_alias(
                "demo",
                "champion",
                mv.version,
                expected=current,
                actor=f"flow-run-{index}",
                reason="concurrency test",
            )
            break
        except AliasConflict:
            conflicts += 1
    print(json.dumps({"version": mv.version, "run": index, "conflicts": conflicts}))


if __name__ == "__main__":
    main()

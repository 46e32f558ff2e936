"""One of the concurrent alias movers: promotes and rolls back `demo@champion` in turns.

Run as a separate process: python alias_worker.py REGISTRY GO_FILE INDEX ROUNDS VERSIONS
Prints one JSON line: the audit-log ids of the moves it made, and what was refused.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1]), str(HERE)]

from regflow.registry import Registry, RegistryError  # noqa: E402


def main() -> None:
    registry, go_file = sys.argv[1], Path(sys.argv[2])
    index, rounds, versions = (int(a) for a in sys.argv[3:6])
    reg = Registry.open(registry)
    deadline = time.monotonic() + 60
    while not go_file.exists():  # start together, for maximum contention
        if time.monotonic() > deadline:
            raise SystemExit("never got the go signal")
        time.sleep(0.005)
    moves: list[int] = []
    refused: list[str] = []
    for i in range(rounds):
        try:
            if (index + i) % 2 == 0:
                target = 1 + (index + i) % versions
                event = reg.promote(f"demo:{target}", actor=f"worker-{index}")
            else:
                event = reg.rollback("demo", actor=f"worker-{index}")
            moves.append(event.id)
        except RegistryError as exc:  # e.g. nothing left to roll back to: no move, no event
            refused.append(f"{type(exc).__name__}: {exc}")
    reg.close()
    print(json.dumps({"moves": moves, "refused": refused}))


if __name__ == "__main__":
    main()

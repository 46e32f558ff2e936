"""Child entry point: `python -m benchmarks.child CONTENDER SPEC_JSON` prints one result line."""

from __future__ import annotations

import json
import sys

from benchmarks.contenders import CONTENDERS
from benchmarks.data import Dataset
from benchmarks.measure import emit


def main(argv: list[str]) -> int:
    name, spec = argv[0], json.loads(argv[1])
    result = CONTENDERS[name](Dataset(**spec["dataset"]))
    emit({"contender": name, **result})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

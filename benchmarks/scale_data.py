"""The scale part's data and its reference: Parquet files written one at a time, and DuckDB's
cross-product sums over them solved in float64.

The generator never holds more than one file's rows (a 100M-row dataset is ~9 GB on disk).
`python -m benchmarks.scale_data DIR THREADS` is the DuckDB contender: it runs in its own
process (so its memory is measured like regflow's) and prints one BENCH_RESULT line.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.data import INTERCEPT, NOISE_SD, SEED, TARGET, feature_names, true_coefficients
from benchmarks.measure import emit

FEATURES = 10


@dataclass(frozen=True)
class ScaleDataset:
    rows: int
    files: int
    features: int
    folder: str
    disk_bytes: int

    @property
    def names(self) -> list[str]:
        return feature_names(self.features)

    @property
    def raw_bytes(self) -> int:
        return self.rows * (self.features + 1) * 8


def _file_rows(rows: int, files: int) -> list[int]:
    base, extra = divmod(rows, files)
    return [base + (1 if i < extra else 0) for i in range(files)]


def make_file(rows: int, features: int, index: int, seed: int = SEED) -> pa.Table:
    """One file's rows: x_j ~ N(1 + 0.1j, 1 + 0.1j), y = 3 + sum(beta_j x_j) + N(0, 1)."""
    rng = np.random.default_rng([seed, features, index])
    beta = true_coefficients(features)
    y = rng.standard_normal(rows)
    y *= NOISE_SD
    y += INTERCEPT
    columns: dict[str, np.ndarray] = {}
    for j, name in enumerate(feature_names(features)):
        location = 1.0 + 0.1 * j
        column = rng.standard_normal(rows)
        column *= location
        column += location
        y += beta[j] * column
        columns[name] = column
    columns[TARGET] = y
    return pa.table(columns)


def write_scale_dataset(
    folder: Path, rows: int, files: int, features: int = FEATURES
) -> ScaleDataset:
    """F Parquet files `part-00000.parquet`... in `folder`, written one after another."""
    folder.mkdir(parents=True, exist_ok=True)
    size = 0
    for index, count in enumerate(_file_rows(rows, files)):
        path = folder / f"part-{index:05d}.parquet"
        pq.write_table(make_file(count, features, index), path)
        size += path.stat().st_size
    # On disk before anyone is timed: 9 GB of dirty pages flushed meanwhile took CPU and disk
    # from whichever contender ran first (and regflow's own writes queued behind them).
    os.sync()
    return ScaleDataset(rows, files, features, str(folder), size)


# --- the reference ------------------------------------------------------------------------


def sums_query(folder: str, names: list[str]) -> str:
    """COUNT, SUM(x), SUM(y), SUM(y*y), SUM(xi*xj) for i <= j and SUM(xi*y) in one scan."""
    terms = ["COUNT(*)", f"SUM({TARGET})", f"SUM({TARGET} * {TARGET})"]
    terms += [f"SUM({a})" for a in names]
    terms += [f"SUM({a} * {TARGET})" for a in names]
    terms += [f"SUM({a} * {b})" for i, a in enumerate(names) for b in names[i:]]
    glob = str(Path(folder) / "*.parquet").replace("'", "''")
    return f"SELECT {', '.join(terms)} FROM read_parquet('{glob}')"


def solve_sums(values: list[float], features: int) -> tuple[list[float], float]:
    """The least-squares coefficients and intercept from the sums, in float64 (centred normal
    equations: the cross-products about the means, then one solve)."""
    n, sy, _syy = values[0], values[1], values[2]
    sx = np.array(values[3 : 3 + features])
    sxy = np.array(values[3 + features : 3 + 2 * features])
    sxx = np.empty((features, features))
    at = 3 + 2 * features
    for i in range(features):
        for j in range(i, features):
            sxx[i, j] = sxx[j, i] = values[at]
            at += 1
    mean_x, mean_y = sx / n, sy / n
    cxx = sxx - n * np.outer(mean_x, mean_x)
    cxy = sxy - n * mean_x * mean_y
    coef = np.linalg.solve(cxx, cxy)
    return coef.tolist(), float(mean_y - mean_x @ coef)


def duckdb_reference(folder: str, features: int, threads: int) -> dict[str, object]:
    import duckdb

    names = feature_names(features)
    with duckdb.connect() as connection:
        connection.execute(f"SET threads = {int(threads)}")
        started = time.perf_counter()
        row = connection.execute(sums_query(folder, names)).fetchone()
        assert row is not None
        values = [float(v) for v in row]
        coef, intercept = solve_sums(values, features)
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": int(values[0]), "coef": coef, "intercept": intercept}


def main(argv: list[str]) -> int:
    folder, threads = argv[0], int(argv[1])
    features = len(pq.read_schema(next(Path(folder).glob("*.parquet"))).names) - 1
    emit(duckdb_reference(folder, features, threads))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

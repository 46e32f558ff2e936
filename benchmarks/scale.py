"""The `scale` part: `regflow train --engine dask` on a folder of Parquet files, side by side
with a DuckDB query computing the same cross-product sums over the same files.

For each size, both run as processes of their own, one after the other, against the same
files (in the page cache for both: the generator has just written them). regflow's time is
spawn to exit of the CLI (validate, gate, train, evaluate, predictions written, registered);
DuckDB's is its query plus the float64 solve, timed inside its process. Memory is polled
over each process tree (benchmarks.tree_rss). The run fits on every row (`--holdout 0`), so
its coefficients are comparable with the solution of DuckDB's sums over all rows.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.data import TARGET
from benchmarks.measure import REPO, RESULT_PREFIX
from benchmarks.report import MIB, Target, markdown_targets
from benchmarks.scale_data import ScaleDataset, write_scale_dataset
from benchmarks.tree_rss import TreeRun, run_tree

DEFAULT_ROWS = [10_000_000, 100_000_000]
ROWS_PER_FILE = 1_000_000  # 10M rows in 10 files, 100M in 100
QUICK_ROWS = [200_000]
QUICK_FILES = 8
TIMEOUT_S = 3 * 3600.0

DUCKDB = "DuckDB sums + float64 solve"
REGFLOW = "regflow train --engine dask"

# The limits (GB as 10^9 bytes).
PROCESS_RSS = 1.5e9
TOTAL_RSS = 4.0e9
VS_DUCKDB = 3.0
RATE_SLOWDOWN = 1.5
COEF_REL = 1e-6


@dataclass
class ScaleRow:
    rows: int
    files: int
    contender: str
    seconds: float | None  # regflow: spawn to exit; DuckDB: query + solve
    process_seconds: float | None  # spawn to exit, both
    rows_per_s: float | None
    ratio: float | None  # seconds / DuckDB's seconds at the same size
    coef_rel_diff: float | None  # the trained model vs DuckDB's solution (intercept included)
    ols_rel_diff: float | None  # regflow's float64 optimum vs DuckDB's solution
    max_process_rss: int | None
    total_rss: int | None
    processes: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


def files_for(rows: int) -> int:
    return max(1, round(rows / ROWS_PER_FILE))


def rel_diff(coef: list[float], intercept: float, ref: list[float], ref_intercept: float) -> float:
    """Largest |a - b| / |b| over the coefficients and the intercept."""
    pairs = [*zip(coef, ref, strict=True), (intercept, ref_intercept)]
    return max(abs(a - b) / abs(b) for a, b in pairs)


def _parse_result(run: TreeRun) -> dict[str, Any] | None:
    import json

    for line in reversed(run.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return dict(json.loads(line[len(RESULT_PREFIX) :]))
    return None


def _last_json(run: TreeRun) -> dict[str, Any] | None:
    import json

    for line in reversed(run.stdout.splitlines()):
        if line.startswith("{"):
            try:
                return dict(json.loads(line))
            except json.JSONDecodeError:
                return None
    return None


def _memory(run: TreeRun) -> dict[str, Any]:
    processes = [asdict(p) for p in run.processes]
    return {
        "max_process_rss": max((p.peak_rss for p in run.processes), default=None),
        "total_rss": run.total_peak_rss or None,
        "processes": processes,
    }


def run_duckdb(dataset: ScaleDataset, threads: int) -> tuple[ScaleRow, dict[str, Any] | None]:
    argv = [sys.executable, "-m", "benchmarks.scale_data", dataset.folder, str(threads)]
    run = run_tree(argv, cwd=str(REPO), timeout=TIMEOUT_S)
    result = _parse_result(run)
    if run.returncode != 0 or result is None:
        return _failed(dataset, DUCKDB, run.failure()), None
    if result["rows"] != dataset.rows:
        return _failed(dataset, DUCKDB, f"counted {result['rows']} rows"), None
    seconds = float(result["seconds"])
    row = ScaleRow(
        dataset.rows, dataset.files, DUCKDB, seconds, run.wall_s, dataset.rows / seconds,
        1.0, None, None, **_memory(run),
    )  # fmt: skip
    return row, result


def regflow_argv(dataset: ScaleDataset, out: Path) -> list[str]:
    regflow = str(Path(sys.executable).with_name("regflow"))
    return [
        regflow, "train", dataset.folder, "--target", TARGET, "--engine", "dask",
        "--dtype", "float64", "--holdout", "0", "--force", "--json",
        "--out", str(out), "--model", f"scale-{dataset.rows}",
    ]  # fmt: skip


def run_regflow(
    dataset: ScaleDataset,
    env: dict[str, str],
    out: Path,
    reference: dict[str, Any] | None,
    logs: Path | None = None,
) -> ScaleRow:
    run = run_tree(regflow_argv(dataset, out), env=env, cwd=str(REPO), timeout=TIMEOUT_S)
    if logs is not None:  # the run's own log: when each pass started and ended
        logs.mkdir(parents=True, exist_ok=True)
        (logs / f"scale-{dataset.rows}.log").write_text(run.stderr)
    payload = _last_json(run)
    if run.returncode != 0 or payload is None or payload.get("status") != "completed":
        status = payload.get("status") if payload else "no JSON"
        return _failed(dataset, REGFLOW, f"status {status}: {run.failure()}")
    row = ScaleRow(
        dataset.rows, dataset.files, REGFLOW, run.wall_s, run.wall_s, dataset.rows / run.wall_s,
        None, None, None, **_memory(run),
    )  # fmt: skip
    n = payload["metrics"]["all"]["n"]
    if n != dataset.rows:
        row.error = f"evaluated {n} rows of {dataset.rows}"
    if reference is not None:
        names = list(payload["features"])
        ref_coef, ref_b = reference["coef"], reference["intercept"]
        trained, ols = payload["coefficients"], payload["reference"]
        coef = [trained["weights"][k] for k in names]
        row.coef_rel_diff = rel_diff(coef, trained["intercept"], ref_coef, ref_b)
        ols_coef = [ols["weights"][k] for k in names]
        row.ols_rel_diff = rel_diff(ols_coef, ols["intercept"], ref_coef, ref_b)
        row.ratio = run.wall_s / reference["seconds"]
    return row


def _failed(dataset: ScaleDataset, contender: str, error: str) -> ScaleRow:
    return ScaleRow(
        dataset.rows, dataset.files, contender, None, None, None, None, None, None, None, None,
        error=error,
    )  # fmt: skip


def bench_scale(
    sizes: list[tuple[int, int]],
    workdir: Path,
    threads: int,
    log: Callable[[str], None],
    logs: Path | None = None,
) -> list[ScaleRow]:
    """Each (rows, files): write the files, run DuckDB then regflow, delete the files.
    regflow's log of each size goes to `logs`/scale-ROWS.log."""
    from benchmarks.server import prefect_server

    rows: list[ScaleRow] = []
    log("starting a Prefect server")
    with prefect_server() as (_api_url, env):
        env["REGFLOW_REGISTRY"] = str(workdir / "scale-registry")
        env["PREFECT_LOGGING_LEVEL"] = "INFO"  # a user's default: each run's log says when
        # One unmeasured flow run warms the server's database, as the end-to-end part does.
        run_tree([sys.executable, str(REPO / "benchmarks" / "trivial_flow.py")], env=env)
        for n, files in sizes:
            folder = workdir / f"scale-{n}x{files}"
            try:
                log(f"scale: writing {n:,} rows in {files} Parquet files to {folder}")
                dataset = write_scale_dataset(folder, n, files)
                log(f"scale {n:,}: {DUCKDB} ({threads} threads)")
                duck, reference = run_duckdb(dataset, threads)
                rows.append(duck)
                log(f"scale {n:,}: {REGFLOW}")
                rows.append(run_regflow(dataset, env, workdir / "scale-runs", reference, logs))
            finally:
                shutil.rmtree(folder, ignore_errors=True)
                shutil.rmtree(workdir / "scale-runs", ignore_errors=True)
    return rows


def _fmt(value: float | None, spec: str = ".3g") -> str:
    return "n/a" if value is None else format(value, spec)


def _mib(value: int | None) -> str:
    return _fmt(value / MIB if value else None, ".0f")


def check_targets(rows: list[ScaleRow]) -> list[Target]:
    """The issue's targets at the largest size; the rate's against the smallest."""
    mine = [r for r in rows if r.contender == REGFLOW and r.error is None]
    if not mine:
        return []
    big = max(mine, key=lambda r: r.rows)
    at = f"scale {big.rows:,} rows"
    targets = [
        Target(
            f"{at}: largest process peak RSS (MiB)",
            _mib(big.max_process_rss),
            f"<= {PROCESS_RSS / MIB:.0f} (1.5 GB)",
            big.max_process_rss is not None and big.max_process_rss <= PROCESS_RSS,
        ),
        Target(
            f"{at}: all processes' peak RSS (MiB)",
            _mib(big.total_rss),
            f"<= {TOTAL_RSS / MIB:.0f} (4 GB)",
            big.total_rss is not None and big.total_rss <= TOTAL_RSS,
        ),
        Target(
            f"{at}: regflow end to end / DuckDB query",
            _fmt(big.ratio),
            f"<= {VS_DUCKDB:g}",
            big.ratio is not None and big.ratio <= VS_DUCKDB,
        ),
        Target(
            f"{at}: trained coefficients vs DuckDB's solution (max relative)",
            _fmt(big.coef_rel_diff, ".1e"),
            f"<= {COEF_REL:g}",
            big.coef_rel_diff is not None and big.coef_rel_diff <= COEF_REL,
        ),
    ]
    small = min(mine, key=lambda r: r.rows)
    if small.rows < big.rows and small.rows_per_s and big.rows_per_s:
        slowdown = small.rows_per_s / big.rows_per_s
        targets.append(
            Target(
                f"scale rows/s at {small.rows:,} / at {big.rows:,} rows",
                _fmt(slowdown),
                f"<= {RATE_SLOWDOWN:g}",
                slowdown <= RATE_SLOWDOWN,
            )
        )
    return targets


def markdown_table(rows: list[ScaleRow]) -> str:
    lines = [
        "| rows | files | contender | time (s) | rows/s | / DuckDB | coef rel diff "
        "| float64 optimum rel diff | largest process (MiB) | all processes (MiB) |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        time = _fmt(r.seconds) if r.error is None else f"failed: {r.error[:60]}"
        ratio = "1 (baseline)" if r.contender == DUCKDB else _fmt(r.ratio)
        lines.append(
            f"| {r.rows:,} | {r.files} | {r.contender} | {time} | {_fmt(r.rows_per_s, '.3g')} "
            f"| {ratio} | {_fmt(r.coef_rel_diff, '.1e')} | {_fmt(r.ols_rel_diff, '.1e')} "
            f"| {_mib(r.max_process_rss)} | {_mib(r.total_rss)} |"
        )
    return "\n".join(lines)


def markdown_processes(rows: list[ScaleRow]) -> str:
    """Peak RSS of every process of each regflow run."""
    lines = ["| rows | process | pid | peak RSS (MiB) |", "|---:|---|---:|---:|"]
    for r in rows:
        if r.contender != REGFLOW:
            continue
        for p in r.processes:
            lines.append(f"| {r.rows:,} | {p['role']} | {p['pid']} | {_mib(p['peak_rss'])} |")
    return "\n".join(lines)


def to_json(rows: list[ScaleRow], targets: list[Target]) -> dict[str, Any]:
    return {
        "table": [asdict(r) for r in rows],
        "targets": [asdict(t) for t in targets],
        "markdown": {
            "table": markdown_table(rows),
            "processes": markdown_processes(rows),
            "targets": markdown_targets(targets),
        },
    }

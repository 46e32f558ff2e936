"""The trainer on the GPU against the CPU trainer and scikit-learn, on the same data.

    .venv/bin/python benchmarks/gpu.py [--rows 10000000 100000000] [--features 10]
        [--device auto] [--out artifacts/gpu] [--budget SECONDS] [--smoke]

For each size: one synthetic set (generated on the GPU where there is one, then copied to
the host once, since the trainer takes a pandas frame), then each contender once untimed on
the first rows (first calls pay one-off costs: CUDA context and cuBLAS handles, torch._dynamo's
import, LAPACK wrappers) and once timed on all rows. The GPU's peak memory over the timed fit
comes from torch.cuda.max_memory_allocated. The profiler then counts the trainer's copies at
two epoch counts (benchmarks/transfers.py). Everything runs in this one process: the GPU's
peak is per process anyway, and a fresh interpreter per contender would cost the time budget.
Results: results.json and results.md (a table) under --out. `--smoke` runs tiny sizes, on the
CPU too, so the CPU test suite checks the script itself.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd
import torch

from benchmarks.transfers import TransferCount, count_transfers, moved_once
from regflow.runtime.cores import cpu_model, usable_cores
from regflow.tasks.train import describe_device, fit_linear, resolve_config, select_device

TARGET = "y"
INTERCEPT = 3.0
SEED = 20240601
DEFAULT_ROWS = [10_000_000, 100_000_000]
WARM_ROWS = 100_000  # the untimed first call: big enough to reach every kernel the fit uses
PROFILE_ROWS = 1_000_000
PROFILE_EPOCHS = (10, 100)
SMOKE_ROWS = [2_000, 5_000]
SMOKE_WARM_ROWS = 256
GPU_TRAINER = "regflow fit_linear (default)"
CPU_TRAINER = "regflow fit_linear (default), cpu"
SKLEARN = "sklearn LinearRegression.fit"


def feature_names(features: int) -> list[str]:
    return [f"x{j}" for j in range(features)]


def make_frame(rows: int, features: int, device: torch.device, seed: int = SEED) -> pd.DataFrame:
    """y = 3 + sum_j (2 - 0.1 j) x_j + N(0, 1), x_j ~ N(1 + 0.1 j, (1 + 0.1 j)^2), float64.

    Drawn column by column on `device` (on a GPU, 100M x 11 values take well under a second
    where numpy takes a minute) into one host block, column-major like a pandas frame's, so
    the frame over it needs no copy.
    """
    generator = torch.Generator(device=device).manual_seed(seed)
    host = np.empty((features + 1, rows), dtype=np.float64)
    y = torch.full((rows,), INTERCEPT, dtype=torch.float64, device=device)
    y += torch.randn(rows, generator=generator, dtype=torch.float64, device=device)
    for j in range(features):
        spread = 1.0 + 0.1 * j
        x = torch.randn(rows, generator=generator, dtype=torch.float64, device=device)
        x.mul_(spread).add_(spread)
        y.add_(x, alpha=2.0 - 0.1 * j)
        torch.from_numpy(host[j]).copy_(x)
    torch.from_numpy(host[features]).copy_(y)
    return pd.DataFrame(host.T, columns=[*feature_names(features), TARGET], copy=False)


@dataclass
class Sample:
    rows: int
    features: int
    contender: str
    device: str
    seconds: float | None = None
    peak_gpu_mib: float | None = None
    epochs_run: int | None = None
    coefficients: list[float] = field(default_factory=list)
    intercept: float | None = None
    max_rel_diff_vs_cpu: float | None = None  # coefficients and intercept against the CPU trainer
    ratio_vs_sklearn: float | None = None
    note: str = ""


Fit = Callable[[pd.DataFrame], tuple[list[float], float, int | None]]


def trainer(device: torch.device, names: list[str]) -> Fit:
    config = resolve_config("default")

    def fit(frame: pd.DataFrame) -> tuple[list[float], float, int | None]:
        result = fit_linear(frame, names, TARGET, config, device)
        return [result.coefficients[n] for n in names], result.intercept, result.epochs_run

    return fit


def sklearn_fit(names: list[str]) -> Fit:
    from sklearn.linear_model import LinearRegression

    def fit(frame: pd.DataFrame) -> tuple[list[float], float, int | None]:
        model = LinearRegression().fit(frame[names], frame[TARGET])
        return [float(c) for c in model.coef_], float(model.intercept_), None

    return fit


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(
    sample: Sample, fit: Fit, frame: pd.DataFrame, warm_rows: int, device: torch.device
) -> None:
    """Warm up on the first rows, untimed; then time the fit on all rows and keep its peak."""
    fit(frame.iloc[:warm_rows])
    _sync(device)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    coefficients, intercept, epochs = fit(frame)
    _sync(device)  # fit_linear already reads its weights back; this makes the timing plain
    sample.seconds = time.perf_counter() - started
    if device.type == "cuda":
        sample.peak_gpu_mib = torch.cuda.max_memory_allocated(device) / 2**20
    sample.coefficients, sample.intercept, sample.epochs_run = coefficients, intercept, epochs


def max_rel_diff(sample: Sample, reference: Sample) -> float | None:
    if sample.intercept is None or reference.intercept is None:
        return None
    a = np.array([*sample.coefficients, sample.intercept])
    b = np.array([*reference.coefficients, reference.intercept])
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), np.finfo(np.float64).tiny)))


def run_size(
    rows: int,
    features: int,
    device: torch.device,
    warm_rows: int,
    deadline: float,
    save: Callable[[list[Sample]], None],
) -> list[Sample]:
    """Every contender on one synthetic set; `save` gets the samples after each one."""
    names = feature_names(features)
    started = time.perf_counter()
    frame = make_frame(rows, features, device)
    made = time.perf_counter() - started
    print(f"{rows:,} x {features}: data made on {device} in {made:.2f} s", flush=True)
    cpu = torch.device("cpu")
    # The device's trainer first: when the budget runs out, the slow CPU contenders go.
    contenders: list[tuple[Sample, Fit, torch.device]] = [
        (Sample(rows, features, CPU_TRAINER, "cpu"), trainer(cpu, names), cpu),
        (Sample(rows, features, SKLEARN, "cpu"), sklearn_fit(names), cpu),
    ]
    if device.type != "cpu":
        gpu = Sample(rows, features, GPU_TRAINER, str(device))
        contenders.insert(0, (gpu, trainer(device, names), device))
    samples = [s for s, _, _ in contenders]
    for sample, fit, where in contenders:
        if time.perf_counter() > deadline:
            sample.note = "skipped: over the time budget"
        else:
            timed(sample, fit, frame, warm_rows, where)
        print(f"  {sample.contender} on {sample.device}: {_fmt(sample.seconds)} s", flush=True)
        compare(samples)
        save(samples)  # a run stopped from outside still leaves what it measured
    del frame
    return samples


def compare(samples: list[Sample]) -> None:
    """Each sample against the CPU trainer (coefficients) and scikit-learn (time)."""
    cpu_fit, base = samples[-2], samples[-1]
    for sample in samples:
        sample.max_rel_diff_vs_cpu = max_rel_diff(sample, cpu_fit)
        if sample.seconds is not None and base.seconds:
            sample.ratio_vs_sklearn = sample.seconds / base.seconds


def transfers(device: torch.device, rows: int, features: int) -> list[TransferCount]:
    """The trainer's copies at few and many epochs, each preset: data moves must not grow."""
    frame = make_frame(rows, features, device, seed=SEED + 1)
    names = feature_names(features)
    count_transfers(frame.iloc[:SMOKE_WARM_ROWS], names, TARGET, "seed", 2, device)  # warm-up
    return [
        count_transfers(frame, names, TARGET, preset, epochs, device)
        for preset in ("default", "seed")
        for epochs in PROFILE_EPOCHS
    ]


def machine(device: torch.device) -> dict[str, Any]:
    gpu = None
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        gpu = {
            "name": describe_device(device),
            "memory_gib": round(props.total_memory / 2**30, 1),
            "multiprocessors": props.multi_processor_count,
            "cuda": torch.version.cuda,
        }
    return {
        "device": str(device),
        "device_name": describe_device(device),
        "gpu": gpu,
        "cpu": cpu_model(),
        "cores": usable_cores(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "sklearn": _version("scikit-learn"),
        "torch_threads": torch.get_num_threads(),
    }


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "absent"


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}g}"


def markdown(document: dict[str, Any]) -> str:
    m = document["machine"]
    lines = [
        f"Machine: {m['device_name']} ({m['device']}); CPU {m['cpu']}, {m['cores']} cores; "
        f"torch {m['torch']}, numpy {m['numpy']}, pandas {m['pandas']}, "
        f"scikit-learn {m['sklearn']}, Python {m['python']}.",
        "",
        "| rows | features | contender | device | time (s) | vs sklearn | peak GPU memory (MiB) "
        "| epochs | max rel. diff vs CPU trainer |",
        "|---:|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for s in document["samples"]:
        time_cell = _fmt(s["seconds"]) if s["seconds"] is not None else s["note"]
        lines.append(
            f"| {s['rows']:,} | {s['features']} | {s['contender']} | {s['device']} | "
            f"{time_cell} | {_fmt(s['ratio_vs_sklearn'])} | {_fmt(s['peak_gpu_mib'], 5)} | "
            f"{s['epochs_run'] if s['epochs_run'] is not None else 'n/a'} | "
            f"{_fmt(s['max_rel_diff_vs_cpu'], 2)} |"
        )
    lines += [
        "",
        "Copies made by one fit, counted by torch.profiler (early stopping off):",
        "",
        "| preset | rows | epochs | device | data-sized to/_to_copy | small to/_to_copy "
        "| memcpy HtoD | memcpy DtoH |",
        "|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    for t in document["transfers"]:
        lines.append(
            f"| {t['preset']} | {t['rows']:,} | {t['epochs']} | {t['device']} | "
            f"{t['data_moves']} | {t['small_moves']} | {t['memcpy_htod']} | {t['memcpy_dtoh']} |"
        )
    verdict = "yes" if document["data_moved_once"] else "**no**"
    lines += ["", f"Data moved to the device once, whatever the epochs: {verdict}."]
    return "\n".join(lines) + "\n"


def write(out: Path, document: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(document, indent=2) + "\n")
    (out / "results.md").write_text(markdown(document))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=None)
    parser.add_argument("--features", type=int, default=10)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    parser.add_argument("--out", type=Path, default=Path("artifacts/gpu"))
    parser.add_argument(
        "--budget", type=float, default=300.0, help="seconds; later contenders are skipped"
    )
    parser.add_argument("--profile-rows", type=int, default=None)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for the CPU tests")
    args = parser.parse_args(argv)
    if args.rows is None:
        args.rows = SMOKE_ROWS if args.smoke else DEFAULT_ROWS
    if args.profile_rows is None:
        args.profile_rows = min(args.rows) if args.smoke else PROFILE_ROWS
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = select_device(args.device)
    started = time.perf_counter()
    deadline = started + args.budget
    warm = SMOKE_WARM_ROWS if args.smoke else WARM_ROWS
    print(f"device: {device} ({describe_device(device)}); budget {args.budget:.0f} s", flush=True)
    counts = transfers(device, args.profile_rows, args.features)
    for t in counts:
        print(f"  profiler: {t}", flush=True)
    few_many = [counts[i : i + 2] for i in range(0, len(counts), 2)]
    document: dict[str, Any] = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": machine(device),
        "samples": [],
        "transfers": [asdict(t) for t in counts],
        "data_moved_once": all(moved_once(few, many) for few, many in few_many),
        "seconds": 0.0,
    }
    done: list[Sample] = []

    def save(current: list[Sample]) -> None:
        document["samples"] = [asdict(s) for s in [*done, *current]]
        document["seconds"] = time.perf_counter() - started
        write(args.out, document)

    for rows in args.rows:
        done += run_size(rows, args.features, device, warm, deadline, save)
    save([])
    table = markdown(document)
    print(table, flush=True)
    print(f"written: {args.out / 'results.json'}, {args.out / 'results.md'}", flush=True)
    return 0 if document["data_moved_once"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

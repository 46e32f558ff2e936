"""`make bench`: regflow side by side with what a user would otherwise write.

Every contender runs in its own fresh interpreter (peak RSS per process); contenders of one size
alternate within a round and swap order from round to round, so a noisy neighbour slows both
sides of a ratio alike. Results: a markdown table on stdout, JSON in benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks import report, scale
from benchmarks.data import TARGET, Dataset, mse_of, write_dataset
from benchmarks.measure import REPO, ChildRun, run_contender, run_process
from benchmarks.report import Sample

PARTS = ("train", "ingest", "e2e", "seed", "scale")
DEFAULT_PARTS = ("train", "ingest", "e2e", "seed")  # scale: 100M rows, ~9 GB of files; on demand
DEFAULT_ROWS = [1_000_000, 10_000_000]
DEFAULT_FEATURES = [1, 10]
QUICK_ROWS = [20_000, 200_000]
QUICK_FEATURES = [1, 3]
RESULTS = REPO / "benchmarks" / "results" / "latest.json"
CHILD_TIMEOUT = 600.0
TUTORIAL_ONCE_ROWS = 5_000_000

TRAIN = {
    report.TUTORIAL: "train.tutorial",
    report.REGFLOW["train"]: "train.regflow",
    report.BASELINES["train"]: "train.sklearn",
    "numpy lstsq": "train.lstsq",
}
INGEST = {
    "ingest-csv": {
        report.BASELINES["ingest-csv"]: "ingest.pandas_csv",
        report.REGFLOW["ingest-csv"]: "ingest.regflow_csv",
    },
    "ingest-parquet": {
        report.BASELINES["ingest-parquet"]: "ingest.pandas_parquet",
        report.REGFLOW["ingest-parquet"]: "ingest.regflow_parquet",
    },
}


@dataclass
class Options:
    rows: list[int]
    features: list[int]
    rounds: int
    parts: list[str]
    out: Path
    workdir: Path | None = None
    keep: bool = False
    train_rounds: int = 3
    scale_sizes: list[tuple[int, int]] = field(default_factory=list)  # (rows, files)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


_SUFFIXES = {"k": 1_000, "m": 1_000_000, "g": 1_000_000_000}


def _count(text: str) -> int:
    """1000000, 1e6 or 1M."""
    text = text.strip().lower()
    scale = _SUFFIXES.get(text[-1:], 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def _int_list(text: str) -> list[int]:
    return [_count(v) for v in text.split(",") if v.strip()]


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=_int_list, help="comma-separated row counts")
    parser.add_argument("--features", type=_int_list, help="comma-separated feature counts")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per size")
    parser.add_argument(
        "--train-rounds", type=int, help="rounds for the training part (default 3; quick 1)"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one round")
    parser.add_argument(
        "--parts", default=",".join(DEFAULT_PARTS), help=f"subset of {','.join(PARTS)}"
    )
    parser.add_argument(
        "--scale-rows", type=_int_list, help="scale part: row counts (default 10M,100M)"
    )
    parser.add_argument(
        "--scale-files", type=_int_list, help="scale part: files per size (default 1 per 1M rows)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    parser.add_argument("--workdir", type=Path, help="where data is written (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown parts: {', '.join(unknown)}")
    scale_rows = args.scale_rows or (scale.QUICK_ROWS if args.quick else scale.DEFAULT_ROWS)
    scale_files = args.scale_files or [
        scale.QUICK_FILES if args.quick else scale.files_for(n) for n in scale_rows
    ]
    if len(scale_files) != len(scale_rows):
        parser.error("--scale-files needs one count per --scale-rows size")
    return Options(
        rows=args.rows or (QUICK_ROWS if args.quick else DEFAULT_ROWS),
        features=args.features or (QUICK_FEATURES if args.quick else DEFAULT_FEATURES),
        rounds=1 if args.quick and args.rounds == 2 else max(1, args.rounds),
        parts=parts,
        # Training runs take a second or less, so they are the noisiest: one more round.
        train_rounds=max(1, args.train_rounds or (1 if args.quick else 3)),
        out=args.out,
        workdir=args.workdir,
        keep=args.keep,
        scale_sizes=list(zip(scale_rows, scale_files, strict=True)),
    )


def _order(names: list[str], round_: int) -> list[str]:
    # ABAB... in even rounds, ...BABA in odd ones: neither side always runs first.
    return names if round_ % 2 == 0 else names[::-1]


def _sample_from_child(
    part: str, dataset: Dataset, name: str, round_: int, run: ChildRun
) -> tuple[Sample, dict | None]:
    result = run.result()
    if run.returncode != 0 or result is None:
        return (
            Sample(part, dataset.rows, dataset.features, name, round_, None, None,
                   dataset.raw_bytes, error=run.failure()),
            None,
        )  # fmt: skip
    extra = {
        k: v for k, v in result.items() if k not in ("seconds", "peak_rss", "coef", "contender")
    }
    sample = Sample(
        part,
        dataset.rows,
        dataset.features,
        name,
        round_,
        float(result["seconds"]),
        int(result["peak_rss"]),
        dataset.raw_bytes,
        extra=extra,
    )
    return sample, result


def bench_training(datasets: list[Dataset], rounds: int) -> list[Sample]:
    samples: list[Sample] = []
    for dataset in datasets:
        data = np.load(dataset.npy, mmap_mode="r")  # for the MSE of each fit, in float64
        for round_ in range(rounds):
            for name in _order(list(TRAIN), round_):
                if name == report.TUTORIAL and round_ > 0 and dataset.rows >= TUTORIAL_ONCE_ROWS:
                    continue  # its 100 epochs take ~30 s there and it is far behind: once is enough
                log(f"train {dataset.rows:,}x{dataset.features} round {round_ + 1}: {name}")
                run = run_contender(
                    TRAIN[name], {"dataset": dataset.__dict__}, timeout=CHILD_TIMEOUT
                )
                sample, result = _sample_from_child("train", dataset, name, round_, run)
                if result is not None:
                    mse = mse_of(data, result["coef"], result["intercept"])
                    sample.gap = (mse - dataset.optimum_mse) / dataset.optimum_mse
                samples.append(sample)
        del data
    return samples


def bench_ingest(datasets: list[Dataset], rounds: int) -> list[Sample]:
    samples: list[Sample] = []
    for dataset in datasets:
        for part, contenders in INGEST.items():
            for round_ in range(rounds):
                for name in _order(list(contenders), round_):
                    log(f"{part} {dataset.rows:,}x{dataset.features} round {round_ + 1}: {name}")
                    run = run_contender(
                        contenders[name], {"dataset": dataset.__dict__}, timeout=CHILD_TIMEOUT
                    )
                    sample, result = _sample_from_child(part, dataset, name, round_, run)
                    if result is not None and result.get("passed") is False:
                        sample.error = "the gate stopped the synthetic data"
                    samples.append(sample)
    return samples


def _regflow_train(data: str, out: Path, model: str) -> list[str]:
    regflow = str(Path(sys.executable).with_name("regflow"))
    return [
        regflow,
        "train",
        data,
        "--target",
        TARGET,
        "--json",
        "--out",
        str(out),
        "--model",
        model,
        "--force",  # every round trains: a repeat would otherwise register nothing (unchanged)
    ]


def _process_sample(
    part: str, rows: int, features: int, raw: int, name: str, round_: int, run: ChildRun,
    check: Callable[[ChildRun], tuple[str | None, float | None]],
) -> Sample:  # fmt: skip
    error, gap = check(run)
    if run.returncode != 0 and error is None:
        error = run.failure()
    return Sample(
        part,
        rows,
        features,
        name,
        round_,
        None if error else run.wall_s,
        None if error else run.peak_rss,
        raw,
        gap=gap,
        error=error,
    )


def _check_regflow(run: ChildRun) -> tuple[str | None, float | None]:
    payload = run.last_json_line()
    if payload is None or payload.get("status") != "completed":
        status = payload.get("status") if payload else "no JSON"
        return f"status {status}: {run.failure()}", None
    gap = payload.get("metrics", {}).get("optimality_gap")
    return None, float(gap) if gap is not None else None


def _check_plain(run: ChildRun) -> tuple[str | None, float | None]:
    return (None if run.returncode == 0 else run.failure()), None


def bench_end_to_end(
    datasets: list[Dataset], rounds: int, parts: list[str], workdir: Path
) -> list[Sample]:
    """Whole processes, timed from spawn to exit: interpreter start and imports count for all."""
    from benchmarks.server import prefect_server

    samples: list[Sample] = []
    runs_dir = workdir / "runs"
    python = sys.executable
    log("starting a Prefect server")
    with prefect_server() as (api_url, env):
        log(f"Prefect server up at {api_url}")
        env["REGFLOW_REGISTRY"] = str(workdir / "registry")  # never the repository's registry
        # One unmeasured run of each warms the server's database and the file cache.
        run_process([python, str(REPO / "benchmarks" / "trivial_flow.py")], env=env)
        if "seed" in parts:
            seed = str(REPO / "data" / "seed.csv")
            contenders = {
                report.BASELINES["seed"]: [python, str(REPO / "benchmarks" / "trivial_flow.py")],
                report.REGFLOW["seed"]: _regflow_train(seed, runs_dir, "bench-seed"),
            }
            checks = {
                report.BASELINES["seed"]: _check_plain,
                report.REGFLOW["seed"]: _check_regflow,
            }
            run_process(contenders[report.REGFLOW["seed"]], env=env)  # warm-up
            for round_ in range(max(rounds, 3)):  # cheap: a few more rounds steady the median
                for name in _order(list(contenders), round_):
                    log(f"seed round {round_ + 1}: {name}")
                    run = run_process(contenders[name], env=env, timeout=CHILD_TIMEOUT)
                    samples.append(
                        _process_sample("seed", 4, 1, 4 * 2 * 8, name, round_, run, checks[name])
                    )
                    shutil.rmtree(runs_dir, ignore_errors=True)
        if "e2e" in parts:
            for dataset in datasets:
                assert dataset.csv is not None
                contenders = {
                    report.BASELINES["e2e"]: [
                        python, str(REPO / "benchmarks" / "plain_script.py"), dataset.csv, TARGET
                    ],
                    report.REGFLOW["e2e"]: _regflow_train(
                        dataset.csv, runs_dir, f"bench-{dataset.rows}x{dataset.features}"
                    ),
                }  # fmt: skip
                checks = {
                    report.BASELINES["e2e"]: _check_plain,
                    report.REGFLOW["e2e"]: _check_regflow,
                }
                for round_ in range(rounds):
                    for name in _order(list(contenders), round_):
                        log(f"e2e {dataset.rows:,}x{dataset.features} round {round_ + 1}: {name}")
                        run = run_process(contenders[name], env=env, timeout=CHILD_TIMEOUT)
                        samples.append(
                            _process_sample(
                                "e2e", dataset.rows, dataset.features, dataset.raw_bytes,
                                name, round_, run, checks[name],
                            )
                        )  # fmt: skip
                        shutil.rmtree(runs_dir, ignore_errors=True)
    log("Prefect server stopped")
    return samples


def run_benchmark(options: Options) -> dict:
    """Generate data, run the chosen parts, write the JSON; returns the JSON document."""
    started = time.perf_counter()
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="regflow-bench-"))
    needs_files = any(p in options.parts for p in ("ingest", "e2e"))
    samples: list[Sample] = []
    scale_rows: list[scale.ScaleRow] = []
    needs_arrays = any(p in options.parts for p in ("train", "ingest", "e2e"))
    try:
        datasets: list[Dataset] = []
        for n in options.rows if needs_arrays else []:
            for d in options.features:
                log(f"writing data {n:,}x{d} to {workdir}")
                datasets.append(write_dataset(workdir, n, d, files=needs_files))
        if "train" in options.parts:
            samples += bench_training(datasets, options.train_rounds)
        if "ingest" in options.parts:
            samples += bench_ingest(datasets, options.rounds)
        if "e2e" in options.parts or "seed" in options.parts:
            samples += bench_end_to_end(datasets, options.rounds, options.parts, workdir)
        if "scale" in options.parts:
            threads = report.machine()["nproc"] or 1
            scale_rows = scale.bench_scale(
                options.scale_sizes, workdir, threads, log, logs=options.out.parent
            )
    finally:
        if not options.keep and options.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    rows = report.summarise(samples)
    targets = report.check_targets(rows)
    document = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": report.machine(),
        "options": {
            "rows": options.rows,
            "features": options.features,
            "rounds": options.rounds,
            "train_rounds": options.train_rounds,
            "parts": options.parts,
            "scale_sizes": options.scale_sizes,
        },
        "total_seconds": round(time.perf_counter() - started, 1),
        **report.to_json(samples, rows, targets),
        "markdown": {
            "table": report.markdown_table(rows),
            "targets": report.markdown_targets(targets),
        },
    }
    if "scale" in options.parts:
        document["scale"] = scale.to_json(scale_rows, scale.check_targets(scale_rows))
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(document, indent=2))
    return document


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds: the Prefect server and temp data are cleaned up


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    document = run_benchmark(options)
    m = document["machine"]
    print(f"Machine: {m['nproc']} cores, {m['cpu']}, {m['memory_gib']} GiB; "
          f"total {document['total_seconds']} s\n")  # fmt: skip
    if document["samples"]:
        print(document["markdown"]["table"])
        print()
        print(document["markdown"]["targets"])
    if "scale" in document:
        for key in ("table", "processes", "targets"):
            print(f"\n{document['scale']['markdown'][key]}")
    print(f"\nJSON: {options.out}")
    failed = [s for s in document["samples"] if s["error"]]
    failed += [r for r in document.get("scale", {}).get("table", []) if r["error"]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

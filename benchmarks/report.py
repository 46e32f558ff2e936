"""Aggregate the samples into one table, check the issue's targets, describe the machine."""

from __future__ import annotations

import os
import platform
import statistics
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

MIB = 1 << 20

# Which contender each row is compared with (ratio = contender's time / baseline's time).
BASELINES = {
    "train": "sklearn LinearRegression.fit",
    "ingest-csv": "pandas.read_csv",
    "ingest-parquet": "pandas.read_parquet",
    "e2e": "plain script (read_csv + sklearn)",
    "seed": "trivial Prefect flow",
}
REGFLOW = {
    "train": "regflow fit_linear (default)",
    "ingest-csv": "regflow ingest+validate+gate",
    "ingest-parquet": "regflow ingest+validate+gate",
    "e2e": "regflow train (server running)",
    "seed": "regflow train (server running)",
}
TUTORIAL = "tutorial loop (SGD, 100 epochs)"

# The limits.
GAP_LIMIT = 1e-4
TRAIN_VS_SKLEARN = 1.0
TUTORIAL_SPEEDUP = 10.0
INGEST_CSV = 1.3
INGEST_PARQUET = 2.0
E2E = 1.5
SEED_EXTRA_S = 2.0
MEMORY = 3.0
LINEAR_SLACK = 1.2  # 12x for 10x the rows


@dataclass
class Sample:
    part: str
    rows: int
    features: int
    contender: str
    round: int
    seconds: float | None
    peak_rss: int | None
    raw_bytes: int
    gap: float | None = None  # (MSE - optimum MSE) / optimum MSE
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Row:
    part: str
    rows: int
    features: int
    contender: str
    seconds: float | None  # median over rounds
    runs: int
    ratio: float | None  # median over rounds of seconds / baseline's seconds in the same round
    gap: float | None
    peak_rss: int | None  # largest over rounds
    raw_bytes: int
    error: str | None

    @property
    def rss_over_raw(self) -> float | None:
        return self.peak_rss / self.raw_bytes if self.peak_rss and self.raw_bytes else None


@dataclass
class Target:
    name: str
    measured: str
    limit: str
    met: bool | None  # None: not measured in this run


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarise(samples: list[Sample]) -> list[Row]:
    keys = list(dict.fromkeys((s.part, s.rows, s.features, s.contender) for s in samples))
    rows: list[Row] = []
    for part, n, d, contender in keys:
        mine = [
            s
            for s in samples
            if (s.part, s.rows, s.features, s.contender) == (part, n, d, contender)
        ]
        ok = [s for s in mine if s.error is None and s.seconds is not None]
        base = {
            s.round: s.seconds
            for s in samples
            if (s.part, s.rows, s.features) == (part, n, d)
            and s.contender == BASELINES.get(part)
            and s.error is None
            and s.seconds
        }
        ratios = [s.seconds / base[s.round] for s in ok if s.round in base and s.seconds]
        gaps = [s.gap for s in ok if s.gap is not None]
        rss = [s.peak_rss for s in ok if s.peak_rss]
        errors = [s.error for s in mine if s.error]
        rows.append(
            Row(
                part=part,
                rows=n,
                features=d,
                contender=contender,
                seconds=_median([s.seconds for s in ok if s.seconds is not None]),
                runs=len(ok),
                ratio=_median(ratios),
                gap=max(gaps) if gaps else None,
                peak_rss=max(rss) if rss else None,
                raw_bytes=mine[0].raw_bytes,
                error=errors[0] if errors else None,
            )
        )
    return rows


def _find(rows: list[Row], part: str, n: int, d: int, contender: str) -> Row | None:
    for row in rows:
        if (row.part, row.rows, row.features, row.contender) == (part, n, d, contender):
            return row
    return None


def _fmt(value: float | None, spec: str = ".3g") -> str:
    return "n/a" if value is None else format(value, spec)


def check_targets(rows: list[Row]) -> list[Target]:
    """The issue's targets at the largest row count measured (linearity: smallest to largest)."""
    targets: list[Target] = []
    if not rows:
        return targets
    sizes = sorted({r.rows for r in rows if r.part != "seed"}) or [0]
    big, small = sizes[-1], sizes[0]
    features = sorted({r.features for r in rows})
    for d in features:
        mine = _find(rows, "train", big, d, REGFLOW["train"])
        if mine is not None:
            ok_gap = mine.gap is not None and mine.gap <= GAP_LIMIT
            targets.append(
                Target(
                    f"train {big:,}x{d}: regflow / sklearn, gap <= 1e-4",
                    f"{_fmt(mine.ratio)} (gap {_fmt(mine.gap, '.1e')})",
                    f"<= {TRAIN_VS_SKLEARN}",
                    mine.ratio is not None and mine.ratio <= TRAIN_VS_SKLEARN and ok_gap,
                )
            )
            tutorial = _find(rows, "train", big, d, TUTORIAL)
            if tutorial is not None and tutorial.seconds and mine.seconds:
                speedup = tutorial.seconds / mine.seconds
                targets.append(
                    Target(
                        f"train {big:,}x{d}: tutorial / regflow",
                        _fmt(speedup),
                        f">= {TUTORIAL_SPEEDUP:g}",
                        speedup >= TUTORIAL_SPEEDUP,
                    )
                )
        for part, limit in (("ingest-csv", INGEST_CSV), ("ingest-parquet", INGEST_PARQUET)):
            mine = _find(rows, part, big, d, REGFLOW[part])
            if mine is not None:
                targets.append(
                    Target(
                        f"{part} {big:,}x{d}: regflow / pandas",
                        _fmt(mine.ratio),
                        f"<= {limit:g}",
                        mine.ratio is not None and mine.ratio <= limit,
                    )
                )
        mine = _find(rows, "e2e", big, d, REGFLOW["e2e"])
        if mine is not None:
            targets.append(
                Target(
                    f"e2e {big:,}x{d}: regflow train / plain script",
                    _fmt(mine.ratio),
                    f"<= {E2E:g}",
                    mine.ratio is not None and mine.ratio <= E2E,
                )
            )
            targets.append(
                Target(
                    f"memory {big:,}x{d}: regflow train peak RSS / raw data",
                    _fmt(mine.rss_over_raw),
                    f"<= {MEMORY:g}",
                    mine.rss_over_raw is not None and mine.rss_over_raw <= MEMORY,
                )
            )
        if big > small:
            limit = LINEAR_SLACK * big / small
            for part in ("train", "ingest-csv", "ingest-parquet", "e2e"):
                a = _find(rows, part, small, d, REGFLOW[part])
                b = _find(rows, part, big, d, REGFLOW[part])
                if a is not None and b is not None and a.seconds and b.seconds:
                    growth = b.seconds / a.seconds
                    targets.append(
                        Target(
                            f"linear {part} x{d}: time {big:,} / {small:,} rows",
                            _fmt(growth),
                            f"<= {limit:g}",
                            growth <= limit,
                        )
                    )
    seed = _find(rows, "seed", 4, 1, REGFLOW["seed"])
    trivial = _find(rows, "seed", 4, 1, BASELINES["seed"])
    if seed is not None and trivial is not None and seed.seconds and trivial.seconds:
        extra = seed.seconds - trivial.seconds
        targets.append(
            Target(
                "seed 4 rows: regflow train - trivial flow (s)",
                _fmt(extra),
                f"<= {SEED_EXTRA_S:g}",
                extra <= SEED_EXTRA_S,
            )
        )
    return targets


def markdown_table(rows: list[Row]) -> str:
    lines = [
        "| part | rows | features | contender | time (s) | ratio | MSE gap | peak RSS (MiB) "
        "| RSS / raw |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratio = "1 (baseline)" if r.contender == BASELINES.get(r.part) else _fmt(r.ratio)
        time = _fmt(r.seconds) if r.error is None else f"failed: {r.error[:60]}"
        lines.append(
            f"| {r.part} | {r.rows:,} | {r.features} | {r.contender} | {time} | {ratio} "
            f"| {_fmt(r.gap, '.1e')} | {_fmt(r.peak_rss / MIB if r.peak_rss else None, '.0f')} "
            f"| {_fmt(r.rss_over_raw, '.2f')} |"
        )
    return "\n".join(lines)


def markdown_targets(targets: list[Target]) -> str:
    lines = ["| target | measured | limit | met |", "|---|---:|---:|---|"]
    for t in targets:
        met = "n/a" if t.met is None else ("yes" if t.met else "**no**")
        lines.append(f"| {t.name} | {t.measured} | {t.limit} | {met} |")
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as info:
            model = next(
                (ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")),
                model,
            )
    except OSError:
        pass
    memory = None
    try:
        with open("/proc/meminfo") as info:
            kib = next(int(ln.split()[1]) for ln in info if ln.startswith("MemTotal"))
            memory = round(kib / (1 << 20), 1)
    except (OSError, StopIteration):
        pass
    versions = {}
    for name in ("torch", "numpy", "pandas", "pyarrow", "pandera", "scikit-learn", "prefect"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "absent"
    return {
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu": model,
        "memory_gib": memory,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }


def to_json(samples: list[Sample], rows: list[Row], targets: list[Target]) -> dict[str, Any]:
    return {
        "samples": [asdict(s) for s in samples],
        "table": [{**asdict(r), "rss_over_raw": r.rss_over_raw} for r in rows],
        "targets": [asdict(t) for t in targets],
    }

"""How long `make run` takes after set-up, with Prefect's temporary server and with regflow's.

Each round uses a fresh PREFECT_HOME and registry ("first": the database is made and migrated
by the run), a fresh registry and a copy of a home whose database `make setup` migrated
("after set-up", no server running: a first `make run` after `make setup`), then repeats the
command (the repeats find the model unchanged, as a user's do). With the server it also
measures a first run after `regflow server stop`. Prints one line per timing and the medians;
docs/benchmarks.md ("First run") records them.

    .venv/bin/python benchmarks/first_run.py --rounds 2 --repeats 4
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REGFLOW = str(REPO / ".venv" / "bin" / "regflow")


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def migrated_home(root: str) -> str:
    """A Prefect home whose database is migrated, as `make setup` leaves ~/.prefect."""
    home = f"{root}/migrated-home"
    env = {**os.environ, "PREFECT_HOME": home, "DO_NOT_TRACK": "1"}
    upgrade = [str(REPO / ".venv" / "bin" / "prefect"), "server", "database", "upgrade", "-y"]
    subprocess.run(upgrade, env=env, check=True, capture_output=True)
    return home


def one_round(with_server: bool, repeats: int, template: str) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory(prefix="regflow-bench-") as root:
        env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
        env["REGFLOW_NO_SERVER"] = "0" if with_server else "1"
        make_run = ["make", "-s", "run"]
        shutil.copytree(template, f"{root}/set-up")
        env.update(PREFECT_HOME=f"{root}/set-up", REGFLOW_REGISTRY=f"{root}/registry-set-up")
        out: dict[str, list[float]] = {"after set-up": [timed(make_run, env)]}
        if with_server:
            subprocess.run([REGFLOW, "server", "stop"], env=env, check=True, capture_output=True)
        env.update(PREFECT_HOME=f"{root}/home", REGFLOW_REGISTRY=f"{root}/registry")
        out["first"] = [timed(make_run, env)]
        out["repeat"] = [timed(make_run, env) for _ in range(repeats)]
        if with_server:
            subprocess.run([REGFLOW, "server", "stop"], env=env, check=True, capture_output=True)
            out["after stop"] = [timed(make_run, env)]
            subprocess.run([REGFLOW, "server", "stop"], env=env, check=True, capture_output=True)
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args()
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="regflow-bench-home-") as root:
        template = migrated_home(root)
        for _ in range(args.rounds):  # alternate the two, so load on the machine hits both
            for with_server in (False, True):
                mode = "regflow server" if with_server else "temporary server"
                for kind, times in one_round(with_server, args.repeats, template).items():
                    results.setdefault(f"{mode}, {kind}", []).extend(times)
                    line = f"{mode}, {kind}: " + ", ".join(f"{t:.1f}" for t in times)
                    print(f"{line}  (load {os.getloadavg()[0]:.1f})", flush=True)
    print(f"\nmedians (s), {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}:")
    for name, times in results.items():
        print(f"  {name:<34} {statistics.median(times):5.1f}  (n={len(times)})")


if __name__ == "__main__":
    main()

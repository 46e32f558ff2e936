"""Prove what the Prefect UI shows for regflow runs: screenshots from a real headless Chromium.

    .venv/bin/python scripts/ui_screenshots.py [--out artifacts/screenshots] [--chromium PATH]

Starts `prefect server start` on a free loopback port with a temporary PREFECT_HOME, creates
the work pool and the deployments of deployments/prefect.yaml exactly as the README says,
runs the nightly training deployment through a process worker (twice on data/seed.csv, so the
report's key has a history, and once on random noise, which the correlation gate stops), then
opens the run, its artifacts, the deployments and the event feed in Chromium (Debian's
`chromium`; nothing is downloaded) and saves PNGs plus `summary.json`, which records for
every page whether each embedded plot was decoded by the browser (naturalWidth > 0). The
server is stopped and its home removed at the end. Registry and run folders are temporary.

Chromium is driven through the DevTools protocol over a websocket (`websockets` comes with
Prefect): the UI is a single-page app, so each page is polled until what it should show is
there before the screenshot is taken.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from regflow.deployments.local_server import PREFECT, REPO_ROOT, LocalServer, local_server
from regflow.tasks.events import GATE_STOPPED, MODEL_PROMOTED, MODEL_REGISTERED

REGFLOW_EVENTS = (MODEL_REGISTERED, MODEL_PROMOTED, GATE_STOPPED)

POOL = "regflow-process"
QUEUE = "screenshots"  # our runs only: the scheduled ones stay in the default queue
MODEL = "seed"
GATED_MODEL = "noise"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
]


# --------------------------------------------------------------------------- Chromium (CDP)


class Browser:
    """The few DevTools protocol calls needed: open a page, wait for it, screenshot it."""

    def __init__(self, executable: str, *, width: int = 1440, height: int = 1000) -> None:
        from websockets.sync.client import connect

        self.width, self.height = width, height
        self.profile = Path(tempfile.mkdtemp(prefix="regflow-chromium-"))
        self.process = subprocess.Popen(
            [executable, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and len(port_file.read_text().split()) >= 2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"{executable} did not open its DevTools port")
            time.sleep(0.2)
        port, path = port_file.read_text().split()[:2]
        self.ws = connect(f"ws://127.0.0.1:{port}{path}", max_size=None, open_timeout=30)
        self.ids = itertools.count(1)
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        self.call("Page.enable", session=True)
        self.call("Runtime.enable", session=True)
        self.resize(height)

    def call(self, method: str, params: dict[str, Any] | None = None, *, session: bool = False):
        message_id = next(self.ids)
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        self.ws.send(json.dumps(message))
        while True:  # events arrive interleaved with replies: skip them
            reply = json.loads(self.ws.recv(timeout=60))
            if reply.get("id") == message_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def evaluate(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session=True,
        )
        return result.get("result", {}).get("value")

    def resize(self, height: int) -> None:
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=True,
        )

    def open(self, url: str, ready: str, timeout: float = 60) -> bool:
        """Navigate, then poll the JS expression `ready` until it is true (or time runs out)."""
        self.resize(self.height)
        self.call("Page.navigate", {"url": url}, session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(0.5)
            with contextlib.suppress(RuntimeError):  # mid-navigation contexts go away
                if self.evaluate(f"Boolean({ready})"):
                    time.sleep(2.0)  # let transitions, fonts and the run graph's canvas settle
                    return True
        return False

    def screenshot(self, path: Path, max_height: int = 7000) -> None:
        # The UI scrolls inside its own panes, not the document: grow the viewport to the
        # tallest scrollable content so the whole page is in the picture.
        tallest = self.evaluate(
            "Math.max(document.documentElement.scrollHeight,"
            " ...[...document.querySelectorAll('*')].map(e => e.scrollHeight))"
        )
        height = min(max(int(tallest or self.height), self.height), max_height)
        if height != self.height:
            self.resize(height)
            time.sleep(2.0)  # the run graph redraws its canvas after a resize
        shot = self.call("Page.captureScreenshot", {"format": "png"}, session=True)
        path.write_bytes(base64.b64decode(shot["data"]))

    def images(self) -> list[dict[str, Any]]:
        return self.evaluate(
            "[...document.images].filter(i => i.src.startsWith('data:')).map(i => ({"
            "alt: i.alt, width: i.naturalWidth, height: i.naturalHeight,"
            " complete: i.complete, shown_width: i.getBoundingClientRect().width}))"
        )

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ws.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


@contextlib.contextmanager
def browser(executable: str) -> Iterator[Browser]:
    opened = Browser(executable)
    try:
        yield opened
    finally:
        opened.close()


# --------------------------------------------------------------------------- Prefect side


def prefect(server: LocalServer, *args: str, env: dict[str, str] | None = None) -> str:
    print("$ prefect", " ".join(args), flush=True)
    done = subprocess.run(
        [PREFECT, *args],
        cwd=REPO_ROOT,
        env=server.env(env),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"prefect {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def run_deployments(server: LocalServer, work: Path) -> dict[str, Any]:
    """Deploy as the README says, then have a process worker execute three train runs."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    prefect(server, "work-pool", "create", POOL, "--type", "process")
    prefect(server, "work-queue", "create", QUEUE, "--pool", POOL)
    prefect(server, "deploy", "--all", "--prefect-file", "deployments/prefect.yaml", "--no-prompt")

    rng = np.random.default_rng(7)
    noise = work / "noise.csv"
    pd.DataFrame({"x": rng.normal(size=40), "y": rng.normal(size=40)}).to_csv(noise, index=False)
    registry, out = work / "registry", work / "runs"

    with temporary_settings({PREFECT_API_URL: server.api_url}), get_client(sync_client=True) as c:
        nightly = c.read_deployment_by_name("train/nightly")
        outputs_to = {"registry": {"out": str(out), "registry": str(registry)}}
        gated = {"data": {"path": str(noise), "target": "y"}, "model": {"name": GATED_MODEL}}
        runs = {}
        # One run at a time: the second seed run is then a challenger to the first's champion.
        for label, params in [
            ("first", outputs_to),
            ("second", {**outputs_to, "training": {"seed": 1}}),
            ("gated", {**gated, **outputs_to}),
        ]:
            run = c.create_flow_run_from_deployment(
                nightly.id, parameters=params, work_queue_name=QUEUE
            )
            prefect(
                server,
                *("worker", "start", "--pool", POOL, "--work-queue", QUEUE),
                *("--run-once", "--limit", "1"),
                env={"REGFLOW_REGISTRY": str(registry)},
            )
            run = c.read_flow_run(run.id)
            print(f"  {label}: {run.name} ended {run.state_name}", flush=True)
            runs[label] = run
        artifacts = {
            label: {
                (a.key or a.type): str(a.id)
                for a in c.read_artifacts(
                    artifact_filter=ArtifactFilter(
                        flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])
                    )
                )
            }
            for label, run in runs.items()
        }
        deployments = {d.name: str(d.id) for d in c.read_deployments()}
    return {
        "runs": {
            label: {"id": str(r.id), "name": r.name, "state": r.state_name}
            for label, r in runs.items()
        },
        "artifacts": artifacts,
        "deployments": deployments,
    }


def text_has(*needles: str) -> str:
    checks = " && ".join(f"document.body.innerText.includes({json.dumps(n)})" for n in needles)
    return f"document.body && {checks}"


def plots_loaded(count: int) -> str:
    return (
        "[...document.images].filter(i => i.src.startsWith('data:image/png')"
        f" && i.complete && i.naturalWidth > 0).length >= {count}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "artifacts" / "screenshots")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args(argv)
    if not Path(args.chromium).exists():
        raise SystemExit(f"no Chromium at {args.chromium}: apt-get install chromium (Debian)")
    args.out.mkdir(parents=True, exist_ok=True)

    summary: dict[str, Any] = {"pages": {}}
    with (
        tempfile.TemporaryDirectory(prefix="regflow-screenshots-") as work,
        local_server(ui=True, timeout=180) as server,
    ):
        print(f"server at {server.url} (home {server.home})", flush=True)
        summary.update(run_deployments(server, Path(work)))
        first, second, gated = (summary["runs"][k] for k in ("first", "second", "gated"))
        report = summary["artifacts"]["second"][f"{MODEL}-report"]
        metrics = summary["artifacts"]["second"][f"{MODEL}-metrics"]
        gate_report = summary["artifacts"]["gated"][f"{GATED_MODEL}-report"]
        ui, v1 = f"{server.url}/v2", server.url
        # The event feed's own filter (a JSON list in the query string): regflow's events only.
        events_query = urllib.parse.urlencode({"events": json.dumps(sorted(REGFLOW_EVENTS))})
        pages = [
            ("01-deployments", f"{ui}/deployments", text_has("nightly", "hourly")),
            (
                "02-flow-run",
                f"{ui}/runs/flow-run/{second['id']}",
                text_has(second["name"], f"model:{MODEL}"),
            ),
            (
                "03-flow-run-artifacts",
                f"{ui}/runs/flow-run/{second['id']}?tab=Artifacts",
                text_has(f"{MODEL}-report", f"{MODEL}-metrics"),
            ),
            ("04-report", f"{ui}/artifacts/artifact/{report}", plots_loaded(2)),
            ("05-metrics-table", f"{ui}/artifacts/artifact/{metrics}", text_has("mse", "r2")),
            (
                "06-report-history",
                f"{ui}/artifacts/key/{MODEL}-report",
                text_has(first["name"], second["name"]),
            ),
            (
                "07-gated-run",
                f"{ui}/runs/flow-run/{gated['id']}",
                text_has(gated["name"], "WeakCorrelation"),
            ),
            ("08-gate-report", f"{ui}/artifacts/artifact/{gate_report}", text_has("stopped")),
            ("09-events", f"{ui}/events?{events_query}", text_has("regflow.model.promoted")),
            ("10-automations", f"{ui}/automations", text_has("score-seed-on-promotion")),
            ("11-report-v1-ui", f"{v1}/artifacts/artifact/{report}", plots_loaded(2)),
        ]
        with browser(args.chromium) as chrome:
            for name, url, ready in pages:
                ok = chrome.open(url, ready)
                path = args.out / f"{name}.png"
                chrome.screenshot(path)
                images = chrome.images()
                summary["pages"][name] = {"url": url, "ready": ok, "data_images": images}
                shown = sum(1 for i in images if i["width"] > 0)
                print(f"{path}: {'ready' if ok else 'NOT READY'}; {shown} data: images decoded")
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    not_ready = [n for n, p in summary["pages"].items() if not p["ready"]]
    if not_ready:
        print(f"pages that never showed what was expected: {', '.join(not_ready)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

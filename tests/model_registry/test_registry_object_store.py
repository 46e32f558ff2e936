"""The registry's files on an S3-compatible server (moto's, started on loopback) via s3fs:
register, load, verify, tampering refused, and a crash between upload and commit."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from regflow.cli import app
from regflow.registry import IntegrityError, Registry
from regflow.runtime.faults import KILL_ENV

pytestmark = pytest.mark.slow
HERE = Path(__file__).resolve().parent
BUCKET = "regflow-test"
runner = CliRunner()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3-compatible server on loopback; s3fs and subprocesses find it by env."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        import s3fs

        s3fs.S3FileSystem().mkdir(BUCKET)
        yield endpoint
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()


@pytest.fixture
def store_url(s3_endpoint: str) -> str:
    return f"s3://{BUCKET}/{uuid.uuid4().hex}/store"


def test_register_load_verify_on_s3(
    tmp_path: Path, store_url: str, run_factory: Callable[..., Path]
) -> None:
    import s3fs

    with Registry.open(tmp_path / "reg", store=store_url) as reg:
        mv = reg.register("demo", run_factory())
        assert reg.store.location == store_url
        model = reg.load("demo:1")  # every SHA-256 checked against the manifest
        assert model.ref == "demo:1" and reg.verify() == []
        files = reg.store.list_files("demo", 1)
        assert {"model.json", "model.safetensors", "manifest.json"} <= set(files)
        assert mv.size_bytes > 0
    # The objects really are in the bucket, under <prefix>/demo/1/.
    fs = s3fs.S3FileSystem()
    prefix = store_url.removeprefix("s3://")
    assert fs.exists(f"{prefix}/demo/1/model.safetensors")
    assert fs.find(f"{prefix}/.staging") == []  # nothing left in staging

    # The CLI names the store with --registry-store.
    listed = runner.invoke(
        app, ["models", "verify", "--registry", str(tmp_path / "reg"), "--registry-store",
              store_url],
    )  # fmt: skip
    assert listed.exit_code == 0, listed.output

    # A changed object is refused when loaded and reported by verify.
    fs.pipe_file(f"{prefix}/demo/1/model.safetensors", b"not the weights")
    with Registry.open(tmp_path / "reg", store=store_url) as reg:
        with pytest.raises(IntegrityError):
            reg.load("demo:1")
        problems = reg.verify()
    assert problems and "demo/1/model.safetensors" in (problems[0].file or "")


@pytest.mark.parametrize("point", ["register:staged", "register:published"])
def test_a_crash_between_upload_and_commit_leaves_nothing_visible(
    tmp_path: Path, store_url: str, point: str, run_factory: Callable[..., Path]
) -> None:
    registry = tmp_path / "reg"
    with Registry.open(registry, store=store_url) as reg:
        reg.register("demo", run_factory())
    script = (
        "import sys; sys.path[:0] = [sys.argv[1]]\n"
        "from runfolder import make_run\n"
        "from regflow.registry import Registry\n"
        "reg = Registry.open(sys.argv[2], store=sys.argv[3])\n"
        "reg.register('demo', make_run(__import__('pathlib').Path(sys.argv[4]), coef=[3.0]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(HERE), str(registry), store_url, str(tmp_path / "2")],
        env={**os.environ, KILL_ENV: point},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == -9, done.stderr[-2000:]
    with Registry.open(registry, store=store_url) as reg:
        assert [v.version for v in reg.list_versions("demo")] == [1]  # no half version
        leftovers = reg.leftovers()
        if point == "register:published":  # uploaded and copied into place, no row
            assert [p.file for p in leftovers] == ["demo/2"]
        assert reg.verify() == []  # what the index names is intact
        removed = reg.gc(staging_older_than_s=0)
        assert ("demo/2" in removed) == (point == "register:published")
        assert any(r.startswith(".staging/") for r in removed) == (point == "register:staged")
        assert reg.leftovers() == [] and reg.store.list_staging() == []
        again = reg.register("demo", run_factory())
        assert again.version == 2 and reg.verify() == []


@pytest.mark.usefixtures("prefect_harness")
def test_train_and_score_with_the_files_on_s3(tmp_path: Path, store_url: str) -> None:
    from regflow.flows.scoring import score
    from regflow.flows.training import train

    seed = HERE.parents[1] / "data" / "seed.csv"
    where = {"registry": str(tmp_path / "reg"), "registry_store": store_url}
    trained = train(data=str(seed), target="y", out=str(tmp_path / "runs"), **where)
    assert trained.model_ref == "seed:1"
    # Unchanged input is found through the same store.
    again = train(data=str(seed), target="y", out=str(tmp_path / "runs"), **where)
    assert again.status == "unchanged" and again.model_ref == "seed:1"
    scored = score(data=str(seed), model="seed@champion", out=str(tmp_path / "scores.csv"), **where)
    assert scored.model.ref == "seed:1" and scored.monitoring_recorded
    with Registry.open(where["registry"], store=store_url, create=False) as reg:
        assert reg.verify() == [] and reg.store.list_files("seed", 1)

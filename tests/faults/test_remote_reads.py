"""Remote reads retry through Prefect's task retries; bad URLs fail at once.

The data is served by a real HTTP server on loopback (a thread in the test) that answers the
first requests with 503, as a busy or restarting server would.
"""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from regflow.errors import InvalidInputError, RemoteReadError
from regflow.flows.training import train
from regflow.registry import Registry
from regflow.tasks.ingest import ingest_task, read_table

pytestmark = pytest.mark.usefixtures("prefect_harness")

SEED = (Path(__file__).resolve().parents[2] / "data" / "seed.csv").read_bytes()


@dataclass
class FlakyServer:
    url: str
    fail_first: int = 0  # answer this many requests with `status` before serving the file
    status: int = 503
    log: list[tuple[str, int]] = field(default_factory=list)  # (method path, status) served


@pytest.fixture
def server() -> Iterator[FlakyServer]:
    state = FlakyServer(url="")
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self, with_body: bool) -> None:
            with lock:
                failing = state.fail_first > 0
                state.fail_first -= failing
            status = state.status if failing else (200 if self.path == "/seed.csv" else 404)
            state.log.append((f"{self.command} {self.path}", status))
            body = SEED if status == 200 else b""
            self.send_response(status)
            self.send_header("Content-Type", "text/csv")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if with_body:
                self.wfile.write(body)

        def do_GET(self) -> None:
            self._answer(True)

        def do_HEAD(self) -> None:
            self._answer(False)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_port}"
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=10)


def _ingest_attempts(flow_run_id: object) -> int:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    (ingest,) = [r for r in runs if r.task_key.startswith("ingest") or r.name.startswith("ingest")]
    return ingest.run_count


def test_503s_are_retried_and_the_run_succeeds(server: FlakyServer, tmp_path: Path) -> None:
    # fsspec asks HEAD then GET for the size: 3 failures spoil the first attempt and the
    # second attempt's HEAD; the second attempt then succeeds (after 1 s of backoff).
    server.fail_first = 3
    registry = tmp_path / "registry"
    state = train(
        data=f"{server.url}/seed.csv",
        target="y",
        out=str(tmp_path / "runs"),
        registry=str(registry),
        return_state=True,
    )
    assert state.is_completed(), state.message
    assert [status for _, status in server.log[:3]] == [503, 503, 503]
    assert server.log[-1][1] == 200
    assert _ingest_attempts(state.state_details.flow_run_id) == 2
    outcome = state.result()
    assert outcome.model_ref == "seed:1"
    assert outcome.data_sha256 == hashlib.sha256(SEED).hexdigest()
    with Registry.open(registry) as reg:
        assert reg.verify() == []


def test_a_server_that_stays_down_ends_with_exit_1_after_the_retries(
    server: FlakyServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import regflow.flows.training as training_flow

    # The same task and retry rule, without the real backoff's 7 seconds.
    monkeypatch.setattr(
        training_flow, "ingest_task", ingest_task.with_options(retry_delay_seconds=0)
    )
    server.fail_first = 10_000
    registry = tmp_path / "registry"
    state = train(
        data=f"{server.url}/seed.csv",
        target="y",
        out=str(tmp_path / "runs"),
        registry=str(registry),
        return_state=True,
    )
    error = state.result(raise_on_failure=False)
    assert state.name == "RemoteReadFailed" and isinstance(error, RemoteReadError)
    assert error.exit_code == 1 and "HTTP 503" in str(error) and "try again later" in str(error)
    assert _ingest_attempts(state.state_details.flow_run_id) == 1 + ingest_task.retries
    assert not (registry / "index.db").exists()


def test_missing_url_is_bad_input_and_not_retried(server: FlakyServer, tmp_path: Path) -> None:
    state = train(
        data=f"{server.url}/nope.csv", target="y", out=str(tmp_path / "runs"), return_state=True
    )
    error = state.result(raise_on_failure=False)
    assert state.name == "InvalidInput" and isinstance(error, InvalidInputError)
    assert error.problems[0].check == "file_exists" and f"{server.url}/nope.csv" in str(error)
    assert _ingest_attempts(state.state_details.flow_run_id) == 1
    assert len(server.log) == 2  # one attempt: HEAD and GET


def test_forbidden_is_bad_input_and_a_refused_connection_may_pass(server: FlakyServer) -> None:
    server.fail_first, server.status = 2, 403
    with pytest.raises(InvalidInputError, match=r"HTTP 403") as info:
        read_table(f"{server.url}/seed.csv")
    assert info.value.problems[0].check == "remote_access"
    with socket.socket() as sock:  # a loopback port where nothing listens: refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(RemoteReadError) as down:
        read_table(f"http://127.0.0.1:{port}/seed.csv")
    assert down.value.retryable

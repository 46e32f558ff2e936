"""Registering with digests the caller took as it wrote its files (the dask engine's
predictions parts): a file hard-linked while stat says it is the one hashed takes its digest
unread; one changed since, or one copied, is hashed from its bytes. `verify` still reads
everything, so a digest that was wrong would show there."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
from runfolder import make_run

from regflow.io.hashing import FileDigest
from regflow.io.predictions import predictions_table, write_predictions_part
from regflow.registry import Registry
from regflow.registry.store import MANIFEST_FILE

PART = "predictions/part-00000.parquet"


def _run_with_part(root: Path) -> tuple[Path, FileDigest]:
    run = make_run(root)
    (run / "predictions").mkdir()
    y = np.linspace(0.0, 1.0, 5000)
    digest = write_predictions_part(predictions_table(y, y * 0.5, None), run / PART)
    return run, digest


def _manifest(registry: Registry, files: str) -> dict[str, str]:
    text = (Path(registry.store.location) / files / MANIFEST_FILE).read_text()
    return {entry["path"]: entry["sha256"] for entry in json.loads(text)["files"]}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_writers_digest_is_the_files_and_is_recorded(registry, tmp_path):
    run, digest = _run_with_part(tmp_path / "run")
    assert digest.sha256 == _sha256(run / PART) and digest.holds(str(run / PART))
    mv = registry.register("demo", run, link_files=True, hashed_files={PART: digest})
    assert _manifest(registry, mv.files)[PART] == digest.sha256
    assert registry.verify() == []


def test_a_digest_that_holds_is_taken_without_reading_the_file(registry, tmp_path):
    # A digest naming other bytes, under the file's true stat identity: registering trusts
    # it (it did not read the file), and verify, which reads, names the file.
    run, digest = _run_with_part(tmp_path / "run")
    other = FileDigest(hashlib.sha256(b"other").hexdigest(), digest.size, digest.identity)
    mv = registry.register("demo", run, link_files=True, hashed_files={PART: other})
    assert _manifest(registry, mv.files)[PART] == other.sha256
    problems = registry.verify()
    assert len(problems) == 1 and PART in f"{problems[0].file} {problems[0].message}"


def test_a_file_changed_after_its_digest_is_hashed_again(registry, tmp_path):
    run, digest = _run_with_part(tmp_path / "run")
    data = bytearray((run / PART).read_bytes())
    data[-100] ^= 0xFF  # same size, other bytes, other times
    (run / PART).write_bytes(bytes(data))
    os.utime(run / PART, ns=(digest.identity[3] + 10**9, digest.identity[3] + 10**9))
    assert not digest.holds(str(run / PART))
    mv = registry.register("demo", run, link_files=True, hashed_files={PART: digest})
    assert _manifest(registry, mv.files)[PART] == _sha256(run / PART) != digest.sha256
    assert registry.verify() == []


def test_digests_are_not_used_for_files_copied_in(registry, tmp_path):
    run, digest = _run_with_part(tmp_path / "run")
    other = FileDigest(hashlib.sha256(b"other").hexdigest(), digest.size, digest.identity)
    mv = registry.register("demo", run, link_files=False, hashed_files={PART: other})
    assert _manifest(registry, mv.files)[PART] == digest.sha256
    assert registry.verify() == []

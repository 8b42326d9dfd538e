"""Several processes record into one environment's history at once, as a CI job and an operator (or a
failure recorded after its lock was cleared) can: every record survives, with the local backend's files
and with the S3 backend against a real moto server. The single history document of earlier versions
is still read, before the records."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from bgtool.aws.session import Aws
from bgtool.config.schema import load_environment
from bgtool.records.history import History, Record
from bgtool.records.store import RemoteStore
from bgtool.terraform.backend import ensure_backend
from tests.helpers import copy_project, edit_yaml

REPO = Path(__file__).resolve().parents[2]
WRITERS = 6
RECORDS_EACH = 15

WRITER = """
import sys
from pathlib import Path
from bgtool.aws.session import Aws
from bgtool.config.schema import load_environment
from bgtool.records.history import History, Record

root, endpoint, name, count = Path(sys.argv[1]), sys.argv[2] or None, sys.argv[3], int(sys.argv[4])
config = load_environment(root, "local", endpoint_override=endpoint).config
history = History(root, "local", config, Aws(config))
print("ready", flush=True)
sys.stdin.readline()  # every writer starts at once
for i in range(count):
    history.append(Record("deploy", "succeeded", reason=f"{name}-{i}"))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def append_at_once(root: Path, endpoint: str = "") -> None:
    """WRITERS processes, released together, each appending RECORDS_EACH records."""
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(root), endpoint, f"w{n}", str(RECORDS_EACH)],
                              cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "BGTOOL_ACTOR": "ci"})
             for n in range(WRITERS)]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        for proc in procs:
            assert proc.wait() == 0, "a writer failed"
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def expected() -> set[str]:
    return {f"w{n}-{i}" for n in range(WRITERS) for i in range(RECORDS_EACH)}


@pytest.fixture
def local_project(tmp_path: Path) -> Path:
    root = copy_project(tmp_path)
    edit_yaml(root / "environments/local.yaml", "backend: s3", "backend: local")
    return root


def test_local_files_keep_every_record_of_concurrent_writers(local_project: Path) -> None:
    append_at_once(local_project)
    config = load_environment(local_project, "local").config
    reasons = [r.reason for r in History(local_project, "local", config, Aws(config)).read()]
    assert len(reasons) == WRITERS * RECORDS_EACH and set(reasons) == expected()
    for n in range(WRITERS):  # each writer's records in the order it wrote them
        mine = [r for r in reasons if r.startswith(f"w{n}-")]
        assert mine == [f"w{n}-{i}" for i in range(RECORDS_EACH)]


def test_the_history_document_of_earlier_versions_is_read_first(local_project: Path) -> None:
    old = local_project / ".bgtool/history/local.json"
    old.parent.mkdir(parents=True)
    old.write_text(json.dumps([{"operation": "switch", "result": "succeeded", "reason": "old-1"},
                               {"operation": "retire", "result": "succeeded", "reason": "old-2"}], indent=1))
    config = load_environment(local_project, "local").config
    history = History(local_project, "local", config, Aws(config))
    history.append(Record("deploy", "succeeded", reason="new-1"))
    assert [r.reason for r in history.read()] == ["old-1", "old-2", "new-1"]
    assert json.loads(old.read_text())[1]["reason"] == "old-2", "the old document is never rewritten"
    assert history.last("switch", "succeeded").reason == "old-1"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{server._port}"
    finally:
        server.stop()


def test_s3_keeps_every_record_of_concurrent_writers(tmp_path: Path, endpoint: str) -> None:
    root = copy_project(tmp_path)
    config = load_environment(root, "local", endpoint_override=endpoint).config
    aws = Aws(config)
    ensure_backend(config, aws)
    store = RemoteStore("local", config, aws)
    legacy = [{"operation": "switch", "result": "succeeded", "reason": "old-1"}]
    aws.client("s3").put_object(Bucket=store.bucket, Key=store.key, Body=json.dumps(legacy).encode())

    append_at_once(root, endpoint)

    reasons = [r.reason for r in History(root, "local", config, aws).read()]
    assert reasons[0] == "old-1" and len(reasons) == 1 + WRITERS * RECORDS_EACH
    assert set(reasons[1:]) == expected()
    keys = [o["Key"] for o in aws.client("s3").list_objects_v2(Bucket=store.bucket, Prefix=store.records)["Contents"]]
    assert len(keys) == WRITERS * RECORDS_EACH
    assert all(k.startswith(f"{config.state.key_prefix}/local/history/") and k.endswith(".json") for k in keys)

"""`bgtool unlock ENV` with the local backend: Terraform's lock files and bgtool's operation lock.

The Terraform lock files are written exactly as Terraform 1.11 writes them, and "held by a running
process" is a real fcntl lock taken by a child process, as Terraform takes it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bgtool.cli.app import main
from bgtool.config.schema import load_environment
from bgtool.records.lock import HeldLock, LockInfo, clear_verdict, operation_alive
from bgtool.render.templates import state_path
from bgtool.terraform.events import Diagnostic
from bgtool.terraform.statelocks import (
    StateLock,
    held_by_process,
    is_own_lost_lock,
    lock_conflict,
    lock_info_path,
    parse_created,
    terraform_running_in,
)
from tests.helpers import copy_project

ENV = "lk"
TF_INFO = {"ID": "39ee4018-412a-750d-4d6c-4656033b4994", "Operation": "OperationTypeApply", "Info": "",
           "Who": "root@ci-runner", "Version": "1.11.4", "Created": "2026-11-26T16:32:08.525338451Z", "Path": ""}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = copy_project(tmp_path / "project")
    text = (root / "environments/local.yaml").read_text().replace("backend: s3", "backend: local", 1)
    (root / f"environments/{ENV}.yaml").write_text(text)
    monkeypatch.setenv("BGTOOL_ROOT", str(root))
    return root


def plant_terraform_lock(root: Path, layer: str, **changes: str) -> Path:
    """The state file and the lock info file a killed `terraform apply` leaves (local backend)."""
    state = state_path(root, ENV, layer)
    state.parent.mkdir(parents=True, exist_ok=True)
    state.touch()
    info = lock_info_path(state)
    info.write_text(json.dumps({**TF_INFO, "Path": str(state), **changes}))
    return info


def plant_operation_lock(root: Path, **changes: object) -> Path:
    path = root / ".bgtool/locks" / f"{ENV}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    info = {"owner": "ci", "operation": "switch", "since": "2026-11-26T15:00:00+00:00", "host": "runner-7",
            "pid": 4242, **changes}
    path.write_text(json.dumps(info))
    return path


@pytest.fixture
def holder(project: Path) -> Iterator[subprocess.Popen[str]]:
    """A process holding Terraform's fcntl lock on the green layer's state, as a running apply does."""
    state = state_path(project, ENV, "green")
    state.parent.mkdir(parents=True, exist_ok=True)
    state.touch()
    code = ("import fcntl, os, sys, time\nfd = os.open(sys.argv[1], os.O_RDWR)\nfcntl.lockf(fd, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\ntime.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(state)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def unlock(capsys: pytest.CaptureFixture[str], *flags: str) -> tuple[int, dict, str]:
    code = main(["unlock", ENV, "--json", *flags])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def test_nothing_locked(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc, err = unlock(capsys)
    assert code == 0 and doc == {"ok": True, "env": ENV, "locks": []}
    assert f"{ENV} is not locked" in err


def test_without_terminal_or_yes_nothing_is_cleared(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    operation, terraform = plant_operation_lock(project), plant_terraform_lock(project, "base")
    code, doc, err = unlock(capsys)
    assert code == 1 and doc["ok"] is False and doc["error"]["kind"] == "refused"
    assert [lock["kind"] for lock in doc["error"]["locks"]] == ["operation", "terraform"]
    assert operation.exists() and terraform.exists()
    # each lock was shown with its holder and age before the refusal
    assert "switch by ci on runner-7 (pid 4242)" in err
    assert "terraform apply by root@ci-runner" in err and "layer 'base'" in err and " old" in err


def test_yes_clears_every_stale_lock(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    operation = plant_operation_lock(project)
    terraform = [plant_terraform_lock(project, layer) for layer in ("base", "traffic")]
    code, doc, _ = unlock(capsys, "--yes")
    assert code == 0 and doc["ok"] is True
    assert [(lock["kind"], lock["layer"], lock["cleared"]) for lock in doc["locks"]] == [
        ("operation", None, True), ("terraform", "base", True), ("terraform", "traffic", True)]
    base = doc["locks"][1]
    assert base["id"] == TF_INFO["ID"] and base["who"] == "root@ci-runner" and base["alive"] is False
    operation_lock = doc["locks"][0]  # another machine's, days old
    assert operation_lock["alive"] is None and "stale" in operation_lock["cleared_because"]
    assert "lock.stale_after_minutes (120 min)" in operation_lock["cleared_because"]
    assert base["cleared_because"] == "its process is gone" and base["left_because"] is None
    assert base["age_seconds"] > 0
    assert not operation.exists() and not any(p.exists() for p in terraform)
    assert all(state_path(project, ENV, layer).exists() for layer in ("base", "traffic")), "state is untouched"
    assert unlock(capsys)[1]["locks"] == []


def test_a_lock_held_by_a_running_terraform_is_left(project: Path, holder: subprocess.Popen[str],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    info = plant_terraform_lock(project, "green")
    code, doc, err = unlock(capsys, "--yes")
    assert code == 1 and doc["ok"] is False
    [lock] = doc["locks"]
    assert lock["alive"] is True and lock["cleared"] is False and "still running" in lock["left_because"]
    assert info.exists() and "still held by a running process" in err
    holder.kill()
    holder.wait()
    code, doc, _ = unlock(capsys, "--yes")
    assert code == 0 and not info.exists()


def test_a_running_operation_on_this_machine_is_left(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    since = datetime.now(UTC).isoformat(timespec="seconds")
    path = plant_operation_lock(project, host=socket.gethostname(), pid=os.getpid(), since=since)
    code, doc, _ = unlock(capsys, "--yes")
    assert code == 1 and doc["locks"][0]["alive"] is True and doc["locks"][0]["cleared"] is False
    assert path.exists()


def test_a_dead_operation_on_this_machine_is_cleared(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    path = plant_operation_lock(project, host=socket.gethostname(), pid=int(done.stdout))
    code, doc, _ = unlock(capsys, "--yes")
    assert code == 0 and doc["locks"][0]["alive"] is False and not path.exists()


def test_a_reused_pid_is_not_the_holder() -> None:
    """The lock was taken long before this process started: the pid now belongs to someone else."""
    old = (datetime.now(UTC) - timedelta(days=400)).isoformat(timespec="seconds")
    assert operation_alive(LockInfo("ci", "switch", old, socket.gethostname(), os.getpid())) is False
    now = datetime.now(UTC).isoformat(timespec="seconds")
    assert operation_alive(LockInfo("ci", "switch", now, socket.gethostname(), os.getpid())) is True
    assert operation_alive(LockInfo("ci", "switch", now, "another-host", os.getpid())) is None


def test_a_lock_taken_again_after_it_was_shown_is_left(project: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Between showing and clearing, another run replaced the leftover lock file: that one is not removed."""
    from bgtool.cli import operate

    info = plant_terraform_lock(project, "base")
    real = operate.clear_lock

    def racing_clear(*args: object) -> None:
        info.write_text(json.dumps({**TF_INFO, "ID": "another-run"}))
        real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(operate, "clear_lock", racing_clear)
    code, doc, _ = unlock(capsys, "--yes")
    assert code == 1 and "changed after it was shown" in doc["locks"][0]["left_because"]
    assert json.loads(info.read_text())["ID"] == "another-run"


def test_held_by_process_sees_fcntl_locks(project: Path, holder: subprocess.Popen[str]) -> None:
    assert held_by_process(state_path(project, ENV, "green")) is True
    assert held_by_process(state_path(project, ENV, "blue")) is False  # no state file at all


def test_lock_info_path_is_terraforms() -> None:
    assert lock_info_path(Path("/s/base.tfstate")) == Path("/s/.base.tfstate.lock.info")
    assert lock_info_path(Path("/s/terraform.tfstate")) == Path("/s/.terraform.tfstate.lock.info")


def test_created_times_as_terraform_writes_them() -> None:
    expected = datetime(2026, 11, 26, 16, 32, 8, 525338, tzinfo=UTC)
    assert parse_created("2026-11-26T16:32:08.525338451Z") == expected  # the JSON record
    assert parse_created("2026-11-26 16:32:08.525338451 +0000 UTC") == expected  # the error message
    assert parse_created("yesterday") is None


def test_age_and_description() -> None:
    lock = StateLock("base", "s3", "dynamodb table t, LockID b/k", dict(TF_INFO), json.dumps(TF_INFO))
    at = datetime(2026, 11, 26, 17, 32, 8, 525338, tzinfo=UTC)
    assert lock.age_seconds(at) == 3600
    assert lock.describe() == ("terraform apply by root@ci-runner since 2026-11-26T16:32:08.525338451Z "
                               f"(lock ID {TF_INFO['ID']})")
    damaged = StateLock("base", "s3", "x", {"ID": "", "Info": "{"}, "{")
    assert damaged.age_seconds() is None and "an operation" in damaged.describe()


def test_lock_conflict_reads_terraforms_diagnostic() -> None:
    detail = ("Error message: resource temporarily unavailable\nLock Info:\n  ID:        39ee\n  Path:      /s/b\n"
              "  Operation: OperationTypePlan\n  Who:       root@vm\n  Version:   1.11.4\n"
              "  Created:   2026-11-26 16:32:08.525338451 +0000 UTC\n  Info:      \n\n\nTerraform acquires ...")
    holder = lock_conflict([Diagnostic("warning", "x"), Diagnostic("error", "Error acquiring the state lock", detail)])
    assert holder is not None
    assert holder["ID"] == "39ee" and holder["Who"] == "root@vm" and holder["Operation"] == "OperationTypePlan"
    assert lock_conflict([Diagnostic("error", "Invalid reference", "Lock Info:\n  ID: x")]) is None


def test_dynamodb_lock_ids_are_terraforms(project: Path) -> None:
    from bgtool.terraform.statelocks import dynamodb_lock_id

    config = load_environment(project, "local").config
    assert dynamodb_lock_id(config, "local", "base") == (
        f"{config.state.bucket}/{config.state.key_prefix}/local/base.tfstate")


class FakeDynamoDB:
    """The two calls the S3 backend's locks need, with DynamoDB's semantics for them."""

    def __init__(self, items: dict[str, str]) -> None:
        self.items = items

    def batch_get_item(self, RequestItems: dict) -> dict:
        [(table, request)] = RequestItems.items()
        keys = [k["LockID"]["S"] for k in request["Keys"]]
        return {"Responses": {table: [{"LockID": {"S": k}, "Info": {"S": self.items[k]}}
                                      for k in keys if k in self.items]}}

    def delete_item(self, TableName: str, Key: dict, ConditionExpression: str,
                    ExpressionAttributeValues: dict) -> None:
        from botocore.exceptions import ClientError

        lock_id = Key["LockID"]["S"]
        assert ConditionExpression == "Info = :info"
        if self.items.get(lock_id) != ExpressionAttributeValues[":info"]["S"]:
            raise ClientError({"Error": {"Code": "ConditionalCheckFailedException"}}, "DeleteItem")
        del self.items[lock_id]


class FakeAws:
    def __init__(self, dynamodb: FakeDynamoDB) -> None:
        self.dynamodb = dynamodb

    def client(self, service: str) -> FakeDynamoDB:
        assert service == "dynamodb"
        return self.dynamodb


def test_dynamodb_locks_are_found_and_cleared_like_force_unlock(project: Path) -> None:
    from bgtool.terraform.statelocks import clear_state_lock, dynamodb_lock_id, find_state_locks

    config = load_environment(project, "local").config
    base, green = (dynamodb_lock_id(config, "local", layer) for layer in ("base", "green"))
    info = json.dumps(TF_INFO)
    table = FakeDynamoDB({base: info, f"{base}-md5": "digest", green: json.dumps({**TF_INFO, "ID": "g"})})
    aws = FakeAws(table)
    locks = find_state_locks(project, "local", config, aws)  # type: ignore[arg-type]
    assert [(lock.layer, lock.lock_id, lock.held) for lock in locks] == [("base", TF_INFO["ID"], None),
                                                                         ("green", "g", None)]
    clear_state_lock(locks[0], config, aws)  # type: ignore[arg-type]
    assert set(table.items) == {f"{base}-md5", green}, "only that lock item; the state digest stays"
    table.items[green] = json.dumps({**TF_INFO, "ID": "taken-again"})
    with pytest.raises(Exception, match="changed after it was shown"):
        clear_state_lock(locks[1], config, aws)  # type: ignore[arg-type]
    assert green in table.items


def _holder(created: datetime, who: str = "ops@host", operation: str = "OperationTypePlan") -> dict[str, str]:
    return {"ID": "x", "Who": who, "Operation": operation,
            "Created": created.strftime("%Y-%m-%d %H:%M:%S.%f000 +0000 UTC")}


def test_only_a_lock_of_this_machine_this_operation_and_this_run_is_the_runs_own() -> None:
    started = datetime(2026, 11, 26, 19, 20, 50, tzinfo=UTC)
    ended = started + timedelta(seconds=4)
    inside = started + timedelta(seconds=1)
    own = {"command": "plan", "started": started, "ended": ended, "who": "ops@host"}
    assert is_own_lost_lock(_holder(inside), **own)
    assert not is_own_lost_lock(_holder(inside, who="ops@elsewhere"), **own)
    assert not is_own_lost_lock(_holder(inside, operation="OperationTypeApply"), **own)
    assert not is_own_lost_lock(_holder(started - timedelta(milliseconds=1)), **own)  # older than the run
    assert not is_own_lost_lock(_holder(ended + timedelta(milliseconds=1)), **own)  # taken after it ended
    assert not is_own_lost_lock({**_holder(inside), "Created": "?"}, **own)


def test_a_running_terraform_on_the_same_state_is_seen(tmp_path: Path) -> None:
    """A process named terraform whose working directory has the same backend.tf: another run on this state."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin/terraform").symlink_to(sys.executable)
    same, other = tmp_path / "same", tmp_path / "other"
    for directory, key in ((same, "a"), (other, "b")):
        directory.mkdir()
        (directory / "backend.tf").write_text(f'terraform {{ backend "s3" {{ key = "{key}" }} }}\n')
    backend = (same / "backend.tf").read_text()
    assert terraform_running_in(backend) is False
    proc = subprocess.Popen([str(tmp_path / "bin/terraform"), "-c", "import time; time.sleep(60)"], cwd=other)
    try:
        assert terraform_running_in(backend) is False  # another state
    finally:
        proc.kill()
        proc.wait()
    proc = subprocess.Popen([str(tmp_path / "bin/terraform"), "-c", "import time; time.sleep(60)"], cwd=same)
    try:
        deadline = time.monotonic() + 10  # seen at once; the bound only spares a loaded machine
        while terraform_running_in(backend) is not True and time.monotonic() < deadline:
            time.sleep(0.1)
        assert terraform_running_in(backend) is True
    finally:
        proc.kill()
        proc.wait()


def test_a_recent_lock_of_another_machine_is_cleared_only_with_force(project: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A CI job in progress elsewhere: its holder cannot be seen from here, so --yes alone leaves it."""
    since = (datetime.now(UTC) - timedelta(minutes=5)).isoformat(timespec="seconds")
    path = plant_operation_lock(project, since=since)
    code, doc, err = unlock(capsys, "--yes")
    [lock] = doc["locks"]
    assert code == 1 and lock["alive"] is None and lock["cleared"] is False and path.exists()
    assert "cannot be seen from here" in lock["left_because"] and "--force" in lock["left_because"]
    assert "lock.stale_after_minutes (120 min)" in lock["left_because"]
    assert "left" in err and "--force" in err
    code, doc, err = unlock(capsys, "--yes", "--force")
    [lock] = doc["locks"]
    assert code == 0 and lock["cleared"] is True and not path.exists()
    assert lock["cleared_because"].startswith("forced (--force)") and "forced (--force)" in err


def test_an_empty_operation_lock_file_is_shown_and_cleared(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A crash between creating the lock file and writing it (earlier versions): shown, never a crash."""
    path = project / ".bgtool/locks" / f"{ENV}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")
    code, doc, err = unlock(capsys, "--yes")  # just written: it might still be being written
    assert code == 1 and doc["locks"][0]["alive"] is None and path.exists()
    assert "empty or unreadable" in err
    written = time.time() - 300
    os.utime(path, (written, written))
    code, doc, _ = unlock(capsys, "--yes")
    [lock] = doc["locks"]
    assert code == 0 and lock["alive"] is False and lock["cleared"] is True and not path.exists()
    assert lock["operation"].startswith("an unknown operation") and lock["age_seconds"] > 250


def _held(alive: bool | None, age: float | None) -> HeldLock:
    info = LockInfo("ci", "switch", "2026-11-26T15:00:00+00:00", "runner-7", 1)
    return HeldLock("operation", None, info.describe(), age, alive, info)


@pytest.mark.parametrize(("alive", "age", "force", "clear", "why"), [
    (True, 10_000.0, True, False, "still running"),  # never, whatever the age or --force
    (False, 1.0, False, True, "gone"),
    (None, 121 * 60.0, False, True, "stale"),
    (None, 119 * 60.0, False, False, "cannot be seen from here"),
    (None, None, False, False, "unknown age"),
    (None, 119 * 60.0, True, True, "--force"),
    (None, None, True, True, "--force"),
])
def test_which_locks_unlock_may_clear(alive: bool | None, age: float | None, force: bool, clear: bool,
                                      why: str) -> None:
    verdict = clear_verdict(_held(alive, age), 120, force=force)
    assert verdict.clear is clear and why in verdict.why

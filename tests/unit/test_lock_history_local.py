"""The operation lock and the history with the local backend (files under .bgtool/)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bgtool.aws.session import Aws
from bgtool.config.schema import load_environment
from bgtool.records.history import History, Record
from bgtool.records.lock import LockHeld, LockLost, OperationLock
from tests.helpers import copy_project, edit_yaml


@pytest.fixture
def parts(tmp_path: Path) -> tuple[Path, OperationLock, History]:
    root = copy_project(tmp_path)
    edit_yaml(root / "environments/local.yaml", "backend: s3", "backend: local")
    config = load_environment(root, "local").config
    aws = Aws(config)
    return root, OperationLock(root, "local", config, aws), History(root, "local", config, aws)


def test_second_holder_is_refused_with_the_first_named(parts, monkeypatch: pytest.MonkeyPatch) -> None:
    _, lock, _ = parts
    monkeypatch.setenv("BGTOOL_ACTOR", "alice")
    with lock.held("switch") as info:
        assert lock.current() == info
        with pytest.raises(LockHeld) as refused:
            lock.acquire("deploy")
        assert "switch by alice" in refused.value.message and "bgtool unlock local" in str(refused.value)
    assert lock.current() is None


def test_release_never_drops_someone_elses_lock(parts) -> None:
    _, lock, _ = parts
    mine = lock.acquire("switch")
    lock.release()  # what `bgtool unlock` does
    theirs = lock.acquire("rollback")
    lock.release(mine)
    assert lock.current() == theirs


def test_history_appends_records_with_actor(parts, monkeypatch: pytest.MonkeyPatch) -> None:
    root, _, history = parts
    monkeypatch.delenv("BGTOOL_ACTOR", raising=False)
    monkeypatch.setenv("GITHUB_ACTOR", "octocat")
    history.append(Record("deploy", "succeeded", to_color="green", versions={"green": "1.1.0"}))
    history.append(Record("switch", "rolled-back", "blue", "green", reason="alarm x in ALARM"))
    records = history.read()
    assert [r.operation for r in records] == ["deploy", "switch"]
    assert records[0].actor == "octocat (ci)"
    assert history.last("switch").reason == "alarm x in ALARM"
    assert history.last("switch", "succeeded") is None
    assert len(list((root / ".bgtool/history/local").glob("*.json"))) == 2, "one file per record"


def test_a_run_that_holds_the_lock_joins_it_and_another_holder_is_still_refused(parts) -> None:
    """`apply` runs a switch and a deploy under its own lock: they join it instead of waiting for themselves."""
    _, lock, _ = parts
    with lock.held("apply local") as outer:
        with lock.held("switch blue -> green") as inner:
            assert inner == outer and lock.current() == outer
        assert lock.current() == outer, "the inner operation does not release the run's lock"
        with pytest.raises(LockHeld):
            lock.acquire("deploy")  # anyone taking the lock (not joining it) is still refused
    assert lock.current() is None


def test_joining_a_lock_that_was_cleared_meanwhile_stops_the_run(parts) -> None:
    _, lock, _ = parts
    with lock.held("apply local"):
        lock.release()  # `bgtool unlock --force` from elsewhere
        with pytest.raises(LockLost, match="was cleared while it ran"), lock.held("switch blue -> green"):
            pytest.fail("nothing may run under a lock this run no longer holds")


def test_an_empty_lock_file_is_a_lock_named_as_damaged_not_a_busy_loop(parts, monkeypatch: pytest.MonkeyPatch) -> None:
    """Left by a crash between creating and writing it (as earlier versions could): shown, refused, clearable."""
    root, lock, _ = parts
    path = root / ".bgtool/locks/local.json"
    path.parent.mkdir(parents=True)
    path.write_text("")
    attempts: list[str] = []
    create = lock.store.create_lock

    def counted(text: str) -> bool:
        attempts.append(text)
        assert len(attempts) < 3, "acquire retries a lock it cannot read for ever"
        return create(text)

    monkeypatch.setattr(lock.store, "create_lock", counted)
    with pytest.raises(LockHeld) as refused:
        lock.acquire("deploy")
    assert "empty or unreadable" in refused.value.message and "bgtool unlock local" in str(refused.value)
    damaged = lock.current()
    assert damaged is not None and damaged.damaged and damaged.age_seconds() is not None
    lock.release(damaged)  # what unlock does with the lock it showed
    assert lock.current() is None and not path.exists()


def test_the_lock_file_appears_with_its_content(parts) -> None:
    root, lock, _ = parts
    info = lock.acquire("switch")
    assert json.loads((root / ".bgtool/locks/local.json").read_text())["operation"] == "switch"
    assert [p.name for p in (root / ".bgtool/locks").iterdir()] == ["local.json"], "no temporary file left"
    lock.release(info)

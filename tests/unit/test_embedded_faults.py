"""Fault files and `bgtool local fault`: what is written, what is refused, what the processes read."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bgtool.cli.app import main
from bgtool.embedded.faults import (
    Fault,
    FaultWatcher,
    clear_fault,
    fault_file,
    load_fault,
    read_faults,
    write_fault,
)
from bgtool.errors import BgtoolError
from tests.helpers import copy_project


def test_write_read_clear(tmp_path: Path) -> None:
    path = write_fault(tmp_path, "local", "green", Fault(errors_pct=25, latency_seconds=0.5))
    assert path == tmp_path / "dataplane" / "faults" / "local" / "green.json"
    write_fault(tmp_path, "staging", "blue", Fault(down=True))
    write_fault(tmp_path, "local", "blue", Fault())  # inactive: not listed
    assert read_faults(tmp_path) == {("local", "green"): Fault(25, 0.5, False), ("staging", "blue"): Fault(down=True)}
    assert clear_fault(tmp_path, "local", "green") is True
    assert clear_fault(tmp_path, "local", "green") is False
    assert list(read_faults(tmp_path)) == [("staging", "blue")]
    assert not list(path.parent.glob(".*.tmp"))  # the atomic write leaves no temp file behind


@pytest.mark.parametrize(("fault", "message"), [
    (Fault(errors_pct=101), "errors_pct 101: allowed 0..100"),
    (Fault(errors_pct=-1), "errors_pct -1: allowed 0..100"),
    (Fault(latency_seconds=61), "latency_seconds 61: allowed 0..60"),
    (Fault(latency_seconds=float("inf")), "latency_seconds inf"),
])
def test_out_of_range_faults_are_refused_and_nothing_is_written(tmp_path: Path, fault: Fault, message: str) -> None:
    with pytest.raises(BgtoolError, match=message):
        write_fault(tmp_path, "local", "green", fault)
    assert not fault_file(tmp_path, "local", "green").exists()


@pytest.mark.parametrize(("text", "problem"), [
    ("{oops", "not JSON"),
    ("[1, 2]", "expected an object"),
    ('{"errors_pct": 5, "colour": 1}', "unknown keys colour"),
    ('{"errors_pct": "lots"}', "errors_pct 'lots': allowed 0..100"),
    ('{"down": "yes"}', "down 'yes': allowed true or false"),
])
def test_a_malformed_file_names_itself_and_how_to_clear_it(tmp_path: Path, text: str, problem: str) -> None:
    path = fault_file(tmp_path, "local", "green")
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(BgtoolError, match=problem) as caught:
        load_fault(path)
    assert str(path) in caught.value.message
    assert caught.value.hint == "Run `bgtool local fault green --env local --clear` to remove it."


def test_the_watcher_rereads_only_a_changed_file_and_survives_a_bad_one(tmp_path: Path) -> None:
    path = fault_file(tmp_path, "local", "blue")
    watcher = FaultWatcher(path)
    assert watcher.current() == Fault()
    write_fault(tmp_path, "local", "blue", Fault(errors_pct=50))
    assert watcher.current() == Fault(errors_pct=50)
    path.write_text("garbage")
    os.utime(path, ns=(1, 1))  # even a same-second rewrite differs in size or inode
    assert watcher.current() == Fault() and watcher.error and "not JSON" in watcher.error
    clear_fault(tmp_path, "local", "blue")
    assert watcher.current() == Fault() and watcher.error is None
    assert FaultWatcher(None).current() == Fault()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy_project(tmp_path)
    monkeypatch.setenv("BGTOOL_ROOT", str(tmp_path))
    return tmp_path


def fault_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict, str]:
    code = main(["local", "fault", *args])
    out = capsys.readouterr()
    return code, (json.loads(out.out) if out.out.strip() else {}), out.err


def test_the_command_sets_shows_and_clears(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc, err = fault_cli(capsys, "green", "--errors", "40", "--latency", "1.5", "--json")
    assert code == 0
    assert doc["active"] is True and doc["errors_pct"] == 40 and doc["latency_seconds"] == 1.5
    assert "40% of requests answer 500, +1.5s latency" in err
    assert load_fault(fault_file(project / ".bgtool", "local", "green")) == Fault(40, 1.5, False)
    code, doc, _ = fault_cli(capsys, "green", "--down", "--json")  # a new fault replaces the old one
    assert (code, doc["down"], doc["errors_pct"]) == (0, True, 0)
    code, doc, err = fault_cli(capsys, "green")  # no option: show
    assert code == 0 and "down (connections closed without an answer)" in err
    code, doc, err = fault_cli(capsys, "green", "--clear", "--json")
    assert (code, doc["active"]) == (0, False) and "fault cleared" in err
    assert read_faults(project / ".bgtool") == {}


@pytest.mark.parametrize(("args", "message"), [
    (["green", "--errors", "150"], "--errors 150.0: allowed 0..100"),
    (["green", "--latency", "-2"], "--latency -2.0: allowed 0..60"),
    (["blue", "--errors", "5", "--clear"], "--clear cannot be combined"),
    (["blue", "--env", "nowhere", "--down"], "environments/nowhere.yaml does not exist"),
])
def test_bad_input_exits_1_and_changes_nothing(project: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                               message: str) -> None:
    write_fault(project / ".bgtool", "local", "blue", Fault(errors_pct=10))
    code, _, err = fault_cli(capsys, *args)
    assert code == 1
    assert message in err and "Nothing was changed" in err
    assert read_faults(project / ".bgtool") == {("local", "blue"): Fault(errors_pct=10)}


def test_usage_errors_exit_3(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert fault_cli(capsys, "purple", "--down")[0] == 3
    assert fault_cli(capsys, "green", "--errors", "many")[0] == 3

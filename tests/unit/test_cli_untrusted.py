"""Text bgtool did not write (history records, a version on the command line) is shown, never obeyed.

Driven in-process through main(argv) with the local backend (history and lock are files under
.bgtool/), so what a person sees is what rich really prints.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bgtool.cli.app import main
from bgtool.errors import BgtoolError, UsageError
from bgtool.records.history import History, Record
from bgtool.records.lock import OperationLock
from bgtool.release import deploy as deploy_module
from bgtool.terraform.workspace import Workspace
from tests.helpers import copy_project, edit_yaml

MARKUP = "[/x] and [bold]loud[/bold] [red]"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = copy_project(tmp_path / "project")
    edit_yaml(root / "environments/local.yaml", "backend: s3", "backend: local")
    monkeypatch.setenv("BGTOOL_ROOT", str(root))
    monkeypatch.setenv("BGTOOL_AWS_ENDPOINT", "http://127.0.0.1:1")
    monkeypatch.setenv("COLUMNS", "400")
    return root


def history(root: Path) -> History:
    return History.of(Workspace(root, "local"))


def test_history_shows_markup_in_records_literally(project: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("BGTOOL_ACTOR", "mallory [/x]")
    history(project).append(Record("deploy", "failed", to_color="green", versions={"after": "[bold]1.0"},
                                   reason=MARKUP))
    code = main(["history", "local"])
    err = capsys.readouterr().err
    assert code == 0, err
    flat = " ".join(err.split())  # the table may fold long cells
    assert "Traceback" not in err and "error:" not in err
    for literal in ("mallory [/x]", "after=[bold]1.0", MARKUP):
        assert literal in flat, (literal, err)


def test_deploy_refuses_a_bad_version_before_anything(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env_file = project / "environments/local.yaml"
    before = env_file.read_text()
    code = main(["deploy", "local", "1.0[/x]", "--yes", "--json"])
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert code == 3 and doc["error"]["kind"] == "usage"
    assert "not a version" in doc["error"]["message"] and "letters, digits" in doc["error"]["message"]
    assert env_file.read_text() == before
    assert not (project / ".bgtool").exists()  # no lock, no history record
    assert "Traceback" not in err


@pytest.mark.parametrize("version", ["", "1.0 beta", "-1", "1.0\n", "v" * 65, "1;rm"])
def test_the_release_function_checks_the_version_before_locking(project: Path, monkeypatch: pytest.MonkeyPatch,
                                                               version: str) -> None:
    def no_lock(*args: object, **kwargs: object) -> None:
        raise AssertionError("locked before the version was checked")

    monkeypatch.setattr(OperationLock, "held", no_lock)
    monkeypatch.setattr(deploy_module, "refuse_stale", lambda *a: None)
    monkeypatch.setattr(deploy_module, "refuse_live", lambda *a: None)
    with pytest.raises(UsageError, match="not a version"):
        deploy_module.deploy(Workspace(project, "local"), version, lambda plan: True)


def test_deploy_finds_a_file_it_cannot_rewrite_before_running_migrations(project: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    path = project / "environments/local.yaml"
    text = path.read_text().replace("active_color: blue", "active_color: green")
    shared = "colors:\n  blue: &color\n    version: 1.0.0\n    desired: 2\n    min_size: 0\n    max_size: 4\n" \
             "  green:\n    <<: *color\n"
    start, end = text.index("colors:\n"), text.index("\nalarms:")
    path.write_text(text[:start] + shared + text[end:])
    before = path.read_text()

    def no_migrations(*args: object, **kwargs: object) -> None:
        raise AssertionError("migrations ran before the file was found unwritable")

    monkeypatch.setattr(deploy_module, "guard_and_migrate", no_migrations)
    monkeypatch.setattr(deploy_module, "refuse_stale", lambda *a: None)
    monkeypatch.setattr(deploy_module, "refuse_live", lambda *a: None)
    with pytest.raises(BgtoolError, match=r"would also change colors\.green\.version"):
        deploy_module.deploy(Workspace(project, "local"), "2.0.0", lambda plan: True)
    assert path.read_text() == before

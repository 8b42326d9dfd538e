"""`bgtool changed --base REF` on a throwaway git repository (no AWS needed)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from bgtool.cli.app import main
from bgtool.config.changed import Changed, classify


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root, check=True,
                   capture_output=True)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for rel in ("environments/dev.yaml", "environments/prod.yaml", "environments/staging.yaml",
                "modules/alb/main.tf", "templates/base/main.tf.j2", "README.md"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x: 1\n")
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "base")
    git(tmp_path, "tag", "base")
    monkeypatch.setenv("BGTOOL_ROOT", str(tmp_path))
    return tmp_path


def changed(capsys: pytest.CaptureFixture[str], *extra: str) -> dict:
    assert main(["changed", "--base", "base", "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def commit(root: Path, message: str) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-qm", message)


def test_nothing_changed(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "README.md").write_text("docs only\n")
    commit(repo, "docs")
    assert changed(capsys)["environments"] == []


def test_one_environment(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "environments/staging.yaml").write_text("x: 2\n")
    commit(repo, "staging")
    assert changed(capsys)["environments"] == [
        {"env": "staging", "status": "changed", "reasons": ["environments/staging.yaml"]}]
    assert main(["changed", "--base", "base"]) == 0
    assert capsys.readouterr().out == "staging\n"


def test_a_module_touches_every_environment_prod_last(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "modules/alb/main.tf").write_text("# changed\n")
    commit(repo, "module")
    found = changed(capsys)["environments"]
    assert [e["env"] for e in found] == ["dev", "staging", "prod"]
    assert all("modules/alb/main.tf" in e["reasons"][0] for e in found)


def test_deleted_environment_is_listed_not_planned(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "environments/dev.yaml").unlink()
    (repo / "environments/qa.yaml").write_text("x: 1\n")  # uncommitted and untracked: still a change
    commit(repo, "drop dev")
    (repo / "environments/new.yaml").write_text("x: 1\n")
    assert changed(capsys)["environments"] == [
        {"env": "dev", "status": "deleted", "reasons": ["environments/dev.yaml"]},
        {"env": "new", "status": "changed", "reasons": ["environments/new.yaml"]},
        {"env": "qa", "status": "changed", "reasons": ["environments/qa.yaml"]},
    ]
    assert main(["changed", "--base", "base"]) == 0
    assert capsys.readouterr().out == "new\nqa\n"


def test_bad_ref_is_an_error(repo: Path) -> None:
    assert main(["changed", "--base", "no-such-ref"]) == 1


def test_classify_shared_code_and_unknown_paths() -> None:
    files = [("M", "bgtool/cli/app.py"), ("M", "environments/README.md"), ("M", "docs/x.md")]
    assert classify(files, ["a", "prod"]) == [Changed("a", "changed", ["shared: bgtool/cli/app.py"]),
                                              Changed("prod", "changed", ["shared: bgtool/cli/app.py"])]

"""`bgtool changed --since-applied`: each environment against the commit it was last applied from, read
from its history (local backend: files under .bgtool/, no AWS), in a real throwaway git repository.
And environments on the embedded AWS are reported apart, never in a pipeline's matrix."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bgtool.aws.session import Aws
from bgtool.cli.app import main
from bgtool.config.schema import load_environment
from bgtool.records.history import History, Record, applied_from
from bgtool.release.infra import InfraApply
from bgtool.render.templates import LAYERS
from bgtool.terraform.layers import LayerResult
from bgtool.terraform.workspace import Workspace
from tests.helpers import copy_project, edit_yaml

REAL = ("prod", "staging")


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root, check=True,
                          capture_output=True, text=True)
    return done.stdout.strip()


def commit(root: Path, message: str) -> str:
    git(root, "add", "-A")
    git(root, "commit", "-qm", message)
    return git(root, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = copy_project(tmp_path)
    for env in REAL:  # real environments whose history is files under .bgtool/ (no AWS needed)
        edit_yaml(root / f"environments/{env}.yaml", "backend: s3", "backend: local")
    (root / ".gitignore").write_text(".bgtool/\n")
    git(root, "init", "-q", "-b", "main")
    commit(root, "first")
    monkeypatch.setenv("BGTOOL_ROOT", str(root))
    return root


def applied(root: Path, env: str, at: str, **changes: Any) -> None:
    config = load_environment(root, env).config
    record = Record("apply", "succeeded", details={"complete": True}, source={"commit": at, "dirty": False})
    for key, value in changes.items():
        setattr(record, key, value)
    History(root, env, config, Aws(config)).append(record)


def since_applied(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["changed", "--since-applied", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def names(doc: dict[str, Any], key: str = "environments") -> list[str]:
    return [e["env"] for e in doc[key]]


def test_never_applied_is_changed_and_embedded_ones_are_apart(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = since_applied(capsys)
    assert names(doc) == ["staging", "prod"], "prod last"
    assert "never applied" in doc["environments"][0]["reasons"][0]
    # local, local-dns and local-ecs target the embedded AWS: reported apart, their history never read (no moto here)
    assert names(doc, "embedded") == ["local", "local-dns", "local-ecs"]


def test_a_replaced_run_is_caught_up_by_the_next(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = git(repo, "rev-parse", "HEAD")
    for env in REAL:
        applied(repo, env, first)
    assert names(since_applied(capsys)) == []
    edit_yaml(repo / "environments/staging.yaml", "desired: 2", "desired: 3")
    commit(repo, "staging")  # its run is replaced in the queue: never applied
    edit_yaml(repo / "environments/prod.yaml", "# ", "#  ")
    head = commit(repo, "prod")
    doc = since_applied(capsys)
    assert names(doc) == ["staging", "prod"], "the replaced merge's staging change is not skipped"
    assert doc["environments"][0]["reasons"] == [f"since {first[:12]}: environments/staging.yaml"]
    assert main(["changed", "--since-applied"]) == 0
    assert capsys.readouterr().out == "staging\nprod\n", "stdout: the real environments only, prod last"
    applied(repo, "staging", head)
    assert names(since_applied(capsys)) == ["prod"]


def test_shared_code_touches_every_real_environment(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = git(repo, "rev-parse", "HEAD")
    for env in REAL:
        applied(repo, env, first)
    module = next((repo / "modules").rglob("*.tf"))
    module.write_text(module.read_text() + "\n# changed\n")
    commit(repo, "module")
    doc = since_applied(capsys)
    assert names(doc) == ["staging", "prod"] and names(doc, "embedded") == ["local", "local-dns", "local-ecs"]
    assert "modules/" in doc["environments"][0]["reasons"][0]


def test_only_a_complete_clean_successful_apply_from_a_known_commit_counts(
        repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = git(repo, "rev-parse", "HEAD")
    applied(repo, "prod", first)
    applied(repo, "staging", "0123456789abcdef0123456789abcdef01234567")  # another clone's commit
    doc = since_applied(capsys)
    assert names(doc) == ["staging"] and "unknown to this repository" in doc["environments"][0]["reasons"][0]

    def record(**changes: Any) -> Record:
        base = Record("apply", "succeeded", details={"complete": True}, source={"commit": "c1", "dirty": False})
        for key, value in changes.items():
            setattr(base, key, value)
        return base

    assert applied_from([record()]) == "c1"
    assert applied_from([record(), record(source={"commit": "c2", "dirty": True})]) == "c1"
    assert applied_from([record(), record(source={"commit": "c2"}, details={"complete": False})]) == "c1"
    assert applied_from([record(), record(source={"commit": "c2"}, result="declined")]) == "c1"
    assert applied_from([record(), record(operation="switch", source={"commit": "c2"})]) == "c1"
    assert applied_from([record(source={})]) is None and applied_from([]) is None


def test_base_and_all_leave_embedded_environments_out(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = git(repo, "rev-parse", "HEAD")
    template = next((repo / "templates").rglob("*.j2"))
    template.write_text(template.read_text() + "\n")
    commit(repo, "template")
    assert main(["changed", "--base", base, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert names(doc) == ["staging", "prod"] and names(doc, "embedded") == ["local", "local-dns", "local-ecs"]
    assert main(["changed", "--base", base]) == 0
    out, err = capsys.readouterr()
    assert out == "staging\nprod\n" and "embedded local " in err
    assert main(["changed", "--all", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert names(doc) == ["staging", "prod"] and names(doc, "embedded") == ["local", "local-dns", "local-ecs"]


def test_one_mode_at_a_time(repo: Path) -> None:
    assert main(["changed", "--since-applied", "--base", "HEAD"]) == 1
    assert main(["changed"]) == 1


def test_every_apply_records_the_commit_it_ran_from(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Also an apply that changed nothing: that is what makes the next catch-up exact."""
    head = git(repo, "rev-parse", "HEAD")
    ws = Workspace(repo, "staging")
    monkeypatch.setattr(InfraApply, "_run_locked",
                        lambda self, layers: [LayerResult(layer, "no-changes") for layer in layers])
    run = InfraApply(ws, approve=lambda *a: True, confirm=lambda q: True, confirm_routing=lambda q: True)
    run.run(list(LAYERS))
    history = History(repo, "staging", ws.config, ws.aws)
    assert applied_from(history.read()) == head
    run.run(["base"])  # a partial apply is recorded, and proves nothing about the other layers
    records = history.read()
    assert records[-1].operation == "apply" and records[-1].details["complete"] is False
    assert applied_from(records) == head

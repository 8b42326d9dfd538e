"""The repository and production never silently disagree, on the embedded AWS with real git checkouts.

Two clones of one origin share the embedded AWS, the state and the release history, as an operator's
laptop and the GitOps pipeline do: `operator` releases from a terminal, `ci` applies what main says.
`local`, restored for this module (its clones point at that embedded AWS); the tests run in file order.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from bgtool.config.schema import load_environment
from bgtool.records.history import History, Record
from bgtool.traffic.listener import live_weights
from bgtool.traffic.weights import Weights
from tests.helpers import basic_gate, copy_project, edit_yaml
from tests.integration.conftest import Project

ENV = "local"
FILE = f"environments/{ENV}.yaml"
ONE_STEP = ("--steps", "100", "--bake", "0", "--monitor", "0", "--yes", "--accept-inconclusive")  # no traffic


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


def _clone(origin: Path, dest: Path, endpoint: str) -> Project:
    git(origin.parent, "clone", "--quiet", str(origin), str(dest))
    git(dest, "config", "user.name", "Ann Operator")
    git(dest, "config", "user.email", "ann@example.com")
    return Project(dest, endpoint)


@pytest.fixture(scope="module")
def clones(applied: Project, tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, Project]:
    base = tmp_path_factory.mktemp("provenance")
    seed = Project(copy_project(base / "seed"), applied.endpoint)
    basic_gate(seed.root / FILE)
    (seed.root / ".gitignore").write_text(".bgtool/\nbuild/\n")
    git(seed.root, "init", "--quiet", "--initial-branch=main")
    git(seed.root, "-c", "user.name=seed", "-c", "user.email=seed@example.com", "add", "-A")
    git(seed.root, "-c", "user.name=seed", "-c", "user.email=seed@example.com", "commit", "--quiet", "-m", "seed")
    git(base, "clone", "--quiet", "--bare", str(seed.root), str(base / "origin.git"))
    operator = _clone(base / "origin.git", base / "operator", applied.endpoint)
    ci = _clone(base / "origin.git", base / "ci", applied.endpoint)
    ci.ok("apply", ENV, "--yes", timeout=1500)  # the pipeline applies main: the history names its commit
    return operator, ci


def _weights(p: Project) -> Weights | None:
    aws = p.aws(ENV)
    return live_weights(aws, aws.config)


def _last(p: Project) -> Record:
    cfg = load_environment(p.root, ENV, endpoint_override=p.endpoint).config
    # the newest record of a release operation (an apply also records the commit it ran from)
    return [r for r in History(p.root, ENV, cfg, p.aws(ENV)).read() if r.operation != "apply"][-1]


def test_a_terminal_switch_shows_the_diff_and_records_what_it_wrote(clones: tuple[Project, Project]) -> None:
    operator, _ = clones
    head = git(operator.root, "rev-parse", "HEAD")
    done = operator.ok("switch", ENV, *ONE_STEP, "--json")
    assert f"{FILE}: -active_color: blue  +active_color: green" in done.stderr
    assert "Not committed" in done.stderr
    assert json.loads(done.stdout)["git"] == {"diff": ["-active_color: blue", "+active_color: green"]}
    assert _weights(operator) == Weights(0, 100)
    record = _last(operator)
    assert (record.operation, record.result) == ("switch", "succeeded")
    assert record.wrote["active_color"] == "green" and record.wrote["versions"] == {"blue": "1.0.0", "green": "1.0.0"}
    assert record.source == {"commit": head, "dirty": False}


def test_apply_of_a_file_that_predates_the_switch_refuses_and_production_stays(
        clones: tuple[Project, Project]) -> None:
    operator, ci = clones
    git(operator.root, "checkout", "--", FILE)  # the switch's change never reaches the repository
    switched = _last(operator)
    done = operator.run("apply", ENV, "--yes")
    assert done.returncode == 1, done.stderr
    err = " ".join(done.stderr.split())
    assert f"{FILE} predates the last release of {ENV}" in err
    assert f"{switched.actor} ran switch (succeeded) at {switched.at}" in err and "active_color green" in err
    assert "merge the file change" in err and f"bgtool switch {ENV} --to COLOR" in err
    assert _weights(operator) == Weights(0, 100)
    # main (the pipeline's checkout) is just as stale: a deploy there is refused before anything changes
    refused = ci.run("deploy", ENV, "1.2.0", "--yes")
    assert refused.returncode == 1 and "refusing to deploy" in refused.stderr, refused.stderr
    assert git(ci.root, "status", "--porcelain", "--", FILE) == ""
    assert _last(ci).at == switched.at


def test_a_terminal_switch_from_a_file_that_predates_the_switch_refuses_and_production_stays(
        clones: tuple[Project, Project]) -> None:
    """The stale checkout says blue while green serves 100%: `bgtool switch` would target green (the file's
    idle color), fail its gate and "restore" everything to blue. It is refused and nothing moves."""
    operator, _ = clones
    switched = _last(operator)
    done = operator.run("switch", ENV, *ONE_STEP)
    assert done.returncode == 1, done.stderr
    err = " ".join(done.stderr.split())
    assert f"{FILE} predates the last release of {ENV}" in err, err
    assert _weights(operator) == Weights(0, 100)
    refused = _last(operator)
    assert (refused.operation, refused.result, refused.wrote) == ("switch", "failed", {})
    assert "predates" in refused.reason and refused.at >= switched.at
    assert "active_color: blue" in (operator.root / FILE).read_text()


def test_a_deliberate_switch_and_commit_put_repository_and_production_back_together(
        clones: tuple[Project, Project]) -> None:
    operator, ci = clones
    back = operator.ok("switch", ENV, "--to", "blue", *ONE_STEP, "--commit")
    assert "nothing to commit" in back.stderr  # the file already said blue
    assert _weights(operator) == Weights(100, 0) and _last(operator).wrote["active_color"] == "blue"
    forward = operator.ok("switch", ENV, *ONE_STEP, "--commit")
    subject = git(operator.root, "log", "-1", "--format=%s")
    assert subject == f"{ENV}: switch blue → green (blue 1.0.0, green 1.0.0)"
    assert f"committed {git(operator.root, 'rev-parse', 'HEAD')[:12]}" in forward.stderr
    assert git(operator.root, "show", "--name-only", "--format=", "HEAD") == FILE
    assert git(operator.root, "status", "--porcelain", "--", FILE) == ""
    git(operator.root, "push", "--quiet", "origin", "main")
    git(ci.root, "pull", "--quiet", "--ff-only")
    assert "active_color: green" in (ci.root / FILE).read_text()


def test_a_merged_change_of_the_color_is_applied(clones: tuple[Project, Project]) -> None:
    _, ci = clones
    edit_yaml(ci.root / FILE, "active_color: green", "active_color: blue")
    git(ci.root, "commit", "--quiet", "-am", "prov: back to blue (pull request)")
    ci.ok("apply", ENV, "--yes", "--accept-inconclusive")
    assert _weights(ci) == Weights(100, 0)
    record = _last(ci)
    assert (record.operation, record.result, record.details.get("trigger")) == ("switch", "succeeded", "apply")
    assert record.source["commit"] == git(ci.root, "rev-parse", "HEAD")

"""A rehearsal of the pipelines: `.github/workflows/` run as a runner runs them (tests/integration/workflows.py),
with a local bare git remote as the repository and the embedded AWS as the account.

The repository holds one real environment, `web` (no `aws.endpoint`: the pipelines apply it; the
credentials stand-in points it at the embedded AWS) and the two embedded ones, `local` and `local-dns`,
which the pipelines leave out with a notice. The scenarios build on each other, in file order, as a
team's merges would: the first merge, a pull request and its merge, a template change, a release of
a new instance type with its write-back, two merges where the first is cancelled mid-switch, and the
nightly drift check. Production is asserted through the AWS API after each; steady requests run
through the production listener whenever a run may move traffic, since each step is judged by them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from bgtool.aws.session import EMBEDDED_CREDENTIALS, Aws
from bgtool.config.schema import load_environment
from bgtool.embedded import server as embedded
from bgtool.records.history import History, Record
from bgtool.records.lock import OperationLock
from bgtool.traffic.listener import live_weights
from bgtool.traffic.weights import Weights
from tests.helpers import REPO, basic_gate, copy_project, edit_yaml, git
from tests.integration.conftest import BGTOOL, free_port
from tests.integration.traffic import Traffic
from tests.integration.workflows import Cancel, Run, Runner

pytestmark = pytest.mark.integration

ENV = "web"
VARIABLES = {"AWS_REGION": "us-east-1", "BGTOOL_PLAN_ROLE_ARN": "arn:aws:iam::123456789012:role/plan",
             "BGTOOL_APPLY_ROLE_ARN": "arn:aws:iam::123456789012:role/apply",
             "BGTOOL_DRIFT_ROLE_ARN": "arn:aws:iam::123456789012:role/drift"}


@dataclass
class Rehearsal:
    dev: Path  # a developer's clone: edits, commits, pushes; the embedded AWS runs from here
    remote: Path
    endpoint: str
    runner: Runner

    def config(self) -> Any:
        return load_environment(self.dev, ENV, rehearsal_endpoint=self.endpoint).config

    def aws(self) -> Aws:
        return Aws(self.config())

    def weights(self) -> Weights | None:
        aws = self.aws()
        return live_weights(aws, aws.config)

    def history(self) -> list[Record]:
        return History(self.dev, ENV, self.config(), self.aws()).read()

    def lock_free(self) -> bool:
        return OperationLock(self.dev, ENV, self.config(), self.aws()).current() is None

    def production_url(self) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BGTOOL_")}
        done = subprocess.run([BGTOOL, "local", "status", "--env", ENV, "--json"], cwd=self.dev, text=True,
                              capture_output=True, check=True, env={**env, "BGTOOL_ROOT": str(self.dev)})
        return json.loads(done.stdout)["listeners"]["80"]

    def commit(self, message: str, edit: Callable[[Path], None], branch: str = "main") -> str:
        git(self.dev, "checkout", "-q", "-B", branch, "origin/main" if branch != "main" else "main")
        edit(self.dev)
        git(self.dev, "add", "-A")
        git(self.dev, "commit", "-qm", message)
        force = ["--force"] if branch != "main" else []  # a pull request's branch may be pushed again
        git(self.dev, "push", "-q", *force, "origin", f"{branch}:refs/heads/{branch}")
        git(self.dev, "fetch", "-q", "origin")
        git(self.dev, "checkout", "-q", "main")
        return git(self.dev, "rev-parse", f"origin/{branch}")

    def merge(self, branch: str) -> str:
        """A fast-forward merge of BRANCH into main, pushed (the pull request's merge button)."""
        git(self.dev, "fetch", "-q", "origin")
        git(self.dev, "merge", "-q", "--ff-only", f"origin/{branch}")
        git(self.dev, "push", "-q", "origin", "main")
        return git(self.dev, "rev-parse", "HEAD")

    def on_push(self, before: str, after: str, cancel: Cancel | None = None) -> Run:
        event = {"before": before, "after": after, "ref": "refs/heads/main",
                 "repository": {"fork": False, "full_name": "acme/infra"}}
        return self.runner.run("apply.yml", "push", event, after, "refs/heads/main", cancel)

    def head(self) -> str:
        return git(self.dev, "rev-parse", "main")


def edit(old: str, new: str) -> Callable[[Path], None]:
    """A change to the environment file of `web`, made in a clone."""
    return lambda clone: edit_yaml(clone / f"environments/{ENV}.yaml", old, new)


def _repository(dev: Path) -> None:
    copy_project(dev)
    for name in ("scripts", "pyproject.toml"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, dev / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (dev / name).write_text(source.read_text())
    for example in ("staging", "prod"):  # examples for real accounts: not this rehearsal's
        (dev / f"environments/{example}.yaml").unlink()
    text = (dev / "environments/local.yaml").read_text()
    text = text.replace("name: bgtool-local", "name: bgtool-web").replace("10.20.", "10.31.")
    text = "\n".join(line for line in text.splitlines() if not line.strip().startswith("endpoint:")) + "\n"
    web = dev / f"environments/{ENV}.yaml"
    web.write_text(text)
    basic_gate(web)  # the rehearsal is of the pipelines; the gate's own checks have their tests
    edit_yaml(web, "steps: [10, 50, 100]", "steps: [100]")
    (dev / ".gitignore").write_text(".bgtool/\nbuild/\n__pycache__/\n")


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rehearsal]:
    home = tmp_path_factory.mktemp("rehearsal")
    remote, dev = home / "remote.git", home / "dev"
    git(home, "init", "-q", "--bare", "-b", "main", str(remote))
    git(remote, "config", "uploadpack.allowAnySHA1InWant", "true")  # checkout fetches the event's commit
    git(home, "init", "-q", "-b", "main", str(dev))
    _repository(dev)
    git(dev, "add", "-A")
    git(dev, "commit", "-qm", "bgtool: the first environments")
    git(dev, "remote", "add", "origin", str(remote))
    git(dev, "push", "-q", "origin", "main")
    git(dev, "fetch", "-q", "origin")
    info, _ = embedded.up(dev, free_port())
    try:
        yield Rehearsal(dev, remote, info.endpoint, Runner(remote, info.endpoint, home / "runner", VARIABLES))
    finally:
        embedded.down(dev)


def _failed_steps(run: Run) -> str:
    return "\n".join(f"--- {job}/{s.name} ({s.outcome})\n{s.output[-3000:]}" for job, results in run.jobs.items()
                     for r in results for s in r.steps if s.outcome in ("failure", "cancelled"))


def _ok(run: Run, *jobs: str) -> None:
    for job in jobs:
        assert run.result(job) == "success", f"{job}: {run.result(job)}\n{_failed_steps(run)}"


def _attached_report(rehearsal: Rehearsal, run: Run) -> str:
    """The release report the apply job uploaded, found through the job summary's link to it."""
    folder = rehearsal.runner.artifacts / f"release-report-{ENV}"
    assert f"[Release report for {ENV}]({folder.as_uri()})" in run.summary, run.summary
    page = folder / f"{ENV}-release-report.html"
    assert page.exists(), sorted(p.name for p in rehearsal.runner.artifacts.iterdir())
    return page.read_text()


def _no_report(rehearsal: Rehearsal, run: Run) -> None:
    """A run that moved no traffic attaches no report, not even an earlier run's, and does not fail for it."""
    step = run.job("apply").step("Release report")
    assert step.outcome == "success" and step.outputs == {"written": "false"}, step.output
    assert "made no switch, rollback or release" in step.output
    assert not (rehearsal.runner.artifacts / f"release-report-{ENV}").exists()
    assert "Release report" not in run.summary


def test_the_first_merge_applies_the_real_environment_and_leaves_the_embedded_ones_out(rehearsal: Rehearsal) -> None:
    head = rehearsal.head()
    run = rehearsal.on_push("0" * 40, head)
    _ok(run, "changes", "apply", "write-back")
    assert json.loads(run.job("changes").outputs["envs"]) == [ENV] and run.job("changes").outputs["prod"] == "false"
    notices = run.job("changes").step("Changed environments").output
    assert "::notice title=bgtool apply::local targets the embedded AWS" in notices and "local-dns" in notices
    assert run.result("apply-prod") == "skipped"
    assert rehearsal.weights() == Weights(100, 0)
    last = rehearsal.history()[-1]
    assert (last.operation, last.result, last.source.get("commit")) == ("apply", "succeeded", head)
    assert "nothing to write back" in run.job("write-back").step("Propose").output
    _no_report(rehearsal, run)


def test_a_pull_request_that_changes_the_active_color_gets_the_headline_in_its_plan(rehearsal: Rehearsal) -> None:
    sha = rehearsal.commit("web: green", edit("active_color: blue", "active_color: green"), branch="to-green")
    event = {"pull_request": {"number": 1, "head": {"repo": {"full_name": "acme/infra"}, "ref": "to-green", "sha": sha},
                              "base": {"ref": "main"}}}
    run = rehearsal.runner.run("pr.yml", "pull_request", event, sha, "refs/heads/to-green")
    _ok(run, "checks", "plan")
    comment = rehearsal.runner.comments["bgtool-plan"]
    assert f"{ENV}: switch blue → green" in comment, comment
    assert "Not planned here" not in comment, "the pull request changed no embedded environment"
    assert rehearsal.weights() == Weights(100, 0), "a plan moves nothing"


def test_its_merge_runs_the_guarded_switch_and_the_history_names_the_commit(rehearsal: Rehearsal) -> None:
    before = rehearsal.head()
    merged = rehearsal.merge("to-green")
    with Traffic(rehearsal.production_url()) as traffic:
        run = rehearsal.on_push(before, merged)
    _ok(run, "changes", "apply", "write-back")
    assert rehearsal.weights() == Weights(0, 100)
    switch = next(r for r in reversed(rehearsal.history()) if r.operation == "switch")
    assert (switch.result, switch.to_color, switch.source.get("commit")) == ("succeeded", "green", merged)
    assert not [a for a in traffic.answers if a[0] != 200], "the switch dropped requests"
    assert "nothing to write back" in run.job("write-back").step("Propose").output, "the file already said green"
    page = _attached_report(rehearsal, run)
    assert f"<h1>{ENV}: switch succeeded</h1>" in page and switch.at in page and merged in page
    assert "Plotly.newPlot" in page, "the page's timeline"


def test_a_template_change_applies_the_real_environment_and_only_notes_the_embedded_ones(rehearsal: Rehearsal) -> None:
    def touch_template(dev: Path) -> None:
        template = sorted((dev / "templates").rglob("*.j2"))[0]
        template.write_text(template.read_text() + "\n")

    before = rehearsal.head()
    after = rehearsal.commit("templates: a blank line", touch_template)
    run = rehearsal.on_push(before, after)
    _ok(run, "changes", "apply", "write-back")
    assert json.loads(run.job("changes").outputs["envs"]) == [ENV]
    assert "local targets the embedded AWS" in run.job("changes").step("Changed environments").output
    assert rehearsal.weights() == Weights(0, 100)
    _no_report(rehearsal, run)  # the last switch in the history is the previous merge's


def test_a_new_instance_type_is_released_through_the_idle_color_and_written_back(rehearsal: Rehearsal) -> None:
    before = rehearsal.head()
    after = rehearsal.commit("web: t3.small", edit("instance_type: t3.micro", "instance_type: t3.small"))
    with Traffic(rehearsal.production_url()) as traffic:
        run = rehearsal.on_push(before, after)
    _ok(run, "changes", "apply", "write-back")
    assert rehearsal.weights() == Weights(100, 0), "released on blue, the idle color"
    assert not [a for a in traffic.answers if a[0] != 200], "the release dropped requests"
    [pr] = rehearsal.runner.github_state["prs"]
    assert pr["head"] == f"bgtool/write-back/{ENV}" and pr["base"] == "main"
    assert pr["title"] == f"{ENV}: what production now runs (active_color: green → blue)"
    proposed = git(rehearsal.remote, "show", f"bgtool/write-back/{ENV}:environments/{ENV}.yaml")
    assert "active_color: blue" in proposed and "instance_type: t3.small" in proposed
    assert git(rehearsal.remote, "rev-parse", f"bgtool/write-back/{ENV}~1") == after

    # A person merges the write-back: the next run finds production as the file says and changes nothing.
    merged = rehearsal.merge(f"bgtool/write-back/{ENV}")
    again = rehearsal.on_push(after, merged)
    _ok(again, "changes", "apply", "write-back")
    assert rehearsal.weights() == Weights(100, 0)
    assert "nothing to write back" in again.job("write-back").step("Propose").output


def test_two_merges_the_first_cancelled_mid_switch_end_on_one_color_and_the_second_applies_both(
        rehearsal: Rehearsal) -> None:
    start = rehearsal.head()
    first = rehearsal.commit("web: green again", edit("active_color: blue", "active_color: green"))
    second = rehearsal.commit("web: 5xx alarm at 12", edit("target_5xx_count: 10", "target_5xx_count: 12"))
    # the second merge waits behind the first run, which is cancelled during its bake, as a runner does it
    cancel = Cancel("apply", "Apply", lambda output: "step 1/1: production" in output)
    with Traffic(rehearsal.production_url()):
        cancelled = rehearsal.on_push(start, first, cancel=cancel)
        assert cancelled.cancelled and cancelled.result("apply") == "cancelled", _failed_steps(cancelled)
        assert cancelled.signals == ["SIGINT"], "bgtool restored and exited before the runner's SIGTERM"
        assert rehearsal.weights() == Weights(100, 0), "back on the old color"
        assert rehearsal.lock_free()
        interrupted = rehearsal.history()[-1]
        assert (interrupted.operation, interrupted.result) == ("switch", "rolled-back")
        assert "interrupted" in interrupted.reason and interrupted.source.get("commit") == first
        assert cancelled.job("apply").step("After a cancellation").outcome == "success"
        assert "production: blue" in cancelled.summary

        run = rehearsal.on_push(first, second)
    _ok(run, "changes", "apply", "write-back")
    assert rehearsal.weights() == Weights(0, 100), "the first merge's switch, applied by the second run"
    cloudwatch = rehearsal.aws().client("cloudwatch")
    thresholds = {a["AlarmName"]: a["Threshold"] for a in cloudwatch.describe_alarms()["MetricAlarms"]
                  if a["AlarmName"].startswith("bgtool-web-") and a["AlarmName"].endswith("-5xx")}
    assert thresholds and set(thresholds.values()) == {12.0}, thresholds


def test_the_nightly_drift_is_quiet_when_clean_and_opens_an_issue_naming_the_fix(rehearsal: Rehearsal) -> None:
    sha = rehearsal.head()
    clean = rehearsal.runner.run("drift.yml", "schedule", {}, sha, "refs/heads/main")
    _ok(clean, "environments", "drift", "report")
    assert json.loads(clean.job("environments").outputs["envs"]) == [ENV]
    assert rehearsal.runner.github_state["issues"] == []

    ec2 = boto3.client("ec2", endpoint_url=rehearsal.endpoint, region_name="us-east-1",
                       aws_access_key_id=EMBEDDED_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                       aws_secret_access_key=EMBEDDED_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
    [group] = [g for g in ec2.describe_security_groups()["SecurityGroups"] if g["GroupName"] == "bgtool-web-alb"]
    ec2.authorize_security_group_ingress(GroupId=group["GroupId"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    drifted = rehearsal.runner.run("drift.yml", "schedule", {}, sha, "refs/heads/main")
    assert drifted.result("drift") == "success" and drifted.result("report") == "failure", _failed_steps(drifted)
    [issue] = rehearsal.runner.github_state["issues"]
    assert issue["labels"] == ["drift"] and "1 drift" in issue["title"]
    assert "22" in issue["body"] and "revoke-security-group-ingress" in issue["body"], issue["body"]

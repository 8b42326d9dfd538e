"""A Terraform run killed while it holds its state lock, on the embedded AWS (S3 backend, DynamoDB
locks): every later run of that layer fails, `bgtool unlock` shows the lock with its holder and age,
refuses to clear it without a terminal or --yes, and clears it with --yes, after which Terraform
works on that layer again. And the lock a run takes itself when the answer to its lock request is
lost: bgtool clears it and the run goes on.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bgtool.terraform.statelocks import dynamodb_lock_id
from bgtool.terraform.workspace import Workspace
from tests.integration.conftest import Project, add_environment
from tests.integration.lostanswer import dynamodb_put, losing_one_answer

ENV = "unlk"
ELSEWHERE = "ci@runner-7"


@pytest.fixture(scope="module")
def unlk(project: Project) -> Iterator[Workspace]:
    add_environment(project, ENV, 46)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BGTOOL_AWS_ENDPOINT", project.endpoint)
        ws = Workspace(project.root, ENV)
        ws.prepare()  # the state bucket and lock table, as any bgtool run creates them
        yield ws


def lock_item(ws: Workspace, layer: str) -> dict | None:
    return ws.aws.client("dynamodb").get_item(
        TableName=ws.config.state.lock_table, Key={"LockID": {"S": dynamodb_lock_id(ws.config, ENV, layer)}},
        ConsistentRead=True,
    ).get("Item")


def kill_apply_holding_the_lock(ws: Workspace, layer: str) -> dict:
    """Start a real `terraform apply` of LAYER and SIGKILL it as soon as its lock is in the table."""
    tf = ws.terraform(layer)  # init (provider from the mirror, backend configured)
    proc = subprocess.Popen([tf.binary, "apply", "-auto-approve", "-input=false", "-json"], cwd=tf.workdir,
                            env=tf.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while (item := lock_item(ws, layer)) is None:
            assert proc.poll() is None, f"terraform apply ended ({proc.returncode}) before its lock was seen"
            assert time.monotonic() < deadline, "terraform apply never took its lock"
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
    return item


def test_a_killed_apply_leaves_a_lock_that_unlock_shows_and_clears(unlk: Workspace, project: Project) -> None:
    item = kill_apply_holding_the_lock(unlk, "base")
    info = json.loads(item["Info"]["S"])
    assert info["Operation"] == "OperationTypeApply" and lock_item(unlk, "base") is not None

    # Terraform itself is blocked now (a lock older than the run is never taken for the run's own), and
    # bgtool says why and what clears it.
    blocked = project.run("apply", ENV, "--layer", "base", "--yes", "--json")
    assert blocked.returncode == 1 and "Traceback" not in blocked.stderr
    error = json.loads(blocked.stdout)["error"]
    assert error["kind"] == "terraform-lock" and f"'bgtool unlock {ENV}'" in error["hint"]
    assert error["lock"]["ID"] == info["ID"]

    # No terminal and no --yes: shown, nothing cleared.
    refused = project.run("unlock", ENV, "--json")
    assert refused.returncode == 1
    shown = json.loads(refused.stdout)["error"]
    assert shown["kind"] == "refused"
    [lock] = shown["locks"]
    assert (lock["kind"], lock["layer"], lock["id"], lock["who"]) == ("terraform", "base", info["ID"], info["Who"])
    assert 0 <= lock["age_seconds"] < 600
    assert f"terraform apply by {info['Who']}" in refused.stderr and "old" in refused.stderr
    assert lock_item(unlk, "base") is not None

    done = project.run("unlock", ENV, "--yes", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["ok"] is True and [(x["layer"], x["cleared"]) for x in doc["locks"]] == [("base", True)]
    # the lock names this machine, and no terraform here works on that state: its holder is known dead
    assert doc["locks"][0]["alive"] is False and doc["locks"][0]["cleared_because"] == "its process is gone"
    assert lock_item(unlk, "base") is None

    # Terraform takes the layer's lock again: a plan runs (changes pending: the killed apply did not finish).
    planned = project.run("plan", ENV, "--layer", "base", "--json")
    assert planned.returncode in (0, 2), planned.stderr
    assert json.loads(planned.stdout)["ok"] is True
    assert project.run("unlock", ENV, "--json").returncode == 0  # nothing left behind by the plan


def test_a_lock_the_run_took_itself_is_cleared_and_the_run_goes_on(unlk: Workspace, project: Project) -> None:
    """Terraform's lock PutItem succeeds but its answer is lost: the SDK's retry finds the lock the first
    attempt wrote and Terraform fails on its own lock. bgtool proves it is that run's, clears it, runs again.
    An apply, because a plan takes no state lock."""
    lock_id = dynamodb_lock_id(unlk.config, ENV, "base")
    with losing_one_answer(project.endpoint, dynamodb_put(lock_id)) as (relay, lost):
        applied = Project(project.root, relay).run("apply", ENV, "--layer", "base", "--yes", "--json")
    assert lost == [200], "the relay lost the answer to the lock's PutItem, which the server had written"
    assert applied.returncode == 0, applied.stderr
    assert json.loads(applied.stdout)["ok"] is True
    assert "was refused the state lock it had taken itself" in applied.stderr and "ran again" in applied.stderr
    assert lock_item(unlk, "base") is None  # and nothing left behind


def test_a_running_ci_jobs_locks_are_left_without_force(unlk: Workspace, project: Project) -> None:
    """Locks taken a minute ago on another machine (a CI job in progress): nothing here can see whether
    that job still runs, so `--yes` leaves them, saying why; `--force` clears them, saying so."""
    now = datetime.now(UTC)
    info = {"ID": "ci-job-lock", "Operation": "OperationTypeApply", "Info": "", "Who": ELSEWHERE,
            "Version": "1.11.4", "Created": (now - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "Path": ""}
    operation = {"owner": "ci", "operation": "switch blue -> green", "host": "runner-7", "pid": 4242,
                 "since": (now - timedelta(minutes=2)).isoformat(timespec="seconds")}
    table = unlk.aws.client("dynamodb")
    table.put_item(TableName=unlk.config.state.lock_table, Item={
        "LockID": {"S": dynamodb_lock_id(unlk.config, ENV, "green")}, "Info": {"S": json.dumps(info)}})
    operation_id = f"bgtool-operation/{unlk.config.state.key_prefix}/{ENV}"
    table.put_item(TableName=unlk.config.state.lock_table, Item={
        "LockID": {"S": operation_id}, "Info": {"S": json.dumps(operation)}})

    left = project.run("unlock", ENV, "--yes", "--json")
    assert left.returncode == 1, left.stderr
    locks = json.loads(left.stdout)["locks"]
    assert [(x["kind"], x["alive"], x["cleared"]) for x in locks] == [("operation", None, False),
                                                                       ("terraform", None, False)]
    assert all("cannot be seen from here" in x["left_because"] and "--force" in x["left_because"] for x in locks)
    assert lock_item(unlk, "green") is not None

    forced = project.run("unlock", ENV, "--yes", "--force", "--json")
    assert forced.returncode == 0, forced.stderr
    assert all(x["cleared"] and x["cleared_because"].startswith("forced") for x in json.loads(forced.stdout)["locks"])
    assert "forced (--force)" in forced.stderr
    assert lock_item(unlk, "green") is None and project.run("unlock", ENV, "--json").returncode == 0

"""deploy, verify, retire, history, unlock and the operation lock on the embedded AWS, with the real
terraform binary, on an environment of their own (`ops`) so the shared `local` one is untouched.

The tests run in file order and build on each other: ops starts blue-live with 1.0.0 on both
colors, gets 1.1.0 on green, is verified, has faults injected (and healed), then green is retired
and brought back.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bgtool.aws.session import Aws
from bgtool.config.schema import Environment, load_environment
from bgtool.records.history import History, Record
from bgtool.records.lock import OperationLock
from tests.integration.conftest import Project
from tests.integration.traffic import Traffic

ENV = "local"


@pytest.fixture(scope="module")
def ops(applied: Project) -> Project:
    return applied


def config_of(project: Project) -> Environment:
    return load_environment(project.root, ENV, endpoint_override=project.endpoint).config


def asg_of(aws: Aws, color: str) -> dict:
    groups = aws.client("autoscaling").describe_auto_scaling_groups(
        Filters=[{"Name": "tag:bgtool:env", "Values": [ENV]}, {"Name": "tag:bgtool:color", "Values": [color]}]
    )["AutoScalingGroups"]
    assert len(groups) == 1, [g["AutoScalingGroupName"] for g in groups]
    return groups[0]


def target_states(aws: Aws, color: str) -> dict[str, str]:
    elbv2 = aws.client("elbv2")
    (group,) = elbv2.describe_target_groups(Names=[f"bgtool-{ENV}-{color}"])["TargetGroups"]
    health = elbv2.describe_target_health(TargetGroupArn=group["TargetGroupArn"])["TargetHealthDescriptions"]
    return {d["Target"]["Id"]: d["TargetHealth"]["State"] for d in health}


def comments(text: str) -> list[str]:
    return [line.split("#", 1)[1] for line in text.splitlines() if "#" in line]


def gate(project: Project) -> tuple[int, dict]:
    done = project.run("verify", ENV, "--json")
    return done.returncode, json.loads(done.stdout)


def failing(doc: dict) -> dict[str, str]:
    return {c["name"]: c["evidence"] for c in doc["checks"] if not c["passed"]}


@contextmanager
def held_lock(project: Project, operation: str) -> Iterator[OperationLock]:
    config = config_of(project)
    lock = OperationLock(project.root, ENV, config, Aws(config))
    with lock.held(operation):
        yield lock


def test_deploy_updates_only_the_idle_color(ops: Project) -> None:
    aws = ops.aws(ENV)
    path = ops.root / f"environments/{ENV}.yaml"
    before_text = path.read_text()
    blue = asg_of(aws, "blue")
    done = ops.ok("deploy", ENV, "1.1.0", "--yes", "--json")
    result = json.loads(done.stdout)
    assert result["color"] == "green" and result["version"] == "1.1.0" and result["previous_version"] == "1.0.0"

    green = asg_of(aws, "green")
    tags = {t["Key"]: t["Value"] for t in green["Tags"]}
    assert tags["bgtool:version"] == "1.1.0"
    in_service = {i["InstanceId"] for i in green["Instances"] if i["LifecycleState"] == "InService"}
    assert len(in_service) == 2
    states = target_states(aws, "green")
    assert in_service <= set(states) and all(states[i] == "healthy" for i in in_service)

    blue_after = asg_of(aws, "blue")
    assert blue_after["AutoScalingGroupName"] == blue["AutoScalingGroupName"]
    assert {i["InstanceId"] for i in blue_after["Instances"]} == {i["InstanceId"] for i in blue["Instances"]}

    text = path.read_text()
    assert comments(text) == comments(before_text)
    assert re.search(r"green:\n    version: 1\.1\.0\n", text) and re.search(r"blue:\n    version: 1\.0\.0\n", text)
    changed = [(a, b) for a, b in zip(before_text.splitlines(), text.splitlines(), strict=True) if a != b]
    assert changed == [("    version: 1.0.0", "    version: 1.1.0")]  # one value changed, nothing else


def test_verify_passes_on_the_deployed_color(ops: Project) -> None:
    code, doc = gate(ops)
    assert code == 0, doc
    assert doc["color"] == "green" and doc["passed"] is True
    names = [c["name"] for c in doc["checks"]]
    assert names[:3] == ["in service == desired", "targets healthy", "alarms"]
    assert {"smoke /health", "smoke /version"} <= set(names)  # through the test listener of the data plane
    host = next(c for c in doc["checks"] if c["name"].startswith("host checks"))
    assert host["passed"] and "passed on local://" in host["evidence"]


def test_verify_fails_naming_stopped_instances(ops: Project) -> None:
    aws = ops.aws(ENV)
    ids = [i["InstanceId"] for i in asg_of(aws, "green")["Instances"]]
    aws.client("ec2").stop_instances(InstanceIds=ids)
    try:
        code, doc = gate(ops)
        assert code == 1 and doc["passed"] is False
        evidence = failing(doc)["targets healthy"]
        assert all(i in evidence for i in ids), evidence
    finally:
        aws.client("ec2").start_instances(InstanceIds=ids)
    assert gate(ops)[0] == 0


def _alarm_state(ops: Project, alarm: str) -> str:
    found = ops.aws(ENV).client("cloudwatch").describe_alarms(AlarmNames=[alarm])["MetricAlarms"]
    return found[0]["StateValue"] if found else "missing"


def _until(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(1)
    raise AssertionError(f"not within {seconds} s: {what}")


def test_verify_fails_while_an_alarm_fires(ops: Project) -> None:
    """The alarm fires from real 5xx answers of green's processes (an alarm state set by hand is
    re-evaluated from the metrics at the next period, as CloudWatch does)."""
    alarm = f"bgtool-{ENV}-green-5xx"
    test_url = json.loads(ops.ok("local", "status", "--env", ENV, "--json").stdout)["listeners"]["8080"]
    ops.ok("local", "fault", "green", "--env", ENV, "--errors", "100")
    try:
        with Traffic(test_url, workers=2, pause=0.05):
            _until(lambda: _alarm_state(ops, alarm) == "ALARM", 120, f"{alarm} in ALARM")
            code, doc = gate(ops)
        assert code == 1
        assert alarm in failing(doc)["alarms"]
    finally:
        ops.ok("local", "fault", "green", "--env", ENV, "--clear")
    # no more errors (and no traffic: missing data is not breaching): the alarm clears by itself
    _until(lambda: _alarm_state(ops, alarm) == "OK", 120, f"{alarm} back to OK")


def test_deploy_to_the_live_color_is_refused(ops: Project) -> None:
    path = ops.root / f"environments/{ENV}.yaml"
    before = path.read_text()
    started = time.monotonic()
    done = ops.run("deploy", ENV, "2.0.0", "--color", "blue", "--yes")
    assert done.returncode == 1
    assert "live color" in done.stderr and "nothing was changed" in done.stderr
    assert path.read_text() == before
    assert time.monotonic() - started < 30  # refused before any terraform run


def test_retire_inside_retention_is_refused_with_the_time(ops: Project) -> None:
    config = config_of(ops)
    switched = Record("switch", "succeeded", from_color="green", to_color="blue",
                      versions={"blue": "1.0.0", "green": "1.0.0"}, reason="recorded by the test")
    History(ops.root, ENV, config, Aws(config)).append(switched)
    allowed = datetime.fromisoformat(switched.at) + timedelta(hours=config.retention_hours)

    done = ops.run("retire", ENV, "--yes")
    assert done.returncode == 1
    assert f"allowed from {allowed.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC" in done.stderr, done.stderr
    assert asg_of(ops.aws(ENV), "green")["DesiredCapacity"] == 2

    status = json.loads(ops.ok("status", ENV, "--json").stdout)
    assert status["last_switch"]["at"] == switched.at and status["last_switch"]["to"] == "blue"
    assert 0 < status["retention"]["seconds_left"] <= config.retention_hours * 3600
    assert status["lock"] == {"held": False}
    assert status["file_matches_live"] is True


def test_retire_force_scales_to_zero_and_deploy_brings_it_back(ops: Project) -> None:
    aws = ops.aws(ENV)
    path = ops.root / f"environments/{ENV}.yaml"
    blue = asg_of(aws, "blue")
    ops.ok("retire", ENV, "--force", "--yes")
    assert asg_of(aws, "green")["DesiredCapacity"] == 0
    assert re.search(r"green:\n(    .*\n)*    retired: true\n", path.read_text())
    assert asg_of(aws, "blue")["Instances"] == blue["Instances"]

    ops.ok("deploy", ENV, "1.2.0", "--yes")
    green = asg_of(aws, "green")
    assert green["DesiredCapacity"] == 2 and len(green["Instances"]) == 2
    assert "retired: false" in path.read_text()
    assert gate(ops)[0] == 0


def test_second_operation_fails_at_once_naming_the_holder(ops: Project) -> None:
    path = ops.root / f"environments/{ENV}.yaml"
    before = path.read_text()
    with held_lock(ops, "switch green→blue (test)"):
        started = time.monotonic()
        done = ops.run("deploy", ENV, "1.3.0", "--yes")
        assert done.returncode == 1
        assert "locked" in done.stderr and "switch green→blue (test)" in done.stderr
        assert time.monotonic() - started < 30
        assert ops.run("retire", ENV, "--force", "--yes").returncode == 1
        status = json.loads(ops.ok("status", ENV, "--json").stdout)
        assert status["lock"]["held"] and status["lock"]["operation"] == "switch green→blue (test)"
        assert status["lock"]["stale"] is False
    assert path.read_text() == before


def test_unlock_clears_a_crashed_runs_lock(ops: Project) -> None:
    config = config_of(ops)
    lock = OperationLock(ops.root, ENV, config, Aws(config))
    # A run that takes the lock and dies without releasing it (a live holder's lock is never cleared).
    crash = ("import sys; from pathlib import Path; from bgtool.aws.session import Aws; "
             "from bgtool.config.schema import load_environment; from bgtool.records.lock import OperationLock; "
             "c = load_environment(Path(sys.argv[1]), sys.argv[2], endpoint_override=sys.argv[3]).config; "
             "OperationLock(Path(sys.argv[1]), sys.argv[2], c, Aws(c)).acquire('deploy 9.9.9 to green (crashed)')")
    subprocess.run([sys.executable, "-c", crash, str(ops.root), ENV, ops.endpoint], check=True)
    refused = ops.run("unlock", ENV)  # no terminal, no --yes: left in place
    assert refused.returncode == 1 and lock.current() is not None
    done = ops.ok("unlock", ENV, "--yes")
    assert "deploy 9.9.9 to green (crashed)" in done.stderr
    assert lock.current() is None


def test_history_lists_every_operation(ops: Project) -> None:
    doc = json.loads(ops.ok("history", ENV, "--json").stdout)
    doc["records"] = [r for r in doc["records"] if r["operation"] != "apply"]  # the fixture's applies
    rows = [(r["operation"], r["result"], r["to_color"] or r["from_color"]) for r in doc["records"]]
    assert rows == [
        ("migrate", "succeeded", "green"),  # the example migrations ran with the first deploy
        ("deploy", "succeeded", "green"),
        ("switch", "succeeded", "blue"),
        ("retire", "succeeded", "green"),
        ("deploy", "succeeded", "green"),
    ]
    assert doc["records"][1]["versions"] == {"before": "1.0.0", "after": "1.1.0"}
    assert doc["records"][3]["reason"].startswith("forced ")  # retention (and the quiet period) overridden
    text = ops.ok("history", ENV).stderr
    assert "1.1.0" in text and "retire" in text

"""Switch, rollback and the GitOps path on the embedded AWS with the real terraform binary.

One environment of its own (`rel`), applied once for this module; the tests run in file order and
each leaves production traffic 100% on a healthy color. Faults are injected as an operator would
meet them: stopped instances, an alarm firing during bake, a second operator, a drifted listener.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator

import pytest
import requests

from bgtool.aws.live import color_live, target_group_arns
from bgtool.aws.session import Aws
from bgtool.config.schema import Color, load_environment
from bgtool.embedded.sessions import COOKIE
from bgtool.records.history import History
from bgtool.traffic.listener import live_weights
from bgtool.traffic.weights import Weights
from tests.helpers import edit_yaml
from tests.integration.conftest import BGTOOL, Project

ENV = "local"
FAST = ("--yes", "--bake", "0", "--monitor", "0", "--accept-inconclusive")  # no production traffic here


@pytest.fixture(scope="module")
def rel(applied: Project) -> Project:
    return applied


def _aws(project: Project) -> Aws:
    return project.aws(ENV)


def _weights(project: Project) -> Weights | None:
    aws = _aws(project)
    return live_weights(aws, aws.config)


def _file(project: Project) -> str:
    return (project.root / "environments" / f"{ENV}.yaml").read_text()


def _last_record(project: Project):  # type: ignore[no-untyped-def]
    aws = _aws(project)
    cfg = load_environment(project.root, ENV, endpoint_override=project.endpoint).config
    # the newest record of a release operation (an apply also records the commit it ran from)
    return [r for r in History(project.root, ENV, cfg, aws).read() if r.operation != "apply"][-1]


def _green_instances(project: Project) -> list[str]:
    aws = _aws(project)
    tg = target_group_arns(aws, aws.config)["green"]
    return color_live(aws, aws.config, ENV, Color.GREEN, tg).instance_ids


@pytest.fixture
def green_stopped(rel: Project) -> Iterator[list[str]]:
    ids = _green_instances(rel)
    ec2 = _aws(rel).client("ec2")
    ec2.stop_instances(InstanceIds=ids)
    try:
        yield ids
    finally:
        ec2.start_instances(InstanceIds=ids)


def test_gate_refuses_when_green_is_unhealthy(rel: Project, green_stopped: list[str]) -> None:
    done = rel.run("switch", ENV, "--steps", "100", *FAST, "--json")
    assert done.returncode == 1, done.stderr
    doc = json.loads(done.stdout)
    assert doc["result"] == "failed" and "gate" in doc["reason"], doc
    assert doc["steps"] == []
    assert _weights(rel) == Weights(100, 0)
    assert "active_color: blue" in _file(rel)
    assert _last_record(rel).result == "failed"


def test_switch_moves_traffic_and_rewrites_the_file(rel: Project) -> None:
    done = rel.ok("switch", ENV, "--steps", "50,100", "--yes", "--bake", "1", "--monitor", "1", "--json",
                  "--accept-inconclusive")
    doc = json.loads(done.stdout)
    assert doc["result"] == "succeeded"
    assert [s["weights"] for s in doc["steps"]] == [{"blue": 50, "green": 50}, {"blue": 0, "green": 100}]
    assert _weights(rel) == Weights(0, 100)
    text = _file(rel)
    assert "active_color: green" in text
    assert "# Which color serves production traffic (a GitOps pull request changes this line)." in text
    assert "bake_seconds: 22 # short on the embedded AWS; production bakes for minutes" in text
    record = _last_record(rel)
    assert (record.operation, record.result, record.from_color, record.to_color) == ("switch", "succeeded",
                                                                                    "blue", "green")
    assert record.details["steps"] == [50, 100]
    # the last step already rendered what the file now says: nothing left to apply
    assert rel.run("plan", ENV, "--layer", "traffic").returncode == 0


def test_rollback_restores_the_previous_color(rel: Project) -> None:
    rel.ok("rollback", ENV, "--yes")
    assert _weights(rel) == Weights(100, 0)
    assert "active_color: blue" in _file(rel)
    record = _last_record(rel)
    assert (record.operation, record.result, record.to_color) == ("rollback", "succeeded", "blue")


def _production_url(project: Project) -> str:
    doc = json.loads(project.ok("local", "status", "--env", ENV, "--json").stdout)
    return str(doc["listeners"]["80"])


def _visit(url: str, cookie: str | None) -> dict:
    cookies = {COOKIE: cookie} if cookie else {}
    answer = requests.get(f"{url}/session", cookies=cookies, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_session_goes_on_across_a_switch_and_a_rollback(rel: Project) -> None:
    """The base layer's session table outlives either color: the session a user started on blue is
    the one green answers after the switch, and blue again after the rollback."""
    url = _production_url(rel)
    started = _visit(url, None)
    assert started["served_by"]["color"] == "blue" and started["new"], started
    session = started["session"]

    rel.ok("switch", ENV, *FAST)
    on_green = _visit(url, session)
    assert on_green["served_by"]["color"] == "green", on_green
    assert (on_green["session"], on_green["new"], on_green["started_on"]["color"]) == (session, False, "blue")

    rel.ok("rollback", ENV, "--yes")
    back = _visit(url, session)
    assert (back["served_by"]["color"], back["session"], back["new"]) == ("blue", session, False), back
    assert back["hits"] == on_green["hits"] + 1


def test_alarm_during_bake_restores_and_a_second_switch_meets_the_lock(rel: Project) -> None:
    alarm = f"bgtool-{ENV}-green-5xx"
    cloudwatch = _aws(rel).client("cloudwatch")
    proc = subprocess.Popen(
        [BGTOOL, "switch", ENV, "--steps", "10,100", "--yes", "--bake", "120", "--monitor", "0", "--json",
         "--accept-inconclusive"],
        cwd=rel.root, env=rel.env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    try:
        _wait_for(lambda: _weights(rel) == Weights(90, 10), 120, proc)
        started = time.monotonic()
        second = rel.run("switch", ENV, *FAST)
        assert second.returncode == 1
        assert time.monotonic() - started < 15
        assert "is locked" in second.stderr and "switch blue -> green" in second.stderr, second.stderr
        cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="injected by test")
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
        cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="test done")
    assert proc.returncode == 1, err
    doc = json.loads(out)
    assert doc["result"] == "rolled-back" and alarm in doc["reason"], doc
    assert _weights(rel) == Weights(100, 0)
    assert "active_color: blue" in _file(rel)
    record = _last_record(rel)
    assert record.result == "rolled-back" and "ALARM" in record.reason and alarm in record.reason


def _wait_for(condition, seconds: float, proc: subprocess.Popen[str]) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        assert proc.poll() is None, f"switch ended early: {proc.communicate()}"
        time.sleep(0.3)
    raise AssertionError("the first step's weights never showed up")


def test_apply_after_editing_active_color_switches(rel: Project) -> None:
    edit_yaml(rel.root / "environments" / f"{ENV}.yaml", "active_color: blue", "active_color: green")
    done = rel.ok("apply", ENV, "--yes", "--json", "--accept-inconclusive")
    layers = {lr["layer"]: lr["status"] for lr in json.loads(done.stdout)["layers"]}
    assert layers["traffic"] == "delegated"
    assert _weights(rel) == Weights(0, 100)
    record = _last_record(rel)
    assert (record.operation, record.result, record.to_color) == ("switch", "succeeded", "green")
    assert record.details["trigger"] == "apply"


def test_break_glass_rollback_leaves_no_drift(rel: Project) -> None:
    done = rel.ok("rollback", ENV, "--yes", "--break-glass", "--json")
    doc = json.loads(done.stdout)
    assert doc["flip"]["flip_seconds"] > 0  # how fast is bench/switch.py's business
    assert doc["reconcile"]["ok"] is True
    assert "flipped to 100% blue" in done.stderr
    assert _weights(rel) == Weights(100, 0)
    assert "active_color: blue" in _file(rel)
    plan = rel.run("plan", ENV, "--layer", "traffic")
    assert plan.returncode == 0, plan.stderr

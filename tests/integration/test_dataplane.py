"""The local data plane for real: HAProxy, one process per instance, the real terraform binary.

Part one uses an environment of its own (`dpl`), applied once: listeners served on loopback, a
switch under steady traffic, a killed target seen by the health checks and the gate. Part two
runs a second, throwaway embedded AWS with a stack made by boto3 alone (no Terraform, seconds), for
what must not touch the session's server: a weight change's delay, a moto reset, an application
command that exits at once, `local up` on a busy port and `local down` leaving nothing behind.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from bgtool.embedded import server as embedded
from tests.helpers import copy_project, edit_yaml
from tests.integration.conftest import BGTOOL, Project, free_port
from tests.integration.stack import Stack, clients, create_stack
from tests.integration.traffic import Traffic

ENV = "local"
RELOADS = 12


def eventually(check: Callable[[], Any], seconds: float, what: str, every: float = 0.1) -> Any:
    deadline = time.monotonic() + seconds
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"not within {seconds} s: {what} (last: {last!r})")


def status(project: Project, env: str = ENV) -> dict[str, Any]:
    return json.loads(project.ok("local", "status", "--env", env, "--json").stdout)


def version_at(url: str) -> str:
    return requests.get(f"{url}/version", timeout=5).text.strip()


def answer_at(url: str) -> str:
    """The version URL serves, or what went wrong, for waiting on a listener that is coming up."""
    try:
        return version_at(url)
    except requests.RequestException as exc:
        return type(exc).__name__


@pytest.fixture(scope="module")
def dpl(applied: Project) -> Project:
    applied.ok("deploy", ENV, "1.1.0", "--yes", timeout=900)
    return applied


def test_listeners_are_served_on_loopback(dpl: Project) -> None:
    doc = status(dpl)
    assert set(doc["listeners"]) == {"80", "8080"}, doc["listeners"]
    assert version_at(doc["listeners"]["80"]) == "1.0.0"  # production: blue
    assert version_at(doc["listeners"]["8080"]) == "1.1.0"  # test listener: the idle green
    expected = [("blue", "1.0.0"), ("blue", "1.0.0"), ("green", "1.1.0"), ("green", "1.1.0")]

    def settled() -> list[dict[str, Any]] | None:
        """The processes of the instances the deploy replaced drain for a moment, then stop."""
        mine = [t for t in status(dpl)["targets"] if t["env"] == ENV]
        return mine if sorted((t["color"], t["version"]) for t in mine) == expected else None

    mine = eventually(settled, 60, "only the current instances' processes", every=1)
    assert all(t["pid"] and list(t["health"].values()) == ["healthy"] for t in mine), mine


def test_gate_smoke_and_host_checks_run_against_the_processes(dpl: Project) -> None:
    doc = json.loads(dpl.ok("verify", ENV, "--json").stdout)
    checks = {c["name"]: c for c in doc["checks"]}
    assert checks["smoke /version"]["passed"] and "1.1.0" in checks["smoke /version"]["evidence"], checks
    host = next(c for name, c in checks.items() if name.startswith("host checks"))
    assert host["passed"], host


def test_an_instance_stopped_and_started_again_serves_what_it_was_launched_with(dpl: Project) -> None:
    """After the deploy of 1.1.0 to green, a stop and start of green's instances brings their processes
    back at 1.1.0 (the instance's own launch), never at an earlier version of the color."""
    ec2 = dpl.aws(ENV).client("ec2")
    green = [t["instance_id"] for t in status(dpl)["targets"] if t["env"] == ENV and t["color"] == "green"]
    assert len(green) == 2
    ec2.stop_instances(InstanceIds=green)
    eventually(lambda: not [t for t in status(dpl)["targets"] if t["instance_id"] in green and t["pid"]], 60,
               "the stopped instances' processes gone", every=0.5)
    ec2.start_instances(InstanceIds=green)

    def back() -> list[dict[str, Any]] | None:
        mine = [t for t in status(dpl)["targets"] if t["instance_id"] in green]
        healthy = len(mine) == 2 and all(t["pid"] and set(t["health"].values()) == {"healthy"} for t in mine)
        return mine if healthy else None

    mine = eventually(back, 90, "both green instances serving again", every=0.5)
    assert {t["version"] for t in mine} == {"1.1.0"}, mine
    assert {version_at(status(dpl)["listeners"]["8080"]) for _ in range(10)} == {"1.1.0"}


def _shares(answers: list[tuple[int, str]], version: str, window: int) -> list[float]:
    return [sum(1 for _, v in answers[i:i + window] if v == version) / window
            for i in range(0, len(answers) - window + 1, window // 2)]


def test_switch_under_steady_traffic_moves_the_share_step_by_step(dpl: Project) -> None:
    url = status(dpl)["listeners"]["80"]
    with Traffic(url) as traffic:
        time.sleep(1)
        dpl.ok("switch", ENV, "--steps", "10,50,100", "--bake", "4", "--monitor", "0", "--yes",
               "--accept-inconclusive", timeout=900)
        time.sleep(1)
    answers = traffic.answers
    failed = [a for a in answers if a[0] != 200]
    assert not failed, f"{len(failed)} of {len(answers)} requests failed during the switch: {failed[:5]}"
    assert answers[0][1] == "1.0.0" and answers[-1][1] == "1.1.0"
    shares = _shares(answers, "1.1.0", 60)
    assert any(0.0 < s <= 0.3 for s in shares), f"no window near the 10% step: {shares}"
    assert any(0.3 < s < 0.75 for s in shares), f"no window near the 50% step: {shares}"
    first_full = next(i for i, s in enumerate(shares) if s == 1.0)
    assert all(s < 1.0 for s in shares[:first_full]) and min(shares[first_full:]) > 0.9


def _describe(project: Project, instance: str) -> dict[str, str]:
    aws = project.aws(ENV)
    elb = aws.client("elbv2")
    for tg in elb.describe_target_groups(Names=[f"bgtool-{ENV}-blue", f"bgtool-{ENV}-green"])["TargetGroups"]:
        for d in elb.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])["TargetHealthDescriptions"]:
            if d["Target"]["Id"] == instance:
                return d["TargetHealth"]
    return {}


def test_a_killed_target_turns_unhealthy_the_gate_names_it_and_a_restart_heals_it(dpl: Project) -> None:
    blue = [t for t in status(dpl)["targets"] if t["env"] == ENV and t["color"] == "blue"]
    victim = blue[0]
    os.kill(victim["pid"], 9)
    # Interval 10 s, unhealthy threshold 2: the first failed check comes within 10 s, the second a second
    # later (HAProxy's fastinter while a target changes state).
    health = eventually(lambda: (h := _describe(dpl, victim["instance_id"])).get("State") == "unhealthy" and h,
                        60, "the killed target reported unhealthy", every=0.5)
    assert health["Reason"] == "Target.FailedHealthChecks" and victim["log"] in health["Description"]
    done = dpl.run("verify", ENV, "--color", "blue", "--json")
    assert done.returncode == 1
    failed = [c for c in json.loads(done.stdout)["checks"] if not c["passed"]]
    assert any(victim["instance_id"] in c["evidence"] for c in failed), failed
    dpl.ok("local", "restart")
    eventually(lambda: _describe(dpl, victim["instance_id"]).get("State") == "healthy", 60,
               "the restarted target healthy again", every=0.5)


# ------------------------------------------------------------------------------------------------
# A throwaway embedded AWS, driven by boto3 alone
# ------------------------------------------------------------------------------------------------


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, Stack]]:
    root = copy_project(tmp_path_factory.mktemp("scratch"))
    (root / "environments/scr.yaml").write_text((root / "environments/local.yaml").read_text()
                                                .replace("name: bgtool-local", "name: scr"))
    info, _ = embedded.up(root, free_port())
    project = Project(root, info.endpoint)
    try:
        stack = create_stack(info.endpoint, "scr", "scr", {"blue": "1.0.0", "green": "2.0.0"})
        yield project, stack
    finally:
        embedded.down(root)


def _urls(project: Project) -> dict[str, str]:
    def served() -> dict[str, str] | None:
        doc = status(project, "scr")
        ready = len(doc["targets"]) == 4 and all(t["ready"] for t in doc["targets"])
        return doc["listeners"] if len(doc["listeners"]) == 2 and ready else None

    urls = eventually(served, 30, "both listeners and four targets served", every=0.3)
    # ready targets first, then HAProxy's health checks see them up: serving follows within a few checks
    eventually(lambda: all(re.fullmatch(r"\d+\.\d+\.\d+", answer_at(u)) for u in urls.values()), 20,
               "both listeners answering with a version", every=0.2)
    return urls


def test_a_weight_change_through_the_api_reaches_haproxy(scratch: tuple[Project, Stack]) -> None:
    project, stack = scratch
    url = _urls(project)["80"]
    assert version_at(url) == "1.0.0"
    elb = clients(project.endpoint)["elbv2"]
    elb.modify_listener(ListenerArn=stack.production_arn, DefaultActions=stack.forward(0, 100))
    # How fast is bench/dataplane.py's business (a loaded machine makes any bound here flaky); this
    # test holds that the change arrives at all and that nothing answers stale after it.
    eventually(lambda: version_at(url) == "2.0.0", 20, "green answering after the weight change", every=0.02)
    seen = {version_at(url) for _ in range(20)}
    assert seen == {"2.0.0"}
    elb.modify_listener(ListenerArn=stack.production_arn, DefaultActions=stack.forward(100, 0))
    eventually(lambda: version_at(url) == "1.0.0", 20, "blue answering again")


def test_a_reload_loses_no_request_on_a_kept_alive_connection(scratch: tuple[Project, Stack]) -> None:
    """The test listener moving to the other group changes HAProxy's shape (a seamless reload, as at a
    switch's last step). Clients of the production listener keep their connections open meanwhile, and
    an ALB's clients never see a listener change: not one request of theirs may fail."""
    project, stack = scratch
    urls = _urls(project)
    elb = clients(project.endpoint)["elbv2"]
    with Traffic(urls["80"], workers=4, pause=0) as traffic:
        for turn in range(RELOADS):
            color, version = ("blue", "1.0.0") if turn % 2 == 0 else ("green", "2.0.0")
            elb.modify_listener(ListenerArn=stack.test_arn,
                                DefaultActions=[{"Type": "forward", "TargetGroupArn": stack.groups[color]}])
            eventually(lambda v=version: answer_at(urls["8080"]) == v, 20, f"the test listener on {color}")
            time.sleep(0.5)  # the old worker closes its connections after the reload
    failed = [a for a in traffic.answers if a[0] != 200]
    assert len(traffic.answers) > 100 and not failed, \
        f"{len(failed)} of {len(traffic.answers)} requests failed across {RELOADS} reloads: {failed[:5]}"


def test_a_group_whose_targets_are_all_unhealthy_fails_open_as_an_alb_does(scratch: tuple[Project, Stack]) -> None:
    """Health checks on a path the processes do not serve: every green target turns unhealthy, and the
    test listener (green only) still routes to them, as an ALB does, instead of answering 503."""
    project, stack = scratch
    urls = _urls(project)
    elb = clients(project.endpoint)["elbv2"]

    def states() -> set[str]:
        found = elb.describe_target_health(TargetGroupArn=stack.groups["green"])["TargetHealthDescriptions"]
        return {d["TargetHealth"]["State"] for d in found}

    elb.modify_target_group(TargetGroupArn=stack.groups["green"], HealthCheckPath="/not-served")
    try:
        eventually(lambda: states() == {"unhealthy"}, 60, "every green target unhealthy", every=0.5)
        answers = [answer_at(urls["8080"]) for _ in range(20)]
        assert answers == ["2.0.0"] * 20, answers
    finally:
        elb.modify_target_group(TargetGroupArn=stack.groups["green"], HealthCheckPath="/health")
    eventually(lambda: states() == {"healthy"}, 60, "green healthy again", every=0.5)


def test_a_moto_reset_empties_the_data_plane_and_it_serves_again(scratch: tuple[Project, Stack]) -> None:
    project, _ = scratch
    _urls(project)
    requests.post(f"{project.endpoint}/moto-api/reset", timeout=10)
    eventually(lambda: not status(project, "scr")["targets"], 15, "every target process stopped after the reset")
    create_stack(project.endpoint, "scr", "scr", {"blue": "3.0.0", "green": "4.0.0"})
    url = _urls(project)["80"]
    # ready targets first, then HAProxy's health checks see them up: serving follows within a few checks
    eventually(lambda: answer_at(url) == "3.0.0", 20, "blue serving on the new stack", every=0.2)


def test_an_app_command_that_exits_at_once_is_reported_with_its_log(scratch: tuple[Project, Stack]) -> None:
    project, _ = scratch
    env = project.root / "environments/scr.yaml"
    edit_yaml(env, "local:\n", "local:\n  app_command: python3 -c 'import sys; sys.exit(3)' {port}\n")
    try:
        time.sleep(6)  # the daemon re-reads environment files every few seconds
        c = clients(project.endpoint)
        c["autoscaling"].set_desired_capacity(AutoScalingGroupName="scr-green", DesiredCapacity=3)
        instances = {i["InstanceId"] for i in c["autoscaling"].describe_auto_scaling_groups(
            AutoScalingGroupNames=["scr-green"])["AutoScalingGroups"][0]["Instances"]}

        def broken() -> dict[str, Any] | None:
            elb = c["elbv2"]
            for d in elb.describe_target_health(TargetGroupArn=stack_green(project))["TargetHealthDescriptions"]:
                if d["TargetHealth"]["State"] == "unhealthy" and d["Target"]["Id"] in instances:
                    return d["TargetHealth"]
            return None

        health = eventually(broken, 20, "the new target reported unhealthy")
        assert "exited at start with code 3" in health["Description"] and ".log" in health["Description"]
        problems = status(project, "scr")["problems"]
        assert any("exited at start with code 3" in p for p in problems), problems
    finally:
        env.write_text(env.read_text().replace("  app_command: python3 -c 'import sys; sys.exit(3)' {port}\n", ""))


def stack_green(project: Project) -> str:
    elb = clients(project.endpoint)["elbv2"]
    return elb.describe_target_groups(Names=["scr-green"])["TargetGroups"][0]["TargetGroupArn"]


def test_local_up_on_a_busy_port_fails_and_leaves_nothing(tmp_path: Path) -> None:
    root = copy_project(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run([BGTOOL, "local", "up", "--port", str(port)], cwd=root, text=True, capture_output=True,
                              env={**os.environ, "BGTOOL_ROOT": str(root)}, timeout=120)
    assert done.returncode == 1
    assert f"port {port}" in done.stderr and "in use" in done.stderr, done.stderr
    assert embedded.status(root) is None


def test_local_down_leaves_no_process_and_nothing_listening(tmp_path: Path) -> None:
    root = copy_project(tmp_path)
    port = free_port()
    env = {**os.environ, "BGTOOL_ROOT": str(root)}
    started = subprocess.run([BGTOOL, "local", "up", "--port", str(port)], cwd=root, env=env, timeout=120,
                             capture_output=True, text=True)
    assert started.returncode == 0, started.stderr
    project = Project(root, f"http://127.0.0.1:{port}")
    create_stack(project.endpoint, "scr", "scr", {"blue": "1.0.0", "green": "2.0.0"})
    (root / "environments/scr.yaml").write_text((root / "environments/local.yaml").read_text()
                                                .replace("name: bgtool-local", "name: scr"))
    urls = _urls(project)
    doc = status(project, "scr")
    pids = [doc["pid"], doc["haproxy"]["pid"], *(t["pid"] for t in doc["targets"])]
    ports = [port, *(int(u.rsplit(":", 1)[1]) for u in urls.values()), *(t["port"] for t in doc["targets"])]
    assert all(_alive(p) for p in pids) and all(_listening(p) for p in ports)
    subprocess.run([BGTOOL, "local", "down"], cwd=root, env=env, check=True, timeout=60, capture_output=True)
    assert [p for p in pids if _alive(p)] == []
    assert [p for p in ports if _listening(p)] == []
    gone = subprocess.run([BGTOOL, "local", "status"], cwd=root, env=env, capture_output=True, timeout=60)
    assert gone.returncode == 1

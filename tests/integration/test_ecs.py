"""app.compute ecs on the embedded AWS with the real terraform binary: the data plane runs the tasks.

`local-ecs` is applied once on this module's own embedded AWS; the tests run in file order. Each
color is an ECS service whose tasks are processes on loopback addresses of their own, registered as
`ip` targets; what is checked is what a person sees: answers through the listeners, `bgtool status`,
the ECS API, a deploy that replaces the idle color's tasks while the live one serves, a switch and a
break-glass rollback under a steady request stream without one failed request, a session started on
blue going on on green and on blue again (the session table both colors' tasks share), each color's
workers (an ECS service of their own) moving with production without losing a message, a clean
drift check, the tasks of a saved environment running again after a restore, and the idle service
retired to no task while production keeps answering.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from bgtool.embedded.dataplane import listener_urls, read_state
from bgtool.embedded.sessions import COOKIE
from tests.integration.conftest import Project, free_port
from tests.integration.traffic import Sender, Traffic

ENV = "local-ecs"
NAME = "bgtool-ecs"


RECORD = f".bgtool/worker-record-{ENV}.jsonl"


@pytest.fixture(scope="module")
def ecs(project: Project) -> Project:
    path = project.root / f"environments/{ENV}.yaml"
    # Each color's workers (an ECS service of their own) record what they process.
    path.write_text(path.read_text().replace("--worker {worker}", f"--worker {{worker}} --record {RECORD}", 1))
    if project.run("apply", ENV, "--yes", timeout=1500).returncode != 0:  # a dropped connection: once more
        project.ok("apply", ENV, "--yes", timeout=1500)
    return project


def _workers_of(project: Project, color: str) -> list[dict[str, Any]]:
    doc = read_state(project.root) or {}
    return [w for w in doc.get("workers", []) if w.get("env") == ENV and w.get("color") == color and w.get("alive")]


def _processed(project: Project) -> set[str]:
    path = project.root / RECORD
    lines = path.read_text().splitlines() if path.exists() else []
    return {json.loads(line)["body"] for line in lines if line.strip()}


def _urls(project: Project) -> dict[int, str]:
    return listener_urls(read_state(project.root) or {}, NAME)


def _status(project: Project) -> dict[str, Any]:
    return json.loads(project.ok("status", ENV, "--json").stdout)


def _tasks(project: Project, color: str) -> list[dict[str, Any]]:
    client = project.aws(ENV).client("ecs")
    arns = client.list_tasks(cluster=NAME, serviceName=f"{NAME}-{color}")["taskArns"]
    tasks = client.describe_tasks(cluster=NAME, tasks=arns)["tasks"] if arns else []
    return [t for t in tasks if t["group"] == f"service:{NAME}-{color}"]


def _addresses(tasks: list[dict[str, Any]]) -> set[str]:
    return {d["value"] for t in tasks for a in t["attachments"] for d in a["details"]
            if d["name"] == "privateIPv4Address"}


def _until(what: str, check: Any, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        time.sleep(1)


def _serving(project: Project, color: str, version: str) -> dict[str, Any] | None:
    doc = _status(project)["colors"][color]
    done = (doc["versions_live"] == [version] and doc["in_service"] == doc["desired"] == 2
            and doc["healthy_targets"] == doc["targets"] == 2)
    return doc if done else None


def test_apply_runs_each_colors_tasks_behind_the_listeners(ecs: Project) -> None:
    for color in ("blue", "green"):
        _until(f"{color} serving 1.0.0", lambda c=color: _serving(ecs, c, "1.0.0"))
    running = {color: [t for t in _tasks(ecs, color) if t["lastStatus"] == "RUNNING"] for color in ("blue", "green")}
    addresses = {color: _addresses(tasks) for color, tasks in running.items()}
    assert all(len(a) == 2 and all(x.startswith("127.") for x in a) for a in addresses.values()), addresses
    assert addresses["blue"].isdisjoint(addresses["green"])
    service = ecs.aws(ENV).client("ecs").describe_services(cluster=NAME, services=[f"{NAME}-blue"])["services"][0]
    assert (service["desiredCount"], service["runningCount"]) == (2, 2)
    assert [d["rolloutState"] for d in service["deployments"]] == ["COMPLETED"]
    workers = ecs.aws(ENV).client("ecs").describe_services(
        cluster=NAME, services=[f"{NAME}-blue-workers", f"{NAME}-green-workers"])["services"]
    assert {w["serviceName"]: w["desiredCount"] for w in workers} == {f"{NAME}-blue-workers": 1,
                                                                       f"{NAME}-green-workers": 0}
    assert all(not w["loadBalancers"] for w in workers)  # workers are in no target group
    _until("blue's worker task", lambda: len(_workers_of(ecs, "blue")) == 1)
    assert _workers_of(ecs, "green") == []

    urls = _urls(ecs)
    assert requests.get(f"{urls[80]}/version", timeout=10).text.strip() == "1.0.0"
    assert "blue" in requests.get(f"{urls[80]}/", timeout=10).text  # production: the active color
    assert "green" in requests.get(f"{urls[8080]}/", timeout=10).text  # the test listener: the idle one
    for color, found in addresses.items():  # each task answers on its own address and the container port
        for address in found:
            assert requests.get(f"http://{address}:8000/version", timeout=10).text.strip() == "1.0.0"
            assert color in requests.get(f"http://{address}:8000/", timeout=10).text


def test_status_shows_each_colors_service_and_tasks(ecs: Project) -> None:
    doc = _status(ecs)
    assert doc["live_color"] == "blue"
    for color in ("blue", "green"):
        shown = doc["colors"][color]
        assert shown["asg_names"] == [f"{NAME}-{color}"]
        assert shown["task_definition"] == f"{NAME}-{color}:1"
        assert shown["image"] == "public.ecr.aws/bgtool/sample-app:1.0.0"
        assert (shown["desired"], shown["in_service"], shown["healthy_targets"]) == (2, 2, 2)
    done = ecs.ok("status", ENV)
    text = done.stderr + done.stdout
    for color in ("blue", "green"):  # the ECS services table names each service, its revision and image
        assert re.search(rf"{NAME}-{color} .* {NAME}-{color}:1 .*/sample-app:1\.0\.0 .* 2/2 ", text), text


def test_deploy_replaces_the_idle_colors_tasks_while_the_live_one_serves(ecs: Project) -> None:
    before = _addresses([t for t in _tasks(ecs, "green") if t["lastStatus"] == "RUNNING"])
    with Traffic(_urls(ecs)[80], workers=2, pause=0.02) as traffic:
        done = ecs.ok("deploy", ENV, "1.1.0", "--yes", "--json", timeout=600)
        time.sleep(1)
    assert json.loads(done.stdout)["color"] == "green"
    assert traffic.answers and set(traffic.answers) == {(200, "1.0.0")}, sorted(set(traffic.answers))[:5]
    shown = _serving(ecs, "green", "1.1.0")
    assert shown is not None and shown["task_definition"] == f"{NAME}-green:2", _status(ecs)["colors"]["green"]
    tasks = _tasks(ecs, "green")
    now = _addresses([t for t in tasks if t["lastStatus"] == "RUNNING"])
    assert len(now) == 2 and now.isdisjoint(before)  # new tasks (started before the old ones stopped)
    stopped = [t for t in tasks if t["lastStatus"] == "STOPPED"]
    assert {t["taskDefinitionArn"].rsplit("/", 1)[-1] for t in stopped} == {f"{NAME}-green:1"}
    assert requests.get(f"{_urls(ecs)[8080]}/version", timeout=10).text.strip() == "1.1.0"
    assert _serving(ecs, "blue", "1.0.0") is not None


SESSION: dict[str, Any] = {}
"""The session a user started on blue before the switch (the next tests visit it again)."""


def _visit(project: Project, cookie: str | None = None) -> dict[str, Any]:
    answer = requests.get(f"{_urls(project)[80]}/session", cookies={COOKIE: cookie} if cookie else {}, timeout=10)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_verify_and_switch_under_a_steady_stream_lose_no_request(ecs: Project) -> None:
    started = _visit(ecs)
    assert started["served_by"]["color"] == "blue" and started["new"], started
    SESSION.update(started)
    ecs.ok("verify", ENV)
    sqs = ecs.aws(ENV).client("sqs")
    queue = sqs.get_queue_url(QueueName=f"{NAME}-orders")["QueueUrl"]
    with Traffic(_urls(ecs)[80], workers=2, pause=0.02) as traffic, Sender(sqs, queue) as sender:
        switched = ecs.run("switch", ENV, "--yes", "--json", timeout=900)
        time.sleep(1)
    assert switched.returncode == 0, switched.stderr + switched.stdout
    outcome = json.loads(switched.stdout)
    assert outcome["result"] == "succeeded"
    deployment = next(c for c in outcome["gate"]["checks"] if c["name"] == "deployment")
    assert deployment["passed"] and deployment["evidence"].endswith(": COMPLETED"), deployment
    # The workers moved with production (exclusive: blue's worker task stopped before green's started),
    # and every message sent meanwhile was processed.
    assert [(s["action"], s["color"]) for s in outcome["workers"]["steps"]] == [("stop", "blue"), ("start", "green")]
    assert _workers_of(ecs, "blue") == [] and len(_workers_of(ecs, "green")) == 1
    _until("every message processed", lambda: set(sender.sent) <= _processed(ecs), timeout=300)
    failed = [a for a in traffic.answers if a[0] != 200]
    assert traffic.answers and failed == [], failed[:5]
    assert {v for _, v in traffic.answers} == {"1.0.0", "1.1.0"}
    assert traffic.answers[-1] == (200, "1.1.0")
    assert _status(ecs)["live_color"] == "green"
    on_green = _visit(ecs, SESSION["session"])  # the tasks of both colors share the session table
    assert on_green["served_by"]["color"] == "green", on_green
    assert (on_green["session"], on_green["new"]) == (SESSION["session"], False)
    assert on_green["started_on"]["color"] == "blue", on_green
    SESSION.update(on_green)


def test_break_glass_rollback_sends_production_back_to_blue_without_losing_a_request(ecs: Project) -> None:
    with Traffic(_urls(ecs)[80], workers=2, pause=0.02) as traffic:
        done = ecs.run("rollback", ENV, "--break-glass", "--yes", "--json", timeout=600)
        time.sleep(1)
    assert done.returncode == 0, done.stderr + done.stdout
    doc = json.loads(done.stdout)
    assert doc["flip"] is not None and doc["to_color"] == "blue" and doc["result"] == "succeeded", doc
    assert [(s["action"], s["color"]) for s in doc["workers"]["steps"]] == [("stop", "green"), ("start", "blue")]
    failed = [a for a in traffic.answers if a[0] != 200]
    assert traffic.answers and failed == [], failed[:5]
    assert traffic.answers[-1] == (200, "1.0.0")
    assert _status(ecs)["live_color"] == "blue"
    assert "active_color: blue" in (ecs.root / f"environments/{ENV}.yaml").read_text()
    back = _visit(ecs, SESSION["session"])
    assert (back["served_by"]["color"], back["session"], back["new"]) == ("blue", SESSION["session"], False), back
    assert back["hits"] == SESSION["hits"] + 1


def test_drift_reports_no_error(ecs: Project) -> None:
    done = ecs.run("drift", ENV, "--json", timeout=600)
    doc = json.loads(done.stdout)
    (env,) = doc["environments"]
    assert env["errors"] == [] and done.returncode in (0, 2), done.stderr
    assert done.returncode == 0, env


def test_live_parity_compares_the_two_services_and_finds_a_hand_change(ecs: Project,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from bgtool.drift.collect import Checker
    from bgtool.terraform.workspace import Workspace

    monkeypatch.setenv("BGTOOL_AWS_ENDPOINT", ecs.endpoint)
    ws = Workspace(ecs.root, ENV)
    checker = Checker(ecs.root)
    assert checker._live_parity(ws) == []  # blue 1.0.0 (revision 1) and green 1.1.0 (revision 2): the same beyond that
    client = ecs.aws(ENV).client("ecs")
    client.update_service(cluster=NAME, service=f"{NAME}-green", healthCheckGracePeriodSeconds=7)
    try:
        (item,) = checker._live_parity(ws)
        assert item.subject == "live blue vs green task definition and ECS service", item
        assert [c.attribute for c in item.changes] == ["service.healthCheckGracePeriodSeconds"], item.changes
    finally:
        grace = client.describe_services(cluster=NAME, services=[f"{NAME}-blue"])["services"][0]
        client.update_service(cluster=NAME, service=f"{NAME}-green",
                              healthCheckGracePeriodSeconds=grace["healthCheckGracePeriodSeconds"])
    assert checker._live_parity(ws) == []


def test_saved_tasks_run_again_after_a_restore_beside_the_original(ecs: Project, tmp_path: Path) -> None:
    from bgtool.embedded import server as embedded
    from tests.helpers import copy_project

    archive = tmp_path / "ecs.tar.gz"
    ecs.ok("local", "save", str(archive))
    root = copy_project(tmp_path / "second")
    port = free_port()
    second = Project(root, f"http://127.0.0.1:{port}")
    try:
        second.ok("local", "restore", str(archive), "--port", str(port))
        for color, version in (("green", "1.1.0"), ("blue", "1.0.0")):
            _until(f"restored {color}", lambda c=color, v=version: _serving(second, c, v))
        # The saved tasks' addresses are still held by the original's running tasks: the restored ones
        # run on others (a stopped task's address is free again, whoever had it).
        theirs = _addresses([t for t in _tasks(second, "green") if t["lastStatus"] == "RUNNING"])
        client = ecs.aws(ENV).client("ecs")  # every task of the original's cluster: both colors and workers
        arns = client.list_tasks(cluster=NAME, desiredStatus="RUNNING")["taskArns"]
        ours = _addresses([t for t in client.describe_tasks(cluster=NAME, tasks=arns)["tasks"]
                           if t["desiredStatus"] == "RUNNING"])
        assert len(theirs) == 2 and theirs.isdisjoint(ours), (theirs, ours)
        assert requests.get(f"{_urls(second)[80]}/version", timeout=10).text.strip() == "1.0.0"
        assert requests.get(f"{_urls(second)[8080]}/version", timeout=10).text.strip() == "1.1.0"
        assert requests.get(f"{_urls(ecs)[80]}/version", timeout=10).text.strip() == "1.0.0"
    finally:
        embedded.down(root)


def test_retire_scales_the_idle_service_to_no_task_while_production_serves(ecs: Project) -> None:
    with Traffic(_urls(ecs)[80], workers=2, pause=0.02) as traffic:
        done = ecs.run("retire", ENV, "--force", "--yes", "--json", timeout=600)
        time.sleep(1)
    assert done.returncode == 0, done.stderr + done.stdout
    assert json.loads(done.stdout)["color"] == "green"
    assert traffic.answers and set(traffic.answers) == {(200, "1.0.0")}, sorted(set(traffic.answers))[:5]
    shown = _status(ecs)["colors"]["green"]
    assert (shown["desired"], shown["in_service"], shown["targets"]) == (0, 0, 0), shown
    service = ecs.aws(ENV).client("ecs").describe_services(cluster=NAME, services=[f"{NAME}-green"])["services"][0]
    assert (service["desiredCount"], service["runningCount"]) == (0, 0)
    assert all(t["lastStatus"] == "STOPPED" for t in _tasks(ecs, "green"))
    assert "retired: true" in (ecs.root / f"environments/{ENV}.yaml").read_text()
    assert _serving(ecs, "blue", "1.0.0") is not None

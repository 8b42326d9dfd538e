"""Apply `local` with the real terraform binary on the embedded AWS, then check AWS with boto3.

`applied` is `local` as the run's one apply left it, saved and restored into a project of this
module's own (`bgtool local save` / `local restore`): what these tests see of it is what an apply
leaves behind, and the last tests here hold the restore to that.
"""

from __future__ import annotations

import json
from pathlib import Path

import requests

from bgtool.aws.live import color_live, read_live, target_group_arns
from bgtool.config.dashboard import dashboard_name
from bgtool.embedded import server as embedded
from bgtool.embedded.dataplane import listener_urls, read_state
from tests.helpers import copy_project, edit_yaml
from tests.integration.conftest import Project, free_port


def test_embedded_aws_up_twice_is_harmless(project: Project) -> None:
    info = embedded.status(project.root)
    assert info is not None
    again = project.ok("local", "up", "--port", str(info.port), "--json")
    assert json.loads(again.stdout)["started"] is False
    assert embedded.status(project.root) == info
    status = project.ok("local", "status", "--json")
    assert json.loads(status.stdout)["port"] == info.port


def test_apply_creates_both_colors_behind_one_alb(applied: Project) -> None:
    aws = applied.aws()
    elbv2 = aws.client("elbv2")
    (alb,) = elbv2.describe_load_balancers(Names=["bgtool-local"])["LoadBalancers"]
    groups = elbv2.describe_target_groups(Names=["bgtool-local-blue", "bgtool-local-green"])["TargetGroups"]
    assert {g["TargetGroupName"] for g in groups} == {"bgtool-local-blue", "bgtool-local-green"}
    for group in groups:
        health = elbv2.describe_target_health(TargetGroupArn=group["TargetGroupArn"])
        states = [d["TargetHealth"]["State"] for d in health["TargetHealthDescriptions"]]
        assert states == ["healthy", "healthy"], group["TargetGroupName"]
    every_asg = aws.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
    asgs = [g for g in every_asg if {"Key": "bgtool:env", "Value": "local"} in
            [{"Key": t["Key"], "Value": t["Value"]} for t in g["Tags"]]]
    colors = sorted(t["Value"] for g in asgs for t in g["Tags"] if t["Key"] == "bgtool:color")
    assert colors == ["blue", "green"]
    assert all(len(g["Instances"]) == 2 for g in asgs)

    tg_arns = target_group_arns(aws, aws.config)
    live = read_live(aws, aws.config, lambda c: color_live(aws, aws.config, "local", c, tg_arns.get(c.value)))
    assert live.listener(80).weights == {"blue": 100, "green": 0}
    assert live.listener(8080).weights == {"blue": 0, "green": 100}
    assert live.alb_dns_name == alb["DNSName"]
    assert all(len(live.colors[c].alarms) == 3 for c in ("blue", "green"))


def test_second_plan_shows_no_changes(applied: Project) -> None:
    done = applied.run("plan", "local", "--json")
    assert done.returncode == 0, done.stderr
    layers = json.loads(done.stdout)["layers"]
    assert [(lp["layer"], lp["status"]) for lp in layers] == [
        ("base", "no-changes"), ("blue", "no-changes"), ("green", "no-changes"), ("traffic", "no-changes")]


def test_status_reports_file_and_live_weights(applied: Project) -> None:
    doc = json.loads(applied.ok("status", "local", "--json").stdout)
    assert doc["active_color_in_file"] == "blue" and doc["live_color"] == "blue"
    assert doc["file_matches_live"] is True
    assert doc["colors"]["green"]["healthy_targets"] == 2 and doc["colors"]["green"]["role"] == "idle"


def test_apply_creates_the_dashboard_of_both_colors_that_status_names(applied: Project) -> None:
    """Read back from the embedded AWS: every graph carries both colors' target groups on the load balancer."""
    aws = applied.aws()
    name = dashboard_name(aws.config)
    body = json.loads(aws.client("cloudwatch").get_dashboard(DashboardName=name)["DashboardBody"])
    elbv2 = aws.client("elbv2")
    (alb,) = elbv2.describe_load_balancers(Names=["bgtool-local"])["LoadBalancers"]
    lb_suffix = alb["LoadBalancerArn"].split(":loadbalancer/", 1)[1]
    groups = elbv2.describe_target_groups(Names=["bgtool-local-blue", "bgtool-local-green"])["TargetGroups"]
    suffixes = {g["TargetGroupName"].rsplit("-", 1)[1]: g["TargetGroupArn"].split(":", 5)[5] for g in groups}
    graphs = [w["properties"] for w in body["widgets"] if w["type"] == "metric"]
    assert len(graphs) == 5
    for graph in graphs:
        lines = [line for line in graph["metrics"] if isinstance(line[0], str)]
        dimensions = {(line[3], line[5]) for line in lines}
        assert dimensions == {(lb_suffix, suffixes["blue"]), (lb_suffix, suffixes["green"])}, graph["title"]
    metrics = {line[1] for graph in graphs for line in graph["metrics"] if isinstance(line[0], str)}
    assert metrics == {"RequestCount", "HTTPCode_Target_5XX_Count", "TargetResponseTime", "HealthyHostCount"}

    doc = json.loads(applied.ok("status", "local", "--json").stdout)
    assert doc["dashboard"] == {"name": name, "url": None, "found": True}  # no console for the embedded AWS
    text = applied.ok("status", "local").stderr
    assert f"dashboard: {name}" in text and "not created yet" not in text


def test_plan_with_a_pending_change_exits_2(applied: Project) -> None:
    path = applied.root / "environments/local.yaml"
    original = path.read_text()
    try:
        edit_yaml(path, "response_time_seconds: 1.0", "response_time_seconds: 2.5")
        done = applied.run("plan", "local", "--layer", "blue", "--json")
        assert done.returncode == 2, done.stderr
        (layer,) = json.loads(done.stdout)["layers"]
        assert layer["change"] == 1
        addresses = [r["address"] for r in layer["resources"]]
        assert addresses == ['module.color.aws_cloudwatch_metric_alarm.this["latency"]']
    finally:
        path.write_text(original)


def test_bad_input_changes_nothing(applied: Project) -> None:
    path = applied.root / "environments/local.yaml"
    original = path.read_text()
    before = {p: p.stat().st_mtime_ns for p in (applied.root / "build/local").rglob("*.tf")}
    try:
        edit_yaml(path, "production_port: 80", "production_port: 0")
        done = applied.run("apply", "local", "--yes", "--json")
        assert done.returncode == 1
        assert "environments/local.yaml" in done.stderr and "listeners.production_port" in done.stderr
        assert json.loads(done.stdout)["ok"] is False
        after = {p: p.stat().st_mtime_ns for p in (applied.root / "build/local").rglob("*.tf")}
        assert after == before
    finally:
        path.write_text(original)
    aws = applied.aws()
    assert read_live(aws, aws.config, lambda c: color_live(aws, aws.config, "local", c, None)).listener(80) is not None


def test_apply_without_terminal_or_yes_refuses(applied: Project) -> None:
    path = applied.root / "environments/local.yaml"
    original = path.read_text()
    try:
        edit_yaml(path, "target_5xx_count: 10", "target_5xx_count: 11")
        done = applied.run("apply", "local", "--layer", "blue")
        assert done.returncode == 1, done.stderr
        assert "no terminal to confirm" in done.stderr, done.stderr
        assert "bgtool apply local --yes" in done.stderr, done.stderr
    finally:
        path.write_text(original)


def _served(project: Project) -> dict[int, str]:
    return listener_urls(read_state(project.root) or {}, "bgtool-local")


def test_one_archive_restores_side_by_side_projects_that_serve_and_release_on_their_own(
    applied: Project, standard_archive: Path, tmp_path: Path,
) -> None:
    root = copy_project(tmp_path / "second")
    port = free_port()
    restored = Project(root, f"http://127.0.0.1:{port}")
    done = restored.run("local", "restore", str(standard_archive), "--port", str(port), "--json")
    try:
        assert done.returncode == 0, done.stderr
        doc = json.loads(done.stdout)
        assert (doc["port"], doc["targets"], doc["listeners"]) == (port, 4, 2)
        ours, theirs = _served(applied), _served(restored)
        assert set(ours) == set(theirs) == {80, 8080}
        assert set(ours.values()).isdisjoint(theirs.values())  # each data plane serves on ports of its own
        for urls in (ours, theirs):
            assert requests.get(f"{urls[80]}/version", timeout=10).text.strip() == "1.0.0"
        plan = restored.run("plan", "local", "--layer", "traffic", "--json")
        assert plan.returncode == 0 and json.loads(plan.stdout)["layers"][0]["status"] == "no-changes", plan.stderr

        again = restored.run("local", "restore", str(standard_archive), "--port", str(free_port()))
        assert again.returncode == 1 and "Stop it first with 'bgtool local down'" in again.stderr, again.stderr
        switched = restored.run("switch", "local", "--yes", "--steps", "100", "--bake", "0", "--monitor", "0",
                                "--accept-inconclusive", "--json")
        assert switched.returncode == 0, switched.stderr
        assert json.loads(restored.ok("status", "local", "--json").stdout)["live_color"] == "green"
        assert json.loads(applied.ok("status", "local", "--json").stdout)["live_color"] == "blue"  # untouched
    finally:
        embedded.down(root)


def test_saving_needs_a_running_embedded_aws(tmp_path: Path) -> None:
    root = copy_project(tmp_path / "idle")
    project = Project(root, "http://127.0.0.1:1")
    done = project.run("local", "save", str(tmp_path / "saved.tar.gz"))
    assert done.returncode == 1 and "there is nothing to save" in done.stderr, done.stderr
    assert not (tmp_path / "saved.tar.gz").exists()


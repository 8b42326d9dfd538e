"""`bgtool drift` on the embedded AWS with the real terraform binary: out-of-band changes are found.

`local`, restored for this module, and driftb beside it (for the report of two environments);
each test restores what it changed (boto3 for what boto3 changed, `bgtool apply --layer` for what
needs Terraform to recreate).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import Project, add_environment


@pytest.fixture(scope="module")
def drift_project(applied: Project) -> Iterator[Project]:
    # `local` restored for this module (state in S3) and driftb beside it with its state in files:
    # drift reads either backend the same way.
    add_environment(applied, "driftb", 42, backend="local")
    applied.ok("apply", "driftb", "--yes")
    yield applied


def drift(project: Project, *args: str) -> tuple[int, dict[str, Any], str]:
    done = project.run("drift", *args, "--json")
    assert done.stdout.strip(), f"no JSON on stdout (exit {done.returncode})\n{done.stderr}"
    return done.returncode, json.loads(done.stdout), done.stderr


def env_doc(doc: dict[str, Any], env: str) -> dict[str, Any]:
    return next(e for e in doc["environments"] if e["env"] == env)


def production_listener(project: Project, env: str) -> dict[str, Any]:
    elbv2 = project.aws(env).client("elbv2")
    alb = elbv2.describe_load_balancers(Names=[f"bgtool-{env}"])["LoadBalancers"][0]
    listeners = elbv2.describe_listeners(LoadBalancerArn=alb["LoadBalancerArn"])["Listeners"]
    return next(lst for lst in listeners if lst["Port"] == 80)


def flip_out_of_band(project: Project, env: str) -> tuple[Any, dict[str, Any], list[dict[str, Any]]]:
    """Swap the production weights by a direct API call, as a console click would: (elbv2, the listener as it
    was, its default actions as they were, to put back)."""
    elbv2 = project.aws(env).client("elbv2")
    listener = production_listener(project, env)
    original = listener["DefaultActions"]
    moved = [{"TargetGroupArn": g["TargetGroupArn"], "Weight": 0 if g["Weight"] else 100}
             for g in original[0]["ForwardConfig"]["TargetGroups"]]
    elbv2.modify_listener(ListenerArn=listener["ListenerArn"],
                          DefaultActions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": moved}}])
    return elbv2, listener, original


def about(items: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """The items whose subject names TEXT (a resource address or part of one)."""
    return [i for i in items if text in i["subject"]]


def test_clean_environment_exits_0(drift_project: Project) -> None:
    code, doc, err = drift(drift_project, "local")
    assert code == 0, json.dumps(doc, indent=2) + err
    assert doc["status"] == "clean" and env_doc(doc, "local")["items"] == []
    layers = env_doc(doc, "local")["layers"]
    assert [layer["status"] for layer in layers] == ["clean"] * 4
    # One plan per layer: its exit code is reported, no refresh-only plan runs.
    assert [(layer["plan_exit"], layer["refresh_exit"]) for layer in layers] == [(0, None)] * 4


def test_listener_weights_changed_out_of_band(drift_project: Project, tmp_path: Any) -> None:
    """Two environments in one run: local drifted, driftb clean, both reported, exit 2."""
    elbv2, listener, original = flip_out_of_band(drift_project, "local")
    try:
        report = tmp_path / "drift.md"
        code, doc, err = drift(drift_project, "local", "driftb", "--markdown", str(report))
    finally:
        elbv2.modify_listener(ListenerArn=listener["ListenerArn"], DefaultActions=original)
    assert code == 2, err
    assert env_doc(doc, "driftb")["status"] == "clean"
    drifted = env_doc(doc, "local")
    assert drifted["status"] == "drift"
    item = next(i for i in drifted["items"] if i["kind"] == "active_color")
    assert item["details"]["port"] == 80 and item["details"]["listener_arn"] == listener["ListenerArn"]
    assert item["details"]["file_weights"] == {"blue": 100, "green": 0}
    assert item["details"]["live_weights"] == {"blue": 0, "green": 100}
    assert "active_color: blue" in item["summary"]
    assert item["reconcile"].startswith("bgtool apply local")
    assert item["details"].get("terraform_drift"), "Terraform's own view of the listener is folded in"
    assert not [i for i in drifted["items"] if i["kind"] == "changed" and "production" in i["subject"]]
    # Reported once: neither as Terraform drift nor as the plan's revert of it.
    assert [i["kind"] for i in drifted["items"]] == ["active_color"], json.dumps(drifted["items"], indent=2)
    traffic = next(layer for layer in drifted["layers"] if layer["layer"] == "traffic")
    assert traffic["plan_exit"] == 2 and traffic["refresh_exit"] is None
    text = report.read_text()
    assert "1 drift in 1 of 2 environments" in text and "bgtool apply local" in text and "driftb: clean" in text


def test_the_reconcile_drift_names_brings_production_back(drift_project: Project) -> None:
    """Production flipped outside Terraform (green 100% while the file says blue): the command drift names,
    `bgtool apply`, gates blue through the test listener (pointed at blue first: the file's layout
    points it at green) and switches production back; drift is clean again."""
    elbv2, listener, original = flip_out_of_band(drift_project, "local")
    reconciled = False
    try:
        code, doc, err = drift(drift_project, "local")
        assert code == 2, err
        reconcile = next(i for i in env_doc(doc, "local")["items"] if i["kind"] == "active_color")["reconcile"]
        assert reconcile.startswith("bgtool apply local")
        # no production traffic here to judge the steps by: the operator's call, as a quiet environment needs
        command = reconcile.split(" (")[0].split()  # the command; the words after it say why
        applied = drift_project.run(*command[1:], "--yes", "--accept-inconclusive")
        assert applied.returncode == 0, applied.stderr
        reconciled = True
        assert "test listener → blue" in applied.stderr
    finally:
        if not reconciled:
            elbv2.modify_listener(ListenerArn=listener["ListenerArn"], DefaultActions=original)
    forward = production_listener(drift_project, "local")["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]
    groups = original[0]["ForwardConfig"]["TargetGroups"]
    assert {g["TargetGroupArn"]: g["Weight"] for g in forward} == {g["TargetGroupArn"]: g["Weight"] for g in groups}
    code, doc, err = drift(drift_project, "local")
    assert code == 0 and doc["status"] == "clean", json.dumps(env_doc(doc, "local")["items"], indent=2) + err


def test_security_group_rule_added_out_of_band(drift_project: Project) -> None:
    aws = drift_project.aws("local")
    ec2 = aws.client("ec2")
    group = ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": ["bgtool-local-alb"]}])["SecurityGroups"][0]
    permission = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "203.0.113.7/32"}]}
    ec2.authorize_security_group_ingress(GroupId=group["GroupId"], IpPermissions=[permission])
    try:
        code, doc, err = drift(drift_project, "local")
    finally:
        ec2.revoke_security_group_ingress(GroupId=group["GroupId"], IpPermissions=[permission])
    assert code == 2, err
    items = env_doc(doc, "local")["items"]
    found = [i for i in items if "203.0.113.7/32" in json.dumps(i)]
    assert found, json.dumps(items, indent=2)
    assert all(i["layer"] == "base" and i["reconcile"] for i in found)


def test_deleted_resource_is_reported_deleted(drift_project: Project) -> None:
    """A target group in use by a listener cannot be deleted (moto refuses, as AWS does): an alarm can."""
    cloudwatch = drift_project.aws("local").client("cloudwatch")
    cloudwatch.delete_alarms(AlarmNames=["bgtool-local-green-5xx"])
    try:
        code, doc, err = drift(drift_project, "local")
    finally:  # the embedded AWS sometimes drops a connection under load: one retry
        if drift_project.run("apply", "local", "--yes", "--layer", "green").returncode != 0:
            drift_project.ok("apply", "local", "--yes", "--layer", "green")
    assert code == 2, err
    items = env_doc(doc, "local")["items"]
    deleted = [i for i in items if i["kind"] == "deleted"]
    assert deleted and all(i["layer"] == "green" for i in deleted), json.dumps(items, indent=2)
    assert [i["subject"] for i in about(items, "aws_cloudwatch_metric_alarm")] == [
        'module.color.aws_cloudwatch_metric_alarm.this["5xx"]'], json.dumps(items, indent=2)
    assert deleted[0]["reconcile"].startswith("bgtool apply local --layer green")
    assert not [i for i in items if i["kind"] == "pending"], "the re-create is the same fact, reported once"


def test_configuration_not_applied_is_pending_once(drift_project: Project) -> None:
    """A changed alarm threshold in the file: each color's 5xx alarm is one pending update, nothing else."""
    path = drift_project.root / "environments/local.yaml"
    original = path.read_text()
    path.write_text(original.replace("target_5xx_count: 10", "target_5xx_count: 11", 1))
    try:
        code, doc, err = drift(drift_project, "local")
    finally:
        path.write_text(original)
    assert code == 2, err
    items = env_doc(doc, "local")["items"]
    assert sorted((i["kind"], i["layer"], i["subject"], i["details"].get("action")) for i in items) == [
        ("pending", color, 'module.color.aws_cloudwatch_metric_alarm.this["5xx"]', "update")
        for color in ("blue", "green")], json.dumps(items, indent=2)
    assert all(i["reconcile"] == f"bgtool apply local --layer {i['layer']}" for i in items)
    layers = {layer["layer"]: layer for layer in env_doc(doc, "local")["layers"]}
    assert [layers[x]["status"] for x in ("base", "blue", "green", "traffic")] == ["clean", "drift", "drift", "clean"]


def test_hand_edited_green_layer_is_parity_drift(drift_project: Project) -> None:
    main = drift_project.root / "build/local/green/main.tf"
    main.write_text(main.read_text().replace("var.min_size", "1  # hand edit", 1))
    code, doc, err = drift(drift_project, "local")
    assert code == 2, err
    parity = [i for i in env_doc(doc, "local")["items"] if i["kind"] == "parity"]
    assert parity and "main.tf" in parity[0]["details"]["files"]
    assert parity[0]["reconcile"].startswith("bgtool render local")
    assert "# hand edit" not in main.read_text(), "drift re-rendered the layer before planning"


def test_plan_markdown_names_the_switch_in_peoples_words(drift_project: Project, tmp_path: Any) -> None:
    """What the pull-request workflow runs: render, then plan --markdown (exit 2: changes pending)."""
    path = drift_project.root / "environments/local.yaml"
    original = path.read_text()
    path.write_text(original.replace("active_color: blue", "active_color: green", 1))
    try:
        drift_project.ok("render", "local")
        comment = tmp_path / "plan-local.md"
        done = drift_project.run("plan", "local", "--layer", "traffic", "--markdown", str(comment))
    finally:
        path.write_text(original)
    assert done.returncode == 2, done.stderr
    text = comment.read_text()
    assert "**local: switch blue → green (green 1.0.0, targets 2/2 healthy now; steps 10/50/100, bake 22 s)**" in text
    assert "| traffic | changes | 0 | 1 | 0 |" in text or "| traffic | changes |" in text
    assert "aws_lb_listener" in text

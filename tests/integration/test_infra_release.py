"""`bgtool apply` never changes the live color's instances: capacity applies directly, the rest is released.

Real terraform against the embedded AWS, on `local` restored for this module. Blue is live; the
idle green is first applied at an older version so that the release visibly puts it at blue's version.
Tests run in file order: a capacity change of the live color first, then an instance type change
that `apply` refuses and `apply --release` rolls out blue/green.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from bgtool.aws.live import color_live, target_group_arns
from bgtool.aws.session import Aws
from bgtool.config.schema import Color, load_environment
from bgtool.records.history import History
from bgtool.traffic.listener import live_weights
from bgtool.traffic.weights import Weights
from tests.helpers import edit_yaml
from tests.integration.conftest import Project

ENV = "local"
LIVE_LT = "module.color.aws_launch_template.this"


@pytest.fixture(scope="module")
def infra(applied: Project) -> Project:
    path = _path(applied)
    edit_yaml(path, "steps: [10, 50, 100]", "steps: [50, 100]")
    edit_yaml(path, "  green:\n    version: 1.0.0", "  green:\n    version: 0.9.0")
    done = applied.ok("apply", ENV, "--yes", "--json", timeout=1500)  # the idle color: a plain apply
    assert [r["layer"] for r in json.loads(done.stdout)["layers"] if r["status"] == "applied"] == ["green"]
    return applied


def _path(project: Project):  # type: ignore[no-untyped-def]
    return project.root / "environments" / f"{ENV}.yaml"


def _aws(project: Project) -> Aws:
    return project.aws(ENV)


def _groups(project: Project, color: Color) -> list[dict[str, Any]]:
    """The color's Auto Scaling groups with their launch template id and instance type."""
    aws = _aws(project)
    live = color_live(aws, aws.config, ENV, color, target_group_arns(aws, aws.config).get(color.value))
    found = aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=live.asg_names)
    groups = []
    for g in found["AutoScalingGroups"]:
        lt_id = g["LaunchTemplate"]["LaunchTemplateId"]
        data = aws.client("ec2").describe_launch_template_versions(
            LaunchTemplateId=lt_id, Versions=["$Latest"])["LaunchTemplateVersions"][0]["LaunchTemplateData"]
        groups.append({"name": g["AutoScalingGroupName"], "lt": lt_id, "type": data["InstanceType"],
                       "desired": g["DesiredCapacity"], "versions": live.versions})
    return groups


def _weights(project: Project) -> Weights | None:
    aws = _aws(project)
    return live_weights(aws, aws.config)


def _records(project: Project) -> list[Any]:
    cfg = load_environment(project.root, ENV, endpoint_override=project.endpoint).config
    return History(project.root, ENV, cfg, _aws(project)).read()


def test_capacity_change_of_the_live_color_applies_directly(infra: Project) -> None:
    before = _groups(infra, Color.BLUE)
    blue = "  blue:\n    version: 1.0.0\n    desired: "
    edit_yaml(_path(infra), blue + "2", blue + "3")
    done = infra.ok("apply", ENV, "--yes", "--json")
    result = next(r for r in json.loads(done.stdout)["layers"] if r["layer"] == "blue")
    assert result["status"] == "applied" and "capacity" in result["detail"], result
    after = _groups(infra, Color.BLUE)
    assert [(g["name"], g["lt"]) for g in after] == [(g["name"], g["lt"]) for g in before]
    assert [g["desired"] for g in after] == [3]
    assert _weights(infra) == Weights(100, 0)


def test_live_instance_change_is_refused_without_release(infra: Project) -> None:
    blue_before, green_before = _groups(infra, Color.BLUE), _groups(infra, Color.GREEN)
    edit_yaml(_path(infra), "instance_type: t3.micro", "instance_type: t3.small")

    plan = infra.run("plan", ENV, "--json", "--markdown", str(infra.root / "infra-plan.md"))
    assert plan.returncode == 2, plan.stderr
    layers = {p["layer"]: p for p in json.loads(plan.stdout)["layers"]}
    assert layers["blue"]["live"] and layers["blue"]["release"], layers["blue"]
    assert {r["address"]: r["release"] for r in layers["blue"]["resources"]}[LIVE_LT] is True
    assert not layers["green"]["release"], "the idle color's change is a plain apply"
    assert "will be released blue/green" in (infra.root / "infra-plan.md").read_text()

    done = infra.run("apply", ENV, "--yes")
    assert done.returncode == 1, done.stderr
    assert f"bgtool apply {ENV} --release" in done.stderr, done.stderr
    assert f"replace {LIVE_LT}" in done.stderr and "nothing was applied" in done.stderr, done.stderr
    assert _groups(infra, Color.BLUE) == blue_before, "live group and launch template untouched"
    assert _groups(infra, Color.GREEN) == green_before, "checked first: nothing applied"
    assert _weights(infra) == Weights(100, 0)


def test_release_rolls_the_change_out_blue_green(infra: Project) -> None:
    done = infra.ok("apply", ENV, "--release", "--yes", "--json", "--accept-inconclusive", timeout=1500)
    results = {r["layer"]: r for r in json.loads(done.stdout)["layers"]}
    assert results["blue"]["status"] == "released", results
    assert _weights(infra) == Weights(0, 100), "traffic ends on the other color"
    text = _path(infra).read_text()
    assert "active_color: green" in text
    assert "  green:\n    version: 1.0.0" in text, "the idle color took the live color's version"
    for color in Color:
        groups = _groups(infra, color)
        assert [(g["type"], g["versions"]) for g in groups] == [("t3.small", ["1.0.0"])], (color, groups)
    records = _records(infra)
    assert (records[-1].operation, records[-1].details["complete"]) == ("apply", True)
    release = [r for r in records if r.operation != "apply"][-1]
    assert (release.operation, release.result, release.from_color, release.to_color) == (
        "release", "succeeded", "blue", "green")
    assert any(LIVE_LT in c for c in release.details["changes"]), release.details
    operations = [(r.operation, r.result) for r in records]
    assert ("switch", "succeeded") in operations and ("deploy", "succeeded") in operations
    assert infra.run("plan", ENV).returncode == 0, "everything matches the file afterwards"

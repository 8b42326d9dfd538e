"""Compute behind EC2 Auto Scaling groups: the color's instances, registered in its target group."""

from __future__ import annotations

import base64
from typing import Any

from bgtool.aws.live import ColorLive, color_groups, color_live
from bgtool.compute import TargetGroupCompute
from bgtool.config.schema import Color

_ASG_KEYS = ("DefaultCooldown", "HealthCheckType", "HealthCheckGracePeriod", "VPCZoneIdentifier", "TerminationPolicies",
             "NewInstancesProtectedFromScaleIn", "CapacityRebalance")
_SIZE_KEYS = ("MinSize", "MaxSize", "DesiredCapacity")
_LT_SKIP = {"UserData"}


class AutoScalingCompute(TargetGroupCompute):
    """One launch template + Auto Scaling group per color (modules/color)."""

    kind = "autoscaling"
    settings_label = "launch template and Auto Scaling group"

    def live(self, color: Color) -> ColorLive:
        return color_live(self.ws.aws, self.ws.config, self.ws.env, color, self.target_group_arn(color))

    def snapshot(self, color: Color) -> dict[str, Any]:
        """The color's live group and launch template settings (empty unless exactly one group serves it)."""
        aws = self.ws.aws
        groups = color_groups(aws, self.ws.env, color)
        if len(groups) != 1:
            return {}
        group = groups[0]
        tags = {t["Key"]: t["Value"] for t in group.get("Tags", []) if not t["Key"].startswith("aws:")}
        spec = group.get("LaunchTemplate") or (group.get("MixedInstancesPolicy") or {}).get(
            "LaunchTemplate", {}).get("LaunchTemplateSpecification") or {}
        return {
            "asg": {k: _sorted_list(group.get(k)) if k == "VPCZoneIdentifier" else group.get(k) for k in _ASG_KEYS},
            "asg_tags": tags,
            "target_groups": sorted(arn.split(":")[-1].split("/")[1] for arn in group.get("TargetGroupARNs", [])),
            "launch_template": _template(aws, spec) if spec.get("LaunchTemplateId") else {},
            "sizes": {k: group.get(k) for k in _SIZE_KEYS},
            "versions": [tags.get("bgtool:version", "")],
        }


def _template(aws: Any, spec: dict[str, Any]) -> dict[str, Any]:
    found = aws.client("ec2").describe_launch_template_versions(
        LaunchTemplateId=spec["LaunchTemplateId"], Versions=[str(spec.get("Version") or "$Latest")])
    data = (found.get("LaunchTemplateVersions") or [{}])[0].get("LaunchTemplateData") or {}
    template = {k: v for k, v in data.items() if k not in _LT_SKIP}
    template["UserData"] = _decode(data["UserData"]) if data.get("UserData") else None
    return template


def _sorted_list(value: str | None) -> str | None:
    """Subnet order in an ASG is not meaningful."""
    return ",".join(sorted(value.split(","))) if value else value


def _decode(data: str) -> str:
    try:
        return base64.b64decode(data).decode("utf-8", "replace")
    except ValueError:
        return data

"""Reads of live AWS state with boto3: listener weights, Auto Scaling groups, targets, alarms.

These reads are what bgtool trusts before and during a switch, so they go to AWS directly and
never through Terraform state, which may be stale or drifted. Resources are found by the
deterministic names and tags of docs/render-contract.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from bgtool.aws.session import Aws
from bgtool.config.schema import Color, Environment


@dataclass(frozen=True)
class ListenerWeights:
    port: int
    protocol: str
    arn: str
    weights: dict[str, int]
    """Color → weight; empty when the listener does not forward (e.g. an HTTP→HTTPS redirect)."""

    @property
    def live_color(self) -> str | None:
        """The color taking all traffic, or None while split or not forwarding."""
        full = [c for c, w in self.weights.items() if w == 100]
        return full[0] if full else None


@dataclass(frozen=True)
class TargetHealth:
    id: str
    state: str
    reason: str = ""


@dataclass
class ColorLive:
    color: str
    asg_names: list[str] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    desired: int = 0
    in_service: int = 0
    instance_ids: list[str] = field(default_factory=list)
    targets: list[TargetHealth] = field(default_factory=list)
    alarms: list[str] = field(default_factory=list)
    alarms_firing: list[str] = field(default_factory=list)
    members: list[str] = field(default_factory=list)
    """Every instance of the color's groups, whatever its lifecycle state."""
    group_label: str = "Auto Scaling group"
    """What `asg_names` name, for messages: an Auto Scaling group, or an ECS service."""
    member_label: str = "instances InService"
    """What `in_service` counts, for messages."""
    task_definition: str = ""
    """ECS only: the service's task definition (family:revision)."""
    image: str = ""
    """ECS only: the image that task definition runs (REPOSITORY:VERSION)."""
    rollout: str = ""
    """ECS only: the primary deployment's rolloutState (IN_PROGRESS, COMPLETED, FAILED)."""
    rollout_reason: str = ""

    @property
    def healthy_targets(self) -> int:
        return sum(1 for t in self.targets if t.state == "healthy")


@dataclass
class LiveState:
    alb_found: bool
    alb_dns_name: str | None
    listeners: list[ListenerWeights]
    colors: dict[str, ColorLive]

    def listener(self, port: int) -> ListenerWeights | None:
        return next((lst for lst in self.listeners if lst.port == port), None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def target_group_names(config: Environment) -> dict[str, str]:
    return {c.value: f"{config.name}-{c.value}" for c in Color}


def find_alb(aws: Aws, config: Environment) -> dict[str, Any] | None:
    return _load_balancer_named(aws, config.name)


def color_alb(aws: Aws, config: Environment, color: Color) -> dict[str, Any] | None:
    """The load balancer in front of COLOR: its own (<name>-<color>) in DNS mode, else the shared one."""
    if config.traffic.mode == "dns":
        return _load_balancer_named(aws, f"{config.name}-{Color(color).value}")
    return find_alb(aws, config)


def _load_balancer_named(aws: Aws, name: str) -> dict[str, Any] | None:
    try:
        found = aws.client("elbv2").describe_load_balancers(Names=[name])["LoadBalancers"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("LoadBalancerNotFound", "LoadBalancerNotFoundException"):
            return None
        raise
    return found[0] if found else None


def target_group_arns(aws: Aws, config: Environment) -> dict[str, str]:
    names = target_group_names(config)
    try:
        groups = aws.client("elbv2").describe_target_groups(Names=list(names.values()))["TargetGroups"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("TargetGroupNotFound", "TargetGroupNotFoundException"):
            return {}
        raise
    by_name = {g["TargetGroupName"]: g["TargetGroupArn"] for g in groups}
    return {color: by_name[name] for color, name in names.items() if name in by_name}


def listener_weights(aws: Aws, alb_arn: str, tg_arns: dict[str, str]) -> list[ListenerWeights]:
    color_of = {arn: color for color, arn in tg_arns.items()}
    listeners = aws.client("elbv2").describe_listeners(LoadBalancerArn=alb_arn)["Listeners"]
    out = [_weights_of(lst, color_of) for lst in listeners]
    return sorted(out, key=lambda lw: lw.port)


def _weights_of(listener: dict[str, Any], color_of: dict[str, str]) -> ListenerWeights:
    weights: dict[str, int] = {}
    for action in listener.get("DefaultActions", []):
        if action.get("Type") != "forward":
            continue
        groups = (action.get("ForwardConfig") or {}).get("TargetGroups")
        if not groups and action.get("TargetGroupArn"):
            groups = [{"TargetGroupArn": action["TargetGroupArn"], "Weight": 100}]
        for g in groups or []:
            color = color_of.get(g["TargetGroupArn"], g["TargetGroupArn"])
            weights[color] = weights.get(color, 0) + int(g.get("Weight", 1 if len(groups) == 1 else 0))
    if len(weights) == 1:
        weights = {next(iter(weights)): 100}
    if weights:
        for color in Color:
            weights.setdefault(color.value, 0)
    return ListenerWeights(listener["Port"], listener.get("Protocol", ""), listener["ListenerArn"], weights)


def color_live(aws: Aws, config: Environment, env: str, color: Color, tg_arn: str | None) -> ColorLive:
    live = ColorLive(color=color.value)
    _read_asgs(aws, env, color, live)
    if tg_arn:
        live.targets = own_targets(target_health(aws, tg_arn), live.members)
    read_alarms(aws, config, color, live)
    return live


def target_health(aws: Aws, tg_arn: str) -> list[TargetHealth]:
    described = aws.client("elbv2").describe_target_health(TargetGroupArn=tg_arn)
    return [
        TargetHealth(
            d["Target"]["Id"],
            d.get("TargetHealth", {}).get("State", "unknown"),
            d.get("TargetHealth", {}).get("Reason", ""),
        )
        for d in described.get("TargetHealthDescriptions", [])
    ]


def own_targets(targets: list[TargetHealth], members: list[str]) -> list[TargetHealth]:
    """The targets that belong to the color's groups.

    Instances of a replaced group may stay registered for a while (deregistration delay on AWS;
    indefinitely on the embedded AWS), and they are not what a gate on the new version is about.
    With no group at all (a retired or broken color) every registered target is shown.
    """
    if not members:
        return targets
    return [t for t in targets if t.id in members]


def color_groups(aws: Aws, env: str, color: Color) -> list[dict[str, Any]]:
    """The Auto Scaling groups that serve COLOR's traffic (every page; worker groups are not among them)."""
    filters = [
        {"Name": "tag:bgtool:env", "Values": [env]},
        {"Name": "tag:bgtool:color", "Values": [color.value]},
    ]
    pages = aws.client("autoscaling").get_paginator("describe_auto_scaling_groups").paginate(Filters=filters)
    groups = [g for page in pages for g in page["AutoScalingGroups"]]
    return [g for g in groups if {t["Key"]: t["Value"] for t in g.get("Tags", [])}.get("bgtool:role") != "worker"]


def _read_asgs(aws: Aws, env: str, color: Color, live: ColorLive) -> None:
    for group in color_groups(aws, env, color):
        live.asg_names.append(group["AutoScalingGroupName"])
        live.desired += int(group.get("DesiredCapacity", 0))
        in_service = [i for i in group.get("Instances", []) if i.get("LifecycleState") == "InService"]
        live.in_service += len(in_service)
        live.instance_ids += [i["InstanceId"] for i in in_service]
        live.members += [i["InstanceId"] for i in group.get("Instances", [])]
        tags = {t["Key"]: t["Value"] for t in group.get("Tags", [])}
        if tags.get("bgtool:version") and tags["bgtool:version"] not in live.versions:
            live.versions.append(tags["bgtool:version"])


def read_alarms(aws: Aws, config: Environment, color: Color, live: ColorLive) -> None:
    prefix = f"{config.name}-{color.value}-"
    pages = aws.client("cloudwatch").get_paginator("describe_alarms").paginate(AlarmNamePrefix=prefix)
    for page in pages:
        for alarm in page.get("MetricAlarms", []):
            live.alarms.append(alarm["AlarmName"])
            if alarm.get("StateValue") == "ALARM":
                live.alarms_firing.append(alarm["AlarmName"])


def dashboard_exists(aws: Aws, name: str) -> bool:
    """Whether the CloudWatch dashboard NAME exists: status names it, and says so when no apply has made it yet."""
    try:
        aws.client("cloudwatch").get_dashboard(DashboardName=name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("ResourceNotFound", "DashboardNotFoundError"):
            return False
        raise
    return True


def read_live(aws: Aws, config: Environment, color_reader: Callable[[Color], ColorLive]) -> LiveState:
    """Everything status, the gate and drift need, in one pass of describe calls.

    COLOR_READER reads one color as its compute kind runs it (`ColorCompute.live` of bgtool.compute)."""
    alb = find_alb(aws, config)
    tg_arns = target_group_arns(aws, config)
    listeners = listener_weights(aws, alb["LoadBalancerArn"], tg_arns) if alb else []
    colors = {c.value: color_reader(c) for c in Color}
    return LiveState(
        alb_found=alb is not None,
        alb_dns_name=alb.get("DNSName") if alb else None,
        listeners=listeners,
        colors=colors,
    )

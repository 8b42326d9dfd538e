"""Compute behind ECS services on Fargate: the color's tasks, registered as `ip` targets in its group.

A color is the ECS service `<name>-<color>` in the cluster `<name>` (modules/ecs-cluster and
modules/ecs-service). Its live view has the same shape as an Auto Scaling color's, so the gate, the
switch's bakes, deploy's wait and `status` judge it the same way: the service's desired count, the
tasks that run (RUNNING, and not asked to stop) as the members in service, their addresses as the
target ids, the versions their container images carry, and the color's alarms.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from bgtool.aws.live import ColorLive, own_targets, read_alarms, target_health
from bgtool.aws.session import Aws
from bgtool.compute import TargetGroupCompute
from bgtool.config.schema import Color, Environment, image_version

DESCRIBE_BATCH = 100
"""describe_tasks takes at most 100 tasks per call."""


class EcsCompute(TargetGroupCompute):
    """One ECS service per color (modules/ecs-service), its tasks in the color's target group."""

    kind = "ecs"
    settings_label = "task definition and ECS service"

    def live(self, color: Color) -> ColorLive:
        return ecs_color_live(self.ws.aws, self.ws.config, Color(color), self.target_group_arn(color))

    def snapshot(self, color: Color) -> dict[str, Any]:
        """The service's and its task definition's settings, as ECS reports them (empty without the service)."""
        ecs = self.ws.aws.client("ecs")
        service = _service(ecs, self.ws.config.name, service_name(self.ws.config, Color(color)))
        if service is None:
            return {}
        found = ecs.describe_task_definition(taskDefinition=service["taskDefinition"], include=["TAGS"])
        definition = found["taskDefinition"]
        containers = definition.get("containerDefinitions") or [{}]
        return {
            "service": {k: _sorted_lists(service.get(k)) for k in _SERVICE_KEYS},
            "service_tags": _tags(service.get("tags")),
            "target_groups": sorted(lb["targetGroupArn"].split(":")[-1].split("/")[1]
                                    for lb in service.get("loadBalancers", [])),
            "task_definition": {k: definition.get(k) for k in _TASK_KEYS},
            "containers": [_container(c) for c in containers],
            "task_definition_tags": _tags(found.get("tags")),
            "sizes": {"desiredCount": service.get("desiredCount"), **self._capacity(service["serviceName"])},
            "versions": [image_version(str(c.get("image", ""))) for c in containers],
        }

    def _capacity(self, service: str) -> dict[str, Any]:
        """The service's scalable target bounds (Application Auto Scaling), when it has one."""
        resource = f"service/{self.ws.config.name}/{service}"
        found = self.ws.aws.client("application-autoscaling").describe_scalable_targets(
            ServiceNamespace="ecs", ResourceIds=[resource]).get("ScalableTargets", [])
        return {"MinCapacity": found[0].get("MinCapacity"), "MaxCapacity": found[0].get("MaxCapacity")} if found else {}


_SERVICE_KEYS = ("launchType", "platformVersion", "schedulingStrategy", "deploymentConfiguration",
                 "networkConfiguration", "healthCheckGracePeriodSeconds", "propagateTags", "enableECSManagedTags",
                 "enableExecuteCommand", "deploymentController", "availabilityZoneRebalancing")
_TASK_KEYS = ("family", "cpu", "memory", "networkMode", "requiresCompatibilities", "executionRoleArn", "taskRoleArn",
              "runtimePlatform")


def _container(container: dict[str, Any]) -> dict[str, Any]:
    """A container definition with its environment as a mapping: the order ECS keeps it in means nothing."""
    environment = {e["name"]: e["value"] for e in container.get("environment") or []}
    return {**{k: v for k, v in container.items() if k != "environment"}, "environment": environment}


def _tags(tags: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["key"]: t["value"] for t in tags or [] if not t["key"].startswith("aws:")}


def _sorted_lists(value: Any) -> Any:
    """Subnet and security group order in a service's network configuration is not meaningful."""
    if isinstance(value, dict):
        return {k: _sorted_lists(v) for k, v in value.items()}
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return sorted(value)
    return value


def service_name(config: Environment, color: Color) -> str:
    return f"{config.name}-{Color(color).value}"


def worker_service_name(config: Environment, color: Color) -> str:
    """The color's worker service (modules/ecs-workers)."""
    return f"{service_name(config, color)}-workers"


def ecs_color_live(aws: Aws, config: Environment, color: Color, tg_arn: str | None) -> ColorLive:
    live = ColorLive(color=color.value, group_label="ECS service", member_label="tasks RUNNING")
    ecs = aws.client("ecs")
    service = _service(ecs, config.name, service_name(config, color))
    if service is not None:
        live.asg_names = [service["serviceName"]]
        live.desired = int(service.get("desiredCount", 0))
        images: dict[str, str] = {}
        live.task_definition = _family_revision(service.get("taskDefinition", ""))
        live.image = _image(ecs, service.get("taskDefinition", ""), images)
        primary = next((d for d in service.get("deployments", []) if d.get("status") == "PRIMARY"), {})
        live.rollout, live.rollout_reason = primary.get("rolloutState", ""), primary.get("rolloutStateReason", "")
        _read_tasks(ecs, config.name, service["serviceName"], live, images)
    if tg_arn:
        live.targets = own_targets(target_health(aws, tg_arn), live.members)
    read_alarms(aws, config, color, live)
    return live


def _service(ecs: Any, cluster: str, name: str) -> dict[str, Any] | None:
    try:
        services = ecs.describe_services(cluster=cluster, services=[name]).get("services", [])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ClusterNotFoundException":
            return None
        raise
    return next((s for s in services if s.get("status") == "ACTIVE"), None)


def _read_tasks(ecs: Any, cluster: str, service: str, live: ColorLive, images: dict[str, str]) -> None:
    """The service's tasks that are wanted (desired RUNNING): members; the RUNNING ones are in service."""
    arns = [a for page in ecs.get_paginator("list_tasks").paginate(cluster=cluster, serviceName=service,
                                                                     desiredStatus="RUNNING")
            for a in page.get("taskArns", [])]
    tasks: list[dict[str, Any]] = []
    for start in range(0, len(arns), DESCRIBE_BATCH):
        tasks += ecs.describe_tasks(cluster=cluster, tasks=arns[start:start + DESCRIBE_BATCH]).get("tasks", [])
    for task in sorted(tasks, key=lambda t: str(t.get("taskArn"))):
        if task.get("group") != f"service:{service}" or task.get("desiredStatus") != "RUNNING":
            continue  # the embedded AWS lists every task of the cluster whatever serviceName says
        address = task_address(task)
        live.members.append(address)
        if task.get("lastStatus") == "RUNNING":
            live.in_service += 1
            live.instance_ids.append(address)
        version = image_version(_image(ecs, task.get("taskDefinitionArn", ""), images))
        if version not in live.versions:
            live.versions.append(version)


def task_address(task: dict[str, Any]) -> str:
    """The task's awsvpc address: its target id in an `ip` target group."""
    for attachment in task.get("attachments", []):
        for detail in attachment.get("details", []):
            if detail.get("name") == "privateIPv4Address":
                return str(detail.get("value"))
    return str(task.get("taskArn", ""))


def _image(ecs: Any, definition: str, images: dict[str, str]) -> str:
    """The container image of the task definition (REPOSITORY:VERSION, the tag being what the task runs),
    read once per definition and reading."""
    if definition and definition not in images:
        found = ecs.describe_task_definition(taskDefinition=definition)["taskDefinition"]
        images[definition] = str((found.get("containerDefinitions") or [{}])[0].get("image", ""))
    return images.get(definition, "")


def _family_revision(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]

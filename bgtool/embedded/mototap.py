"""The one place that touches moto's internals (tested with moto 5.2; pinned in the `local` extra).

The data plane runs moto in its own process, so it can read the load balancers, target groups
and instances straight from moto's in-memory backends (microseconds, not an API round trip per
resource every tenth of a second) and can make `describe_target_health` report what the real
health checks found. Both are done here and nowhere else, so a moto upgrade that moves these
internals breaks one small module, loudly.
"""

from __future__ import annotations

import importlib
import ipaddress
import json
import pickle
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bgtool.config.schema import image_version
from bgtool.embedded.model import (
    Action,
    EcsService,
    EcsTask,
    FixedResponse,
    Forward,
    HealthCheck,
    Instance,
    Listener,
    Redirect,
    Snapshot,
    Target,
    TargetGroup,
    WeightedRecord,
)

HealthOverride = tuple[str, str, str]
"""(state, reason, description) as describe_target_health reports it."""

NOT_SEEN_YET: HealthOverride = ("initial", "Elb.RegistrationInProgress", "Target registration is in progress")
"""A running instance registered since the data plane's last tick: no process, no check yet."""

_overrides: Mapping[tuple[str, str], HealthOverride] = {}
_following = False
_installed = threading.Lock()
_hooked = False


def set_health(overrides: Mapping[tuple[str, str], HealthOverride]) -> None:
    """Publish what the health checks found, keyed by (target group arn, instance id).

    Replaced as a whole (one assignment), so request threads never see a half-updated mapping.
    """
    global _overrides, _following
    _overrides = dict(overrides)
    _following = True


def install_health_hook() -> None:
    """Make moto's describe_target_health report the data plane's verdict for running instances.

    moto calls every running instance target `healthy`; a stopped one stays `unused`
    (Target.InvalidState) as moto says, since no health check runs against a stopped instance.
    """
    global _hooked
    from moto.elbv2.models import FakeTargetGroup

    with _installed:
        if _hooked:
            return
        original = FakeTargetGroup.health_for

        def health_for(self: Any, target: dict[str, Any], ec2_backend: Any) -> Any:
            status = original(self, target, ec2_backend)
            found = _overrides.get((self.arn, target["Id"]))
            if found is None and _following and _checked_here(str(target["Id"])):
                found = NOT_SEEN_YET  # never "healthy" before a health check has seen it
            if found is not None and status.status == "healthy":
                status.status, status.reason, status.description = found
            return status

        FakeTargetGroup.health_for = health_for  # type: ignore[method-assign]
        _hooked = True


def _checked_here(target_id: str) -> bool:
    """A target whose health the data plane checks: an instance, or a task on a loopback address."""
    return target_id.startswith("i-") or _is_loopback(target_id)


_percentiles_hooked = False


def install_percentiles() -> None:
    """Make get_metric_statistics answer ExtendedStatistics (p99, p95.5, ...), which moto 5.2 accepts and
    ignores. Computed the way CloudWatch does for metrics published with Values/Counts (the monitor's
    TargetResponseTime): a percentile of the period's raw values; aggregated datapoints
    (StatisticValues) carry no distribution and do not contribute."""
    global _percentiles_hooked
    from moto.cloudwatch.models import MetricDatum
    from moto.cloudwatch.responses import CloudWatchResponse

    from bgtool.embedded.metrics import Sample, statistic

    with _installed:
        if _percentiles_hooked:
            return
        original = CloudWatchResponse.get_metric_statistics

        def get_metric_statistics(self: Any) -> Any:
            wanted = [p for p in (self._get_param("ExtendedStatistics") or []) if _is_percentile(p)]
            answer = original(self)
            for point in answer.result.get("Datapoints", []) if wanted else []:
                samples = [Sample(0.0, m.value) for m in point.metric_data if isinstance(m, MetricDatum)]
                if samples:
                    point.extended_statistics = {p: statistic(samples, p) for p in wanted}
            return answer

        CloudWatchResponse.get_metric_statistics = get_metric_statistics  # type: ignore[method-assign]
        _percentiles_hooked = True


def _is_percentile(name: str) -> bool:
    try:
        return name.startswith("p") and 0 <= float(name[1:]) <= 100
    except ValueError:
        return False


def read_snapshot() -> Snapshot:
    """Everything the data plane follows, copied out of moto's backends of every account and region.

    moto's request threads may change these dicts while they are read: the caller retries on
    RuntimeError ("changed size during iteration") at its next tick.
    """
    from moto.ec2.models import ec2_backends
    from moto.elbv2.models import elbv2_backends

    listeners: list[Listener] = []
    groups: dict[str, TargetGroup] = {}
    instances: dict[str, Instance] = {}
    for account, regions in list(dict.items(elbv2_backends)):
        for region, backend in list(dict.items(regions)):
            for arn, group in list(backend.target_groups.items()):
                groups[arn] = _target_group(arn, group)
            for lb in list(backend.load_balancers.values()):
                for listener in list(lb.listeners.values()):
                    listeners.append(_listener(lb, listener))
            ec2 = _ec2_backend(ec2_backends, account, region)
            if ec2 is not None:
                _instances(ec2, groups.values(), instances)
    workers: dict[str, Instance] = {}
    for account, regions in list(dict.items(ec2_backends)):
        for region in list(dict.keys(regions)):
            ec2 = _ec2_backend(ec2_backends, account, region)
            if ec2 is not None:
                _workers(ec2, workers)
    services, tasks = _ecs()
    return Snapshot(tuple(sorted(listeners, key=lambda lst: (lst.lb_name, lst.port))), groups, instances,
                    _weighted_records(), workers, services, tasks)


def _workers(ec2: Any, out: dict[str, Instance]) -> None:
    """Running instances of worker groups (tagged bgtool:role = worker)."""
    for reservation in list(ec2.reservations.values()):
        for instance in list(reservation.instances):
            if instance.state != "running":
                continue
            tags = dict(ec2.tags.get(instance.id, {}))
            if tags.get("bgtool:role") == "worker":
                out[instance.id] = Instance(instance.id, True, tags)


def _weighted_records() -> tuple[WeightedRecord, ...]:
    """Weighted records of every hosted zone that answer with a name (CNAME or alias): the data
    plane serves such a name with the records' weights."""
    from moto.route53.models import route53_backends

    out: list[WeightedRecord] = []
    for _account, partitions in list(dict.items(route53_backends)):
        for backend in list(dict.values(partitions)):
            for zone in list(backend.zones.values()):
                for rrset in list(zone.rrsets):
                    record = _weighted(rrset)
                    if record is not None:
                        out.append(record)
    return tuple(sorted(out, key=lambda r: (r.name, r.set_identifier)))


def _weighted(rrset: Any) -> WeightedRecord | None:
    if rrset.set_identifier is None or rrset.weight is None:
        return None
    alias = rrset.alias_target or {}
    target = alias.get("DNSName") if alias else (rrset.records[0] if rrset.type == "CNAME" and rrset.records else None)
    if isinstance(target, dict):
        target = target.get("Value")
    if not target:
        return None
    target = str(target).lower().rstrip(".").removeprefix("dualstack.")
    return WeightedRecord(str(rrset.name).lower().rstrip("."), str(rrset.set_identifier), _int(rrset.weight, 0), target)


def _ec2_backend(ec2_backends: Any, account: str, region: str) -> Any:
    regions = dict.get(ec2_backends, account)
    return dict.get(regions, region) if regions is not None else None


def _instances(ec2: Any, groups: Any, out: dict[str, Instance]) -> None:
    wanted = {t.id for g in groups for t in g.targets if t.id.startswith("i-")} - set(out)
    if not wanted:
        return
    for reservation in list(ec2.reservations.values()):
        for instance in list(reservation.instances):
            if instance.id in wanted:
                tags = dict(ec2.tags.get(instance.id, {}))
                out[instance.id] = Instance(instance.id, instance.state == "running", tags, ec2.region_name)


def _target_group(arn: str, group: Any) -> TargetGroup:
    matcher = (getattr(group, "matcher", None) or {}).get("HttpCode", "200")
    health = HealthCheck(
        path=group.health_check_path or "/",
        interval=_int(group.health_check_interval_seconds, 30),
        timeout=_int(group.health_check_timeout_seconds, 5),
        healthy=_int(group.healthy_threshold_count, 5),
        unhealthy=_int(group.unhealthy_threshold_count, 2),
        matcher=str(matcher),
    )
    targets = tuple(Target(t["Id"], _int(t.get("Port"), _int(group.port, 80))) for t in list(group.targets.values()))
    return TargetGroup(arn, group.name, health, targets)


def _listener(lb: Any, listener: Any) -> Listener:
    actions = [a.data for a in listener.default_actions]
    return Listener(lb.name, lb.arn, lb.dns_name, _int(listener.port, 80), listener.protocol, _action(actions))


def _action(actions: list[dict[str, Any]]) -> Action:
    """The listener's terminal default action (ALB runs authentication actions first; none here)."""
    for data in sorted(actions, key=lambda a: _int(a.get("Order"), 0)):
        kind = data.get("Type")
        if kind == "forward":
            return _forward(data)
        if kind == "redirect":
            cfg = data.get("RedirectConfig") or {}
            return Redirect(
                protocol=cfg.get("Protocol", "#{protocol}"), host=cfg.get("Host", "#{host}"),
                port=str(cfg.get("Port", "#{port}")), path=cfg.get("Path", "/#{path}"),
                query=cfg.get("Query", "#{query}"), status=_int(str(cfg.get("StatusCode", "301"))[-3:], 301),
            )
        if kind == "fixed-response":
            cfg = data.get("FixedResponseConfig") or {}
            return FixedResponse(_int(cfg.get("StatusCode"), 503), cfg.get("ContentType", "text/plain"),
                                 cfg.get("MessageBody", ""))
    return FixedResponse(503, "text/plain", "no forward action")


def _forward(data: dict[str, Any]) -> Forward:
    cfg = data.get("ForwardConfig") or {}
    groups = cfg.get("TargetGroups") or []
    if groups:
        weights = tuple((g["TargetGroupArn"], _int(g.get("Weight"), 1)) for g in groups)
    elif data.get("TargetGroupArn"):
        weights = ((data["TargetGroupArn"], 1),)
    else:
        weights = ()
    sticky = cfg.get("TargetGroupStickinessConfig") or {}
    enabled = str(sticky.get("Enabled", "false")).lower() == "true"
    return Forward(weights, _int(sticky.get("DurationSeconds"), 3600) if enabled else 0)


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


# --------------------------------------------------------------------------------------------
# ECS: the data plane is the agent of every service's tasks (moto 5.2 starts none)
# --------------------------------------------------------------------------------------------

TASK_HOLDS_STATUS = {"progression": "manual", "times": 10**9}
"""moto moves a task one state on (RUNNING, DEACTIVATING, ... STOPPED) at every describe_tasks; the data
plane sets a task's status from its process instead, so describe_tasks must not move it."""


SERVICE_SETTINGS = ("deploymentConfiguration", "healthCheckGracePeriodSeconds", "enableECSManagedTags",
                    "enableExecuteCommand", "availabilityZoneRebalancing")
"""What moto 5.2's create_service drops (its update_service keeps them): without them describe_services
answers defaults, and Terraform would plan to change the service back at every plan."""

_ecs_hooked = False


def install_ecs_agent() -> None:
    """Let the data plane own the tasks' status (see TASK_HOLDS_STATUS), and make create_service keep the
    service's settings (SERVICE_SETTINGS) as update_service does."""
    global _ecs_hooked
    from moto.core.utils import camelcase_to_underscores
    from moto.ecs.responses import EC2ContainerServiceResponse
    from moto.moto_api import state_manager

    state_manager.set_transition("ecs::task", TASK_HOLDS_STATUS)
    with _installed:
        if _ecs_hooked:
            return
        original = EC2ContainerServiceResponse.create_service

        def create_service(self: Any) -> Any:
            answer = original(self)
            service = answer.result["service"]
            for name in SERVICE_SETTINGS:
                if self._get_param(name) is not None:
                    setattr(service, camelcase_to_underscores(name), self._get_param(name))
            return answer

        EC2ContainerServiceResponse.create_service = create_service  # type: ignore[method-assign]
        _ecs_hooked = True


_tags_hooked = False


def install_scalable_target_tags() -> None:
    """Tags of Application Auto Scaling scalable targets (modules/ecs-service bounds a service's desired
    count with one): moto 5.2 ignores RegisterScalableTarget's Tags and does not implement
    ListTagsForResource, TagResource or UntagResource, which the Terraform provider calls on every read
    (an HTTP 500 there fails the plan). The tags live on moto's target object, so `local save` keeps them."""
    global _tags_hooked
    from moto.applicationautoscaling.responses import ApplicationAutoScalingResponse

    with _installed:
        if _tags_hooked:
            return
        register = ApplicationAutoScalingResponse.register_scalable_target

        def register_scalable_target(self: Any) -> str:
            answer = register(self)
            if self._get_param("Tags"):
                target = _scalable_target(self, json.loads(answer)["ScalableTargetARN"])
                target.bgtool_tags = dict(self._get_param("Tags"))
            return answer

        def list_tags_for_resource(self: Any) -> str:
            return json.dumps({"Tags": _target_tags(self)})

        def tag_resource(self: Any) -> str:
            _target_tags(self).update(self._get_param("Tags") or {})
            return "{}"

        def untag_resource(self: Any) -> str:
            tags = _target_tags(self)
            for key in self._get_param("TagKeys") or []:
                tags.pop(key, None)
            return "{}"

        ApplicationAutoScalingResponse.register_scalable_target = register_scalable_target  # type: ignore[method-assign]
        ApplicationAutoScalingResponse.list_tags_for_resource = list_tags_for_resource  # type: ignore[attr-defined]
        ApplicationAutoScalingResponse.tag_resource = tag_resource  # type: ignore[attr-defined]
        ApplicationAutoScalingResponse.untag_resource = untag_resource  # type: ignore[attr-defined]
        _tags_hooked = True


def _scalable_target(response: Any, arn: str) -> Any:
    from moto.core.exceptions import JsonRESTError

    for by_resource in list(response.applicationautoscaling_backend.targets.values()):
        for target in list(by_resource.values()):
            if target.arn == arn:
                return target
    raise JsonRESTError("ResourceNotFoundException", f"No scalable target found for {arn}")


def _target_tags(response: Any) -> dict[str, str]:
    target = _scalable_target(response, response._get_param("ResourceARN"))
    if not hasattr(target, "bgtool_tags"):
        target.bgtool_tags = {}
    return target.bgtool_tags  # type: ignore[no-any-return]


def _ecs() -> tuple[tuple[EcsService, ...], dict[str, EcsTask]]:
    """Every service with a target group, and the tasks of those services that have not stopped.

    A deleted service stays (INACTIVE, as on AWS for a while) with a desired count of 0 here, so its
    tasks are stopped like those of a service scaled to zero."""
    from moto.ecs.models import ecs_backends

    services: list[EcsService] = []
    tasks: dict[str, EcsTask] = {}
    for account, regions in list(dict.items(ecs_backends)):
        for region, backend in list(dict.items(regions)):
            found = {}
            for service in list(backend.services.values()):
                value = _ecs_service(backend, service, account, region)
                if value is not None:
                    found[(value.cluster, value.name)] = value
                    services.append(value)
            for cluster, cluster_tasks in list(backend.tasks.items()):
                for task in list(cluster_tasks.values()):
                    value = _ecs_task(backend, task, found.get((cluster, str(task.group).removeprefix("service:"))))
                    if value is not None:
                        tasks[value.arn] = value
    return tuple(sorted(services, key=lambda s: s.arn)), tasks


def _ecs_service(backend: Any, service: Any, account: str, region: str) -> EcsService | None:
    """A service the data plane runs: one behind a target group, or a color's workers (no target group)."""
    balancers = [lb for lb in service.load_balancers or [] if lb.get("targetGroupArn")]
    tags = {t.get("key", ""): t.get("value", "") for t in service.tags or []}
    worker = tags.get("bgtool:role") == "worker"
    if not (balancers or worker) or not service.task_definition:
        return None
    desired = _int(service.desired_count, 0) if service.status == "ACTIVE" else 0
    try:
        definition = backend.describe_task_definition(service.task_definition).arn
    except Exception:  # deregistered meanwhile: the service keeps its tasks until it names another
        definition = service.task_definition
    if not balancers:
        return EcsService(service.arn, service.cluster_name, service.name, desired, definition, "", 0, tags, region,
                          account)
    return EcsService(service.arn, service.cluster_name, service.name, desired, definition,
                      balancers[0]["targetGroupArn"], _int(balancers[0].get("containerPort"), 80), tags, region,
                      account)


def _ecs_task(backend: Any, task: Any, service: EcsService | None) -> EcsTask | None:
    """A task the data plane started for SERVICE (its address is a loopback one), unless it has stopped."""
    address = _task_address(task)
    if service is None or not _is_loopback(address) or task.last_status == "STOPPED":
        return None
    container = _container(backend, task.task_definition_arn)
    environment = {e.get("name", ""): str(e.get("value", "")) for e in container.get("environment") or []}
    store = environment.get("BGTOOL_SESSION_TABLE", "") if environment.get("BGTOOL_SESSION_STORE") == "dynamodb" else ""
    return EcsTask(task.task_arn, service.arn, task.task_definition_arn, image_version(str(container.get("image", ""))),
                   address, service.container_port, task.last_status, task.desired_status,
                   session_store=store, session_ttl_seconds=environment.get("BGTOOL_SESSION_TTL_SECONDS", ""))


def _is_loopback(address: str) -> bool:
    """An IPv4 loopback address written as one (it goes into haproxy.cfg as it is)."""
    try:
        return ipaddress.IPv4Address(address).is_loopback and str(ipaddress.IPv4Address(address)) == address
    except ValueError:
        return False


def _task_address(task: Any) -> str:
    for attachment in task.attachments:
        for detail in attachment.get("details", []):
            if detail.get("name") == "privateIPv4Address":
                return str(detail.get("value"))
    return ""


def _container(backend: Any, definition_arn: str) -> dict[str, Any]:
    """The task definition's (first and only) container; a deregistered one's image is 0.0.0."""
    try:
        return dict(backend.describe_task_definition(definition_arn).container_definitions[0])
    except Exception:  # deregistered meanwhile
        return {"image": ":0.0.0"}


def _ecs_backend(service: EcsService) -> Any:
    from moto.ecs.models import ecs_backends

    return ecs_backends[service.account][service.region]


def _moto_service(service: EcsService) -> Any:
    return _ecs_backend(service).services[f"{service.cluster}:{service.name}"]


def launch_task(service: EcsService, definition: str, address: str, started_by: str) -> str:
    """A new PENDING task of SERVICE on ADDRESS (its awsvpc IP), registered in the service's target group
    (a worker service has none)."""
    import copy
    import uuid

    from moto.ecs.models import Task
    from moto.elbv2.models import elbv2_backends

    backend = _ecs_backend(service)
    moto_service = _moto_service(service)
    # Built as run_task builds a Fargate task, minus two things moto 5.2 cannot do for this task definition:
    # placement arithmetic (it wants a memory size per container) and the awsvpc network interface
    # (it reads an attribute its network interfaces lack). The attachment is written here instead.
    shape = copy.copy(backend.describe_task_definition(definition))
    shape.network_mode = "none"
    task = Task(backend._get_cluster(service.cluster), shape, None, None, backend=backend,
                group=f"service:{service.name}", launch_type="FARGATE", started_by=started_by,
                platform_version=moto_service.platform_version)
    task.network_configuration = moto_service.network_configuration
    subnets = (moto_service.network_configuration or {}).get("awsvpcConfiguration", {}).get("subnets") or [""]
    task.attachments = [{"id": str(uuid.uuid4()), "type": "ElasticNetworkInterface", "status": "ATTACHED",
                         "details": [{"name": "subnetId", "value": subnets[0]},
                                     {"name": "privateIPv4Address", "value": address}]}]
    task.tags = [dict(t) for t in moto_service.tags or []] if moto_service.propagate_tags == "SERVICE" else []
    task.last_status = "PENDING"
    backend.tasks.setdefault(service.cluster, {})[task.task_arn] = task
    if not service.workers:
        elbv2_backends[service.account][service.region].register_targets(
            service.target_group_arn, [{"Id": address, "Port": service.container_port}])
    return str(task.task_arn)


def _moto_task(service: EcsService, task_arn: str) -> Any:
    backend = _ecs_backend(service)
    return backend.tasks.get(service.cluster, {}).get(task_arn)


def set_task_status(service: EcsService, task_arn: str, status: str) -> None:
    task = _moto_task(service, task_arn)
    if task is not None:
        task.last_status = status
        for container in task.containers:
            container.last_status = status


def stop_task(service: EcsService, task: EcsTask, reason: str) -> None:
    """Deregister TASK from the target group and ask it to stop (its process drains, then stops)."""
    from moto.elbv2.models import elbv2_backends

    group = elbv2_backends[service.account][service.region].target_groups.get(service.target_group_arn)
    if group is not None and task.address in group.targets:
        group.deregister([{"Id": task.address}])
    found = _moto_task(service, task.arn)
    if found is not None:
        found.desired_status = "STOPPED"
        found.last_status = "DEACTIVATING"
        found.stopped_reason = reason


def finish_task(service: EcsService, task_arn: str) -> None:
    """TASK's process is gone: STOPPED, its network attachment deleted, as Fargate does."""
    found = _moto_task(service, task_arn)
    if found is None:
        return
    set_task_status(service, task_arn, "STOPPED")
    found.desired_status = "STOPPED"
    for attachment in found.attachments:
        attachment["status"] = "DELETED"


def set_service_counts(service: EcsService, running: int, pending: int, deployments: list[dict[str, Any]]) -> None:
    """What describe_services reports: the counts of the tasks that run, and the deployments rolling."""
    moto_service = _moto_service(service)
    moto_service.running_count = running
    moto_service.pending_count = pending
    moto_service.deployments = deployments


def service_deployments(service: EcsService) -> list[dict[str, Any]]:
    return [dict(d) for d in _moto_service(service).deployments or []]


def dump_backends(path: Path) -> None:
    """Write every moto backend that holds data to PATH (pickle), for `bgtool local save`.

    moto keeps each service's data in a module-level BackendDict; the ones in use are listed in
    `BackendDict._instances`. They are pickled together, so objects shared between services stay
    shared after a load. Locks are not data: they pickle as new, unlocked locks. moto's request
    threads may change a dict while it is read: the caller retries on RuntimeError.
    """
    from moto.core.base_backend import BackendDict, backend_lock

    with backend_lock:
        used = list(BackendDict._instances)  # type: ignore[misc]
    named = {_location(backend): dict(backend) for backend in used}
    with path.open("wb") as sink:
        _LockFreePickler(sink, protocol=pickle.HIGHEST_PROTOCOL).dump(named)


def load_backends(path: Path) -> list[str]:
    """Put what `dump_backends` wrote back into moto's backends (before its server answers); returns
    the services loaded. Only for files this machine wrote: unpickling runs what the file says."""
    from moto.core.base_backend import BackendDict, backend_lock

    with path.open("rb") as source:
        named: dict[str, dict[str, Any]] = pickle.load(source)  # a file `local save` wrote
    with backend_lock:
        for location, accounts in named.items():
            module, _, attribute = location.partition(":")
            live = getattr(importlib.import_module(module), attribute)
            dict.clear(live)
            dict.update(live, accounts)
            if live not in BackendDict._instances:  # type: ignore[misc]
                BackendDict._instances.append(live)  # type: ignore[misc]
    return sorted(named)


def _location(backend: Any) -> str:
    """`module:attribute` of a module-level BackendDict, so a load finds the very object moto uses."""
    for name, module in list(sys.modules.items()):
        if not name.startswith("moto.") or module is None:
            continue
        for attribute, value in list(vars(module).items()):
            if value is backend:
                return f"{name}:{attribute}"
    raise RuntimeError(f"moto backend {backend.service_name!r} is not a module attribute")


_LOCK_TYPES = (type(threading.Lock()), type(threading.RLock()))


class _LockFreePickler(pickle.Pickler):
    """Pickles moto's objects: locks as new locks, keys and certificates (Rust objects) as PEM."""

    def reducer_override(self, obj: Any) -> Any:
        from cryptography import x509
        from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

        if isinstance(obj, PrivateKeyTypes):  # type: ignore[misc, arg-type]
            return _private_key, (obj.private_bytes(*_pem()[0]),)
        if isinstance(obj, PublicKeyTypes):  # type: ignore[misc, arg-type]
            return _public_key, (obj.public_bytes(*_pem()[1]),)
        if isinstance(obj, x509.Certificate):
            return _certificate, (obj.public_bytes(_pem()[1][0]),)
        if isinstance(obj, _LOCK_TYPES):
            return type(obj), ()
        if isinstance(obj, threading.Condition):
            return threading.Condition, ()
        if isinstance(obj, threading.Event):
            return threading.Event, ()
        return NotImplemented


def _pem() -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    from cryptography.hazmat.primitives import serialization as ser

    return ((ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption()),
            (ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo))


def _private_key(pem: bytes) -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    return load_pem_private_key(pem, password=None)


def _public_key(pem: bytes) -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    return load_pem_public_key(pem)


def _certificate(pem: bytes) -> Any:
    from cryptography.x509 import load_pem_x509_certificate

    return load_pem_x509_certificate(pem)

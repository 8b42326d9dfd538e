"""What the embedded AWS holds that the data plane follows, as plain immutable values.

The controller copies these out of moto every tick (bgtool.embedded.mototap); everything that
decides what HAProxy and the target processes should look like works on these values only, so
it is pure and unit-tested without moto, HAProxy or processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class HealthCheck:
    path: str = "/"
    interval: int = 30
    timeout: int = 5
    healthy: int = 5
    unhealthy: int = 2
    matcher: str = "200"


@dataclass(frozen=True)
class Target:
    id: str
    port: int


@dataclass(frozen=True)
class TargetGroup:
    arn: str
    name: str
    health: HealthCheck
    targets: tuple[Target, ...] = ()

    @property
    def arn_suffix(self) -> str:
        """`targetgroup/NAME/ID`, the CloudWatch dimension value."""
        return self.arn.split(":", 5)[-1]


@dataclass(frozen=True)
class Forward:
    weights: tuple[tuple[str, int], ...]
    """(target group arn, weight), in the listener's order."""
    stickiness_seconds: int = 0


@dataclass(frozen=True)
class Redirect:
    protocol: str = "#{protocol}"
    host: str = "#{host}"
    port: str = "#{port}"
    path: str = "/#{path}"
    query: str = "#{query}"
    status: int = 301


@dataclass(frozen=True)
class FixedResponse:
    status: int = 503
    content_type: str = "text/plain"
    body: str = ""


Action = Forward | Redirect | FixedResponse


@dataclass(frozen=True)
class Listener:
    lb_name: str
    lb_arn: str
    dns_name: str
    port: int
    protocol: str
    action: Action

    @property
    def key(self) -> str:
        """Stable identity for port allocation: the load balancer's name and the listener port."""
        return f"{self.lb_name}:{self.port}"

    @property
    def lb_arn_suffix(self) -> str:
        """`app/NAME/ID`, the CloudWatch dimension value."""
        return self.lb_arn.split(":loadbalancer/", 1)[-1]


@dataclass(frozen=True)
class Instance:
    id: str
    running: bool
    tags: dict[str, str] = field(default_factory=dict, hash=False, compare=True)
    region: str = ""


@dataclass(frozen=True)
class WeightedRecord:
    """One weighted Route 53 record that answers with a load balancer (alias or CNAME)."""

    name: str
    """Lower case, no trailing dot."""
    set_identifier: str
    weight: int
    target: str
    """The load balancer's DNS name it answers with (lower case, no trailing dot, no `dualstack.`)."""


@dataclass(frozen=True)
class EcsService:
    """An ECS service the data plane runs the tasks of, as the ECS agent would: one in a target group
    (an application color), or one without (a color's workers, tagged bgtool:role = worker)."""

    arn: str
    cluster: str
    name: str
    desired: int
    task_definition: str
    target_group_arn: str
    container_port: int
    tags: dict[str, str] = field(default_factory=dict, hash=False, compare=True)
    region: str = ""
    account: str = ""

    @property
    def workers(self) -> bool:
        return not self.target_group_arn


@dataclass(frozen=True)
class EcsTask:
    """One task of a service: a process on its own loopback address (its awsvpc IP)."""

    arn: str
    service_arn: str
    task_definition: str
    version: str
    """The tag of the container image (REPOSITORY:VERSION), which is what the task runs."""
    address: str
    port: int
    last_status: str
    desired_status: str
    session_store: str = ""
    """The shared session table its container's environment names (BGTOOL_SESSION_TABLE), "" without one."""
    session_ttl_seconds: str = ""

    @property
    def wanted(self) -> bool:
        """The service has not asked it to stop."""
        return self.desired_status == "RUNNING"


@dataclass(frozen=True)
class Snapshot:
    listeners: tuple[Listener, ...] = ()
    target_groups: dict[str, TargetGroup] = field(default_factory=dict, hash=False)
    instances: dict[str, Instance] = field(default_factory=dict, hash=False)
    records: tuple[WeightedRecord, ...] = ()
    workers: dict[str, Instance] = field(default_factory=dict, hash=False)
    """Running instances tagged `bgtool:role = worker` (a color's worker group), by id."""
    services: tuple[EcsService, ...] = ()
    tasks: dict[str, EcsTask] = field(default_factory=dict, hash=False)
    """Tasks of those services that have not stopped, by task ARN."""


@dataclass(frozen=True)
class TargetSpec:
    """One process to run: what an instance registered in a target group should serve."""

    instance_id: str
    env: str
    color: str
    version: str
    health_path: str
    region: str = ""
    session_store: str = ""
    """The shared session table (the instance's bgtool:session-store tag), "" without one."""
    session_ttl_seconds: str = ""
    address: str = "127.0.0.1"
    """Where the process listens: an ECS task's own loopback address, else 127.0.0.1."""
    port: int = 0
    """An ECS task's container port; 0: any free port (an instance's process)."""


def target_specs(snap: Snapshot) -> dict[str, TargetSpec]:
    """Every running instance registered in a target group gets one process, whatever the group count."""
    specs: dict[str, TargetSpec] = {}
    for group in snap.target_groups.values():
        for target in group.targets:
            instance = snap.instances.get(target.id)
            if instance is None or not instance.running or target.id in specs:
                continue
            tags = instance.tags
            specs[target.id] = TargetSpec(
                instance_id=target.id,
                env=tags.get("bgtool:env", ""),
                color=tags.get("bgtool:color", ""),
                version=tags.get("bgtool:version", "0.0.0"),
                health_path=group.health.path,
                region=instance.region,
                session_store=tags.get("bgtool:session-store", ""),
                session_ttl_seconds=tags.get("bgtool:session-ttl-seconds", ""),
            )
    specs.update(task_specs(snap))
    return specs


def task_specs(snap: Snapshot) -> dict[str, TargetSpec]:
    """Every task its service still wants gets one process, on the task's address and container port.

    Keyed by the address, which is also the task's target id in the target group (moto keys `ip`
    targets by address alone).
    """
    services = {s.arn: s for s in snap.services}
    groups = snap.target_groups
    specs: dict[str, TargetSpec] = {}
    for task in snap.tasks.values():
        service = services.get(task.service_arn)
        if service is None or service.workers or not task.wanted:
            continue
        group = groups.get(service.target_group_arn)
        specs[task.address] = TargetSpec(
            instance_id=task.address,
            env=service.tags.get("bgtool:env", ""),
            color=service.tags.get("bgtool:color", ""),
            version=task.version,
            health_path=group.health.path if group else "/",
            region=service.region,
            session_store=task.session_store,
            session_ttl_seconds=task.session_ttl_seconds,
            address=task.address,
            port=task.port,
        )
    return specs


@dataclass(frozen=True)
class WorkerSpec(TargetSpec):
    """One worker process: an instance of a color's worker group, consuming QUEUE_URL."""

    queue_url: str = ""


def worker_specs(snap: Snapshot) -> dict[str, WorkerSpec]:
    """Every running worker instance, and every wanted task of a worker service, gets one process."""
    specs = {
        instance.id: WorkerSpec(
            instance_id=instance.id,
            env=instance.tags.get("bgtool:env", ""),
            color=instance.tags.get("bgtool:color", ""),
            version=instance.tags.get("bgtool:version", "0.0.0"),
            health_path="/",
            queue_url=instance.tags.get("bgtool:queue-url", ""),
        )
        for instance in snap.workers.values()
    }
    services = {s.arn: s for s in snap.services if s.workers}
    for task in snap.tasks.values():
        service = services.get(task.service_arn)
        if service is not None and task.wanted:
            specs[task.address] = WorkerSpec(
                instance_id=task.address, env=service.tags.get("bgtool:env", ""),
                color=service.tags.get("bgtool:color", ""), version=task.version, health_path="/",
                region=service.region, queue_url=service.tags.get("bgtool:queue-url", ""))
    return specs

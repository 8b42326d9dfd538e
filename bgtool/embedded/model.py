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
class Snapshot:
    listeners: tuple[Listener, ...] = ()
    target_groups: dict[str, TargetGroup] = field(default_factory=dict, hash=False)
    instances: dict[str, Instance] = field(default_factory=dict, hash=False)
    records: tuple[WeightedRecord, ...] = ()
    workers: dict[str, Instance] = field(default_factory=dict, hash=False)
    """Running instances tagged `bgtool:role = worker` (a color's worker group), by id."""


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
    return specs


@dataclass(frozen=True)
class WorkerSpec(TargetSpec):
    """One worker process: an instance of a color's worker group, consuming QUEUE_URL."""

    queue_url: str = ""


def worker_specs(snap: Snapshot) -> dict[str, WorkerSpec]:
    """Every running worker instance gets one process."""
    return {
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

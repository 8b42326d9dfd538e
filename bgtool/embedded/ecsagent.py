"""The ECS agent of the embedded AWS: runs each service's tasks as processes, rolling like ECS does.

moto registers services and task definitions but starts no task. Every tick the controller asks
`decide` (pure) what the services need, given what their tasks' processes and health checks show,
and `EcsAgent` carries it out in moto (bgtool.embedded.mototap): new tasks on loopback addresses of
their own, registered as `ip` targets; old ones deregistered and stopped once the new ones are
healthy (minimumHealthyPercent 100, maximumPercent 200); a task whose process exited is stopped and
replaced, with the service's task definition. The target processes themselves are started and
drained by the controller's Supervisor, which runs one per task the service still wants.
"""

from __future__ import annotations

import logging
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bgtool.embedded.model import EcsService, EcsTask, Snapshot
from bgtool.embedded.ports import MachineClaims

log = logging.getLogger("bgtool.dataplane")

MAXIMUM_PERCENT = 200
"""The service's deployment_maximum_percent (modules/ecs-service): new tasks start beside the old."""

ESSENTIAL_EXITED = "Essential container in task exited"
SCALED_IN = "Service scaled in or replaced by a new deployment"
NO_ADDRESS = "Task address is taken by another data plane on this machine"


@dataclass(frozen=True)
class TaskView:
    """What the data plane sees of a task's process."""

    listening: bool = False
    healthy: bool = False
    """Its target group's health checks pass."""
    failed: bool = False
    """Its process exited, or could not be started."""
    gone: bool = True
    """No process runs for it (any more)."""


@dataclass(frozen=True)
class Launch:
    service_arn: str
    task_definition: str


@dataclass(frozen=True)
class Stop:
    task_arn: str
    reason: str


@dataclass
class Decisions:
    launches: list[Launch] = field(default_factory=list)
    stops: list[Stop] = field(default_factory=list)
    running: list[str] = field(default_factory=list)
    """PENDING tasks whose process listens: RUNNING now."""
    pending: list[str] = field(default_factory=list)
    """RUNNING tasks without a process (restored from `local save`): PENDING until it listens."""
    finished: list[str] = field(default_factory=list)
    """Stopping tasks whose process is gone: STOPPED now."""


def decide(snap: Snapshot, views: Mapping[str, TaskView]) -> Decisions:
    """What every service of SNAP needs next, from its tasks and VIEWS (task address -> what runs)."""
    out = Decisions()
    for service in snap.services:
        tasks = sorted((t for t in snap.tasks.values() if t.service_arn == service.arn), key=lambda t: t.arn)
        _roll(service, tasks, views, out)
    for task in snap.tasks.values():
        view = views.get(task.address, TaskView())
        if task.wanted and task.last_status == "PENDING" and view.listening:
            out.running.append(task.arn)
        if task.wanted and task.last_status == "RUNNING" and view.gone:
            out.pending.append(task.arn)
        if not task.wanted and view.gone:
            out.finished.append(task.arn)
    return out


def _roll(service: EcsService, tasks: list[EcsTask], views: Mapping[str, TaskView], out: Decisions) -> None:
    """One service: replace failed tasks, start the missing ones, stop the surplus without losing health."""
    def view(task: EcsTask) -> TaskView:
        return views.get(task.address, TaskView(gone=True))

    wanted = [t for t in tasks if t.wanted]
    failed = [t for t in wanted if view(t).failed]
    out.stops += [Stop(t.arn, ESSENTIAL_EXITED) for t in failed]
    live = [t for t in wanted if t not in failed]
    current = sorted((t for t in live if t.task_definition == service.task_definition),
                     key=lambda t: not view(t).healthy)  # the healthy ones are kept first
    old = sorted((t for t in live if t.task_definition != service.task_definition), key=lambda t: view(t).healthy)
    desired = max(0, service.desired)
    room = max(0, desired * MAXIMUM_PERCENT // 100 - len(live))
    missing = max(0, desired - len(current))
    out.launches += [Launch(service.arn, service.task_definition)] * min(missing, room)
    healthy = sum(1 for t in live if view(t).healthy)
    surplus = old + sorted(current[desired:], key=lambda t: view(t).healthy)
    for task in surplus:
        if view(task).healthy:
            if healthy - 1 < desired:
                continue  # minimumHealthyPercent 100: keep it until a new one is healthy
            healthy -= 1
        out.stops.append(Stop(task.arn, SCALED_IN))


def deployments(service: EcsService, tasks: list[EcsTask], previous: list[dict[str, Any]],
                now: Any) -> list[dict[str, Any]]:
    """The service's deployments as describe_services reports them: the PRIMARY one runs the service's
    task definition; an older one stays ACTIVE while tasks of its definition still run."""
    by_definition: dict[str, list[EcsTask]] = {}
    for task in tasks:
        if task.wanted:
            by_definition.setdefault(task.task_definition, []).append(task)
    known = {d.get("taskDefinition"): d for d in previous}
    out = []
    for definition in [service.task_definition, *sorted(set(by_definition) - {service.task_definition})]:
        running = [t for t in by_definition.get(definition, []) if t.last_status == "RUNNING"]
        pending = [t for t in by_definition.get(definition, []) if t.last_status == "PENDING"]
        primary = definition == service.task_definition
        if not primary and not running and not pending:
            continue
        base = dict(known.get(definition) or {"id": f"ecs-svc/{uuid.uuid4().int % 10**19}", "createdAt": now})
        done = primary and len(running) == service.desired and len(by_definition) <= 1
        base.update({"status": "PRIMARY" if primary else "ACTIVE", "taskDefinition": definition,
                     "desiredCount": service.desired if primary else 0, "runningCount": len(running),
                     "pendingCount": len(pending), "failedTasks": base.get("failedTasks", 0),
                     "rolloutState": "COMPLETED" if done else "IN_PROGRESS",
                     "rolloutStateReason": f"ECS deployment {base['id']} {'completed' if done else 'in progress'}.",
                     "launchType": "FARGATE"})
        if base != known.get(definition):
            base["updatedAt"] = now
        out.append(base)
    return out


# --------------------------------------------------------------------------------------------
# Addresses: one loopback address per task, claimed machine-wide
# --------------------------------------------------------------------------------------------


def loopback_addresses() -> Iterator[str]:
    """127.0.0.2, 127.0.0.3, ...: Linux routes all of 127/8 to lo, so each one can be bound as it is."""
    for n in range(2, 256 * 256):
        if n % 256 not in (0, 255):
            yield f"127.0.{n // 256}.{n % 256}"


class AddressClaims(MachineClaims[str]):
    """Task addresses this data plane uses, claimed for as long as their task runs (as PortClaims does for
    ports), so two embedded AWSs never run tasks on one address."""

    def __init__(self, directory: Path | None = None) -> None:
        super().__init__(directory or Path(tempfile.gettempdir()) / "bgtool-addresses")

    def next_free(self, used: set[str]) -> str | None:
        """The lowest address no task of this embedded AWS uses, claimed for a new task."""
        return next((a for a in loopback_addresses() if a not in used and self.claim(a)), None)


class EcsAgent:
    """Carries out `decide` in moto, once per tick."""

    def __init__(self, claims: AddressClaims | None = None) -> None:
        self.claims = claims or AddressClaims()
        self.refused: set[str] = set()
        """Addresses of restored tasks that another data plane holds: such a task is replaced."""

    def servable(self, snap: Snapshot) -> set[str]:
        """The addresses of SNAP's running tasks this data plane may start processes on (claimed here)."""
        out = set()
        for task in snap.tasks.values():
            if task.wanted and self.claims.claim(task.address):
                out.add(task.address)
            elif task.wanted:
                self.refused.add(task.address)
        return out

    def tick(self, snap: Snapshot, views: Mapping[str, TaskView], now: Any) -> Decisions:
        from bgtool.embedded import mototap

        refused = {a: TaskView(failed=True) for a in self.refused}
        decisions = decide(snap, {**views, **refused})
        services = {s.arn: s for s in snap.services}
        used = {t.address for t in snap.tasks.values()} | set(views)
        for arn in decisions.running:
            task = snap.tasks[arn]
            _attempt(f"mark task {arn} RUNNING", mototap.set_task_status, services[task.service_arn], arn, "RUNNING")
        for arn in decisions.pending:
            task = snap.tasks[arn]
            _attempt(f"mark task {arn} PENDING", mototap.set_task_status, services[task.service_arn], arn, "PENDING")
        for stop in decisions.stops:
            task = snap.tasks[stop.task_arn]
            _attempt(f"stop task {task.arn}", mototap.stop_task, services[task.service_arn], task, stop.reason)
        for arn in decisions.finished:
            task = snap.tasks[arn]
            if _attempt(f"finish task {arn}", mototap.finish_task, services[task.service_arn], arn):
                if task.address not in self.refused:
                    self.claims.release(task.address)
                self.refused.discard(task.address)
        for service in services.values():
            _attempt(f"report the counts of {service.name}", self._counts, snap, service, now)
        for launch in decisions.launches:
            self._launch(services[launch.service_arn], launch.task_definition, used)
        return decisions

    def _launch(self, service: EcsService, definition: str, used: set[str]) -> None:
        from bgtool.embedded import mototap

        address = self.claims.next_free(used)
        if address is None:
            log.error("no free loopback address for a task of %s", service.name)
            return
        used.add(address)
        started_by = _primary_id(mototap.service_deployments(service), definition)
        if not _attempt(f"start a task of {service.name}", mototap.launch_task, service, definition, address,
                        started_by):
            self.claims.release(address)

    def _counts(self, snap: Snapshot, service: EcsService, now: Any) -> None:
        from bgtool.embedded import mototap

        tasks = [t for t in snap.tasks.values() if t.service_arn == service.arn]
        previous = mototap.service_deployments(service)
        wanted = deployments(service, tasks, previous, now)
        if wanted != previous:
            running = sum(1 for t in tasks if t.wanted and t.last_status == "RUNNING")
            pending = sum(1 for t in tasks if t.wanted and t.last_status == "PENDING")
            mototap.set_service_counts(service, running, pending, wanted)


def _attempt(what: str, action: Any, *args: Any) -> bool:
    """One write into moto; a failure (a target group or service deleted meanwhile) is logged and left to the
    next tick, and never stops the rest of the data plane's tick."""
    try:
        action(*args)
    except Exception as exc:
        message = f"ECS agent could not {what}: {exc}"
        if message not in _LOGGED:  # once, not ten times a second
            _LOGGED[message] = None
            while len(_LOGGED) > 100:
                del _LOGGED[next(iter(_LOGGED))]
            log.warning(message)
        return False
    return True


_LOGGED: dict[str, None] = {}


def _primary_id(deployments: list[dict[str, Any]], definition: str) -> str:
    """startedBy of a service's task: its deployment's id, as ECS sets it."""
    return next((str(d["id"]) for d in deployments if d.get("taskDefinition") == definition), "ecs-svc")

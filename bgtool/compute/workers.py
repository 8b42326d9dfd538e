"""Background workers follow the live color: the handover at the end of a switch or a rollback.

At rest only the live color's workers run (`workers_desired` of the color layers, from the file's
active_color: bgtool.render.templates.workers_desired). When traffic has moved, the workers move
too, through Terraform (each color layer's `workers_desired`), in the order `workers.handover` asks:

* `overlap`: the new color's workers start and consume before the old ones stop: never a gap;
* `exclusive`: the old workers stop (the sample worker puts the messages it holds back on the
  queue) before the new ones start: never two versions consuming at once.

The order is a pure plan (`handover_plan`, unit-tested); `hand_over` applies it and waits after each
step until the workers actually run (or are gone): processes of the local data plane on the embedded
AWS, in-service instances of the worker groups (or running tasks of the worker services, with
app.compute ecs) on AWS.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from bgtool.config.schema import Color, Environment, WorkerSettings
from bgtool.errors import BgtoolError
from bgtool.events import Note, Waiting, WaitOver
from bgtool.terraform.workspace import Workspace

Action = Literal["start", "stop"]
WAIT_SECONDS = 600.0
POLL_SECONDS = 0.5
STATE_LOCK_TIMEOUT = "60s"


@dataclass(frozen=True)
class HandoverStep:
    action: Action
    color: Color

    def desired(self, settings: WorkerSettings) -> int:
        return settings.size if self.action == "start" else 0

    def describe(self, settings: WorkerSettings) -> str:
        if self.action == "start":
            return f"start {settings.size} {self.color.value} worker{'s' if settings.size != 1 else ''}"
        return f"stop the {self.color.value} workers"


def handover_plan(mode: str, old: Color, new: Color) -> list[HandoverStep]:
    """The order of the two worker changes when traffic has moved from OLD to NEW."""
    if old is new:
        return [HandoverStep("start", new)]
    start, stop = HandoverStep("start", Color(new)), HandoverStep("stop", Color(old))
    if mode == "overlap":
        return [start, stop]
    if mode == "exclusive":
        return [stop, start]
    raise ValueError(f"unknown handover {mode!r}; allowed: overlap, exclusive")


def step_done(step: HandoverStep, settings: WorkerSettings, running: int) -> bool:
    """A start is done when the color's workers all run; a stop when none is left (its messages back)."""
    return running >= settings.size if step.action == "start" else running == 0


# --------------------------------------------------------------------------------------------
# I/O
# --------------------------------------------------------------------------------------------


def running_workers(ws: Workspace, color: Color) -> int:
    """Workers of COLOR that run now: the data plane's live processes on the embedded AWS, the worker
    group's in-service instances on AWS."""
    if ws.config.embedded:
        from bgtool.embedded.dataplane import read_state

        doc = read_state(ws.root) or {}
        return sum(1 for w in doc.get("workers", []) if w.get("env") == ws.env and w.get("color") == Color(color).value
                   and w.get("alive") and w.get("ready"))
    if ws.config.app.compute == "ecs":
        return worker_tasks(ws.config, ws.aws, color)
    return len(worker_instances(ws.config, ws.aws, ws.env, color))


def stopped_workers(ws: Workspace, color: Color) -> int:
    """Worker processes of COLOR still alive in any state (a stop is over at 0)."""
    if ws.config.embedded:
        from bgtool.embedded.dataplane import read_state

        doc = read_state(ws.root) or {}
        return sum(1 for w in doc.get("workers", []) if w.get("env") == ws.env and w.get("color") == Color(color).value
                   and w.get("alive"))
    if ws.config.app.compute == "ecs":
        return worker_tasks(ws.config, ws.aws, color, any_state=True)
    return len(worker_instances(ws.config, ws.aws, ws.env, color, any_state=True))


def worker_tasks(config: Environment, aws: Any, color: Color, *, any_state: bool = False) -> int:
    """Tasks of COLOR's worker service (modules/ecs-workers): running, or any not stopped yet."""
    from bgtool.compute.ecs import worker_service_name

    name = worker_service_name(config, color)
    found = aws.client("ecs").describe_services(cluster=config.name, services=[name]).get("services", [])
    service = next((s for s in found if s.get("status") == "ACTIVE"), None)
    if service is None:
        return 0
    return int(service.get("runningCount", 0)) + (int(service.get("pendingCount", 0)) if any_state else 0)


def worker_instances(config: Environment, aws: Any, env: str, color: Color, *, any_state: bool = False) -> list[str]:
    """Instances of COLOR's worker groups (found by their tags): in service, or any still present."""
    pages = aws.client("autoscaling").get_paginator("describe_auto_scaling_groups").paginate(
        Filters=[{"Name": "tag:bgtool:env", "Values": [env]},
                 {"Name": "tag:bgtool:color", "Values": [Color(color).value]},
                 {"Name": "tag:bgtool:role", "Values": ["worker"]}])
    out = []
    for page in pages:
        for group in page.get("AutoScalingGroups", []):
            out += [i["InstanceId"] for i in group.get("Instances", [])
                    if any_state or i.get("LifecycleState") == "InService"]
    return out


def apply_workers(ws: Workspace, color: Color, desired: int) -> dict[str, int]:
    """Apply COLOR's layer with this worker size (everything else as the file says)."""
    from bgtool.render.templates import color_vars

    variables = {**color_vars(ws.config, Color(color)), "workers_desired": desired}
    s = ws.terraform(Color(color).value).apply(variables=variables, refresh=True,
                                               lock_timeout=STATE_LOCK_TIMEOUT).summary
    return {"add": s.add, "change": s.change, "destroy": s.destroy}


def hand_over(ws: Workspace, old: Color, new: Color, *, sleep: Callable[[float], None] = time.sleep,
              clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """Move the workers from OLD to NEW in the configured order; {} without workers."""
    settings = ws.config.workers
    if settings is None:
        return {}
    report: dict[str, Any] = {"handover": settings.handover, "from": Color(old).value, "to": Color(new).value,
                              "steps": []}
    started = clock()
    for step in handover_plan(settings.handover, Color(old), Color(new)):
        t0 = clock()
        ws.emit(Note(f"workers ({settings.handover}): {step.describe(settings)}"))
        counts = apply_workers(ws, step.color, step.desired(settings))
        count = _wait(ws, step, settings, sleep, clock)
        took = round(clock() - t0, 2)
        report["steps"].append({"action": step.action, "color": step.color.value, "workers": count,
                                "seconds": took, **counts})
        ws.emit(Note(f"workers: {step.color.value} {'running' if step.action == 'start' else 'stopped'} "
                     f"({count} running) in {took:g}s", "ok"))
    report["seconds"] = round(clock() - started, 2)
    return report


def _wait(ws: Workspace, step: HandoverStep, settings: WorkerSettings, sleep: Callable[[float], None],
          clock: Callable[[], float]) -> int:
    deadline = clock() + WAIT_SECONDS
    subject = f"{step.color.value} workers"
    count_of = running_workers if step.action == "start" else stopped_workers
    try:
        while True:
            count = count_of(ws, step.color)
            if step_done(step, settings, count):
                return count
            if clock() >= deadline:
                raise BgtoolError(
                    f"workers: {step.describe(settings)} not done after {WAIT_SECONDS:.0f}s ({count} running)",
                    hint=f"See 'bgtool status {ws.env}'; 'bgtool apply {ws.env}' brings the worker groups to the file.")
            elapsed = WAIT_SECONDS - (deadline - clock())
            ws.emit(Waiting(subject, f"{count} running, want {step.desired(settings)}", elapsed))
            sleep(POLL_SECONDS)
    finally:
        ws.emit(WaitOver(subject))

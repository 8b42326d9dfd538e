"""`bgtool deploy ENV VERSION`: put a new version on the idle color, and only there.

The version is written into the environment file first (so the file stays the source of truth and
a re-run resumes), then only that color's layer is planned and applied, so the live color cannot be
touched even by a wrong template; then bgtool waits until AWS reports every instance in service and
healthy in the color's target group. Every failure says what the file says, whether the layer was
applied, and the command that recovers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bgtool.aws.live import ColorLive
from bgtool.compute import compute_for
from bgtool.config import envfile
from bgtool.config.schema import Color, ColorSettings, check_version
from bgtool.errors import BgtoolError
from bgtool.events import Waiting, WaitOver
from bgtool.records.history import History, Record
from bgtool.records.lock import OperationLock
from bgtool.records.provenance import begin, refuse_stale, stamp
from bgtool.release.database import guard_and_migrate
from bgtool.render.templates import color_vars
from bgtool.terraform.layers import LayerPlan, apply_plan, plan_layer
from bgtool.terraform.workspace import Workspace

Approver = Callable[[LayerPlan], bool]
MAX_POLL_SECONDS = 5.0


class Declined(BgtoolError):
    """The person at the prompt said no; the file was restored."""


@dataclass
class ColorApply:
    """What applying one color layer did."""

    layer: str
    status: str  # "applied" | "no-changes"
    add: int = 0
    change: int = 0
    destroy: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class DeployResult:
    env: str
    color: str
    version: str
    previous_version: str
    apply: ColorApply
    waited_seconds: float
    live: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, "env": self.env, "color": self.color, "version": self.version,
                "previous_version": self.previous_version, "layer": self.apply.to_dict(),
                "waited_seconds": round(self.waited_seconds, 1), "live": self.live}


# --------------------------------------------------------------------------------------------
# Shared with retire: guard the live color, apply one color layer, wait for AWS to agree
# --------------------------------------------------------------------------------------------


def production_weight(ws: Workspace, color: Color) -> int:
    """The live weight of COLOR in production (0 when nothing is applied yet), whatever the traffic mode."""
    from bgtool.traffic import router_for

    weights = router_for(ws).live_weights()
    return weights.of(color) if weights else 0


def refuse_live(ws: Workspace, color: Color, action: str) -> None:
    """Refuse to act on a color that is live in the file or takes any production traffic."""
    env, config = ws.env, ws.config
    if color is config.active_color:
        raise BgtoolError(
            f"refusing to {action} {color.value}: it is the live color of {env} "
            f"(environments/{env}.yaml active_color: {color.value}); nothing was changed or planned",
            hint=f"{action.capitalize()} the idle color {color.other.value} instead "
            f"('bgtool {action} {env} ...' picks it by default), then 'bgtool switch {env}'.",
        )
    weight = production_weight(ws, color)
    if weight > 0:
        raise BgtoolError(
            f"refusing to {action} {color.value}: the file says it is idle, but the production listener "
            f"sends it {weight}% of the traffic; nothing was changed or planned",
            hint=f"Check 'bgtool status {env}'; finish or roll back the switch in progress first.",
        )


def apply_color(ws: Workspace, color: Color, approve: Approver) -> ColorApply:
    """Plan and apply only COLOR's layer; the other color's state is never opened."""
    ws.prepare()
    plan = plan_layer(ws, color.value)
    if plan.status == "no-changes":
        return ColorApply(color.value, "no-changes")
    if not approve(plan):
        raise Declined(f"the {color.value} layer plan was declined")
    apply_plan(ws, plan)
    return ColorApply(color.value, "applied", plan.add, plan.change, plan.destroy)


def ready(live: ColorLive, desired: int, version: str | None) -> tuple[bool, str]:
    """Pure: has AWS caught up with the file? (every instance in service and healthy in the group)."""
    healthy = {t.id for t in live.targets if t.state == "healthy"}
    serving = [i for i in live.instance_ids if i in healthy]
    text = (f"{live.in_service}/{desired} in service, {len(serving)}/{desired} healthy in the target group"
            + (f", version {','.join(live.versions) or '-'}" if version else ""))
    done = (live.desired == desired and live.in_service == desired and len(serving) == desired
            and (version is None or live.versions == [version]))
    return done, text


def wait_for_color(ws: Workspace, color: Color, timeout: float, version: str | None) -> tuple[ColorLive, float]:
    """Poll AWS with live progress until COLOR matches the file, or fail after TIMEOUT seconds."""
    desired = int(color_vars(ws.config, color)["desired"])  # type: ignore[call-overload]
    poll = min(ws.config.traffic.poll_seconds, MAX_POLL_SECONDS)
    started = time.monotonic()
    compute = compute_for(ws)
    try:
        while True:
            live = compute.live(color)
            done, text = ready(live, desired, version)
            elapsed = time.monotonic() - started
            ws.emit(Waiting(color.value, text, elapsed))
            if done:
                return live, elapsed
            if elapsed >= timeout:
                raise BgtoolError(f"{color.value} did not become ready within {timeout:.0f}s: {text}")
            time.sleep(poll)
    finally:
        ws.emit(WaitOver(color.value))


# --------------------------------------------------------------------------------------------
# deploy
# --------------------------------------------------------------------------------------------


def deploy(ws: Workspace, version: str, approve: Approver, *, color: Color | None = None,
           timeout: float | None = None) -> DeployResult:
    """Deploy VERSION to the idle color (or COLOR, which must not be live), under the operation lock.

    The lock comes first and every decision after it, on the file and the production weights as they are
    then: a switch that finished while this run waited for the lock has made the other color idle.
    """
    check_version(version, "deploy VERSION")  # before the lock, the history and the file see it
    label = f"deploy {version}" + (f" to {Color(color).value}" if color else "")
    with OperationLock.of(ws).held(label):
        ws.reload()
        refuse_stale(ws, History.of(ws).read(), "deploy")  # it would undo a release
        color = Color(color) if color else ws.config.idle_color
        refuse_live(ws, color, "deploy")
        return _deploy_locked(ws, color, version, approve, timeout)


def _deploy_locked(ws: Workspace, color: Color, version: str, approve: Approver,
                   timeout: float | None) -> DeployResult:
    before = ws.config.colors.of(color)
    history = History.of(ws)
    started = begin(ws)
    envfile.check_version_writable(ws.loaded, color, version)  # before migrations run, not after
    migrations = guard_and_migrate(ws, color, version, history)  # refuses before the file changes
    stage = "file"
    try:
        envfile.set_version(ws.loaded, color, version)
        ws.reload()
        stage = "apply"
        applied = apply_color(ws, color, approve)
        stage = "wait"
        live, waited = wait_for_color(ws, color, timeout or ws.config.gate.wait_seconds, version)
    except Declined as exc:
        _restore(ws, color, before)
        raise Declined(f"{exc.message}; environments/{ws.env}.yaml restored to {color.value} "
                       f"version {before.version}", hint="Nothing was applied.") from None
    except BgtoolError as exc:
        _record_failure(history, ws, color, before.version, version, stage, exc,
                        stamp(ws.config, started, wrote=stage != "file"))
        raise _failed(ws, color, before.version, version, stage, exc) from exc
    versions = {"before": before.version, "after": version}
    history.append(Record("deploy", "succeeded", to_color=color.value, versions=versions,
                          details={"layer": applied.to_dict(), "waited_seconds": round(waited, 1), **migrations},
                          **stamp(ws.config, started, wrote=True)))
    return DeployResult(ws.env, color.value, version, before.version, applied, waited, _live_summary(live))


def _restore(ws: Workspace, color: Color, before: ColorSettings) -> None:
    envfile.set_version(ws.loaded, color, before.version)
    if before.retired:
        envfile.set_retired(ws.loaded, color, True)
    ws.reload()


def _live_summary(live: ColorLive) -> dict[str, Any]:
    return {"asg_names": live.asg_names, "versions": live.versions, "desired": live.desired,
            "in_service": live.in_service, "healthy_targets": live.healthy_targets}


def _record_failure(history: History, ws: Workspace, color: Color, previous: str, version: str,
                    stage: str, exc: BgtoolError, stamp: dict[str, Any]) -> None:
    history.append(Record("deploy", "failed", to_color=color.value,
                          versions={"before": previous, "after": version},
                          reason=f"{stage}: {exc.message.splitlines()[0]}", details={"stage": stage}, **stamp))


def _failed(ws: Workspace, color: Color, previous: str, version: str, stage: str, exc: BgtoolError) -> BgtoolError:
    """What state things are in after a failure at STAGE, and how to get out of it."""
    env, layer = ws.env, color.value
    file_state = (f"environments/{env}.yaml still says {layer} version {previous}" if stage == "file"
                  else f"environments/{env}.yaml already says {layer} version {version}")
    layer_state = {
        "file": f"the {layer} layer was not planned or applied",
        "apply": f"the {layer} layer was not applied or only part-way (its Terraform state records what was done)",
        "wait": f"the {layer} layer was applied, but AWS did not report it ready",
    }[stage]
    return BgtoolError(
        f"deploy of {version} to {layer} failed: {exc.message}\n{file_state}; {layer_state}; "
        f"the live color {color.other.value} was not touched",
        hint=f"Fix the cause and run 'bgtool deploy {env} {version}' again (it resumes), check with "
        f"'bgtool verify {env}', or go back with 'bgtool deploy {env} {previous}'.",
    )

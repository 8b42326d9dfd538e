"""Infrastructure changes without an unguarded change to production: `bgtool apply` and its release.

`apply` brings `base`, the idle color and `traffic` to the file. The layer of the color that serves
production is never applied like the others: its saved plan (`terraform show -json`) is classified
first, resource by resource.

- capacity: an in-place update of the live Auto Scaling group that touches only `desired_capacity`,
  `min_size`, `max_size` (and `wait_for_elb_capacity`, which follows desired), or of the live ECS
  service's `desired_count` and its scalable target's `min_capacity`/`max_capacity`. Scaling serves
  the same version on the same definition, so it is applied directly and reported as such.
- monitoring: a live color's alarm created or updated in place. Alarms decide what the gate and
  the bake watch, not what answers requests, so they are applied directly too. An alarm that
  would be deleted or replaced is a release: the live color is never left unwatched.
- release: everything else (a replaced launch template or Auto Scaling group, instance type, AMI,
  user data, security groups, subnets, target group attachment, tags). It would replace or alter
  the instances that serve production, so it goes through a blue/green release: the idle color
  gets the change first at the live color's version (a deploy of that version, so only the
  infrastructure differs), the gate runs, traffic moves in steps with bake and automatic restore
  (the guarded switch), and only then is the now-idle old color brought up to date.

Without `--release` a pending release is refused before anything is applied (the live layer is
planned first): the safer choice, since a partial apply would leave the colors differing in more
than the version. Separately, a plan that would replace or destroy the load balancer, a target
group or a listener is called out and needs a second, explicit confirmation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bgtool.config.schema import Color
from bgtool.errors import BgtoolError
from bgtool.events import Confirm, Note, Question
from bgtool.records.history import History, Record
from bgtool.records.lock import OperationLock
from bgtool.records.provenance import begin, refuse_stale, release_values, stamp
from bgtool.release.deploy import apply_color, deploy, production_weight, wait_for_color
from bgtool.release.switch import Switch, explain, gitops_handler, plan_from
from bgtool.render.templates import LAYERS
from bgtool.terraform.layers import (
    RELEASE,
    Approver,
    LayerHandler,
    LayerPlan,
    LayerResult,
    apply_layers,
    apply_plan,
    plan_layer,
)
from bgtool.terraform.runner import TerraformError
from bgtool.terraform.workspace import Workspace
from bgtool.traffic import router_for

CAPACITY = "capacity"
MONITORING = "monitoring"
LOAD_BALANCER = "load-balancer"
"""A replace or destroy of the load balancer, a target group or a listener: traffic stops meanwhile."""

CAPACITY_ATTRIBUTES: dict[str, frozenset[str]] = {
    "aws_autoscaling_group": frozenset({"desired_capacity", "min_size", "max_size", "wait_for_elb_capacity"}),
    "aws_ecs_service": frozenset({"desired_count"}),
    "aws_appautoscaling_target": frozenset({"min_capacity", "max_capacity"}),
}
"""Per resource type, the attributes whose in-place update only scales a color (app.compute autoscaling, ecs)."""
LOAD_BALANCER_TYPES = frozenset({"aws_lb", "aws_alb", "aws_lb_target_group", "aws_alb_target_group",
                                 "aws_lb_listener", "aws_alb_listener"})
SHARED_LAYERS = ("base", "traffic")

DESCRIPTION = {
    RELEASE: "will be released blue/green",
    CAPACITY: "capacity change, applied directly",
    MONITORING: "alarm change, applied directly",
    LOAD_BALANCER: "REPLACES OR DESTROYS traffic routing: production is down until it is recreated",
}


# --------------------------------------------------------------------------------------------
# Classification of a saved plan (pure)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One resource change of a saved plan, as classified."""

    address: str
    action: str  # create | update | delete | replace
    kind: str  # release | capacity | monitoring | load-balancer | "" (nothing special)
    attributes: tuple[str, ...] = ()

    def describe(self) -> str:
        what = f" ({', '.join(self.attributes)})" if self.attributes and self.action == "update" else ""
        return f"{self.action} {self.address}{what}"


def action_of(actions: Sequence[str]) -> str:
    """Terraform's action list in one word ("delete"+"create" in either order is a replace)."""
    if set(actions) == {"create", "delete"}:
        return "replace"
    return actions[0] if len(actions) == 1 else "+".join(actions)


def _unknown(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(_unknown(v) for v in value)
    return value is True


def _normal(value: Any) -> Any:
    """null, "", [] and {} all mean "not set" to the AWS provider (SDKv2 cannot tell them apart): an
    update plan shows a block read back with null inside as "" without changing anything."""
    if isinstance(value, dict):
        value = {k: n for k, v in value.items() if (n := _normal(v)) is not None}
    elif isinstance(value, list):
        value = [_normal(v) for v in value]
        value = value if any(v is not None for v in value) else []
    return None if value in (None, "", [], {}) else value


def changed_attributes(change: Mapping[str, Any], configured: set[str] | None = None) -> tuple[str, ...]:
    """Top-level attributes whose planned value differs from the state, or is not known until apply.

    An unknown value counts only for attributes the configuration sets (CONFIGURED; all when not
    known): the provider leaves computed attributes it owns unknown in any update (e.g. an Auto
    Scaling group's capacity_reservation_specification when only desired_capacity changes).
    """
    before = change.get("before") or {}
    after = change.get("after") or {}
    unknown = change.get("after_unknown") or {}
    keys = set(before) | set(after) | set(unknown)
    differs = {k for k in keys if not _unknown(unknown.get(k)) and _normal(before.get(k)) != _normal(after.get(k))}
    pending = {k for k in keys if _unknown(unknown.get(k)) and (configured is None or k in configured)}
    return tuple(sorted(differs | pending))


def configured_attributes(plan_json: Mapping[str, Any], rc: Mapping[str, Any]) -> set[str] | None:
    """The attributes the configuration sets on RC's resource (its `expressions`), None when not found."""
    module: Mapping[str, Any] = (plan_json.get("configuration") or {}).get("root_module") or {}
    for call in re.findall(r'module\.([A-Za-z0-9_-]+)(?:\[[^\]]*\])?', rc.get("module_address") or ""):
        module = ((module.get("module_calls") or {}).get(call) or {}).get("module") or {}
    for resource in module.get("resources") or []:
        if (resource.get("type"), resource.get("name"), resource.get("mode", "managed")) == (
                rc.get("type"), rc.get("name"), rc.get("mode", "managed")):
            return set(resource.get("expressions") or {})
    return None


def _changes(plan_json: Mapping[str, Any]) -> Iterable[tuple[dict[str, Any], str, tuple[str, ...]]]:
    for rc in plan_json.get("resource_changes") or []:
        if rc.get("mode") == "data":
            continue
        change = rc.get("change") or {}
        actions = change.get("actions") or ["no-op"]
        if actions[0] in ("no-op", "read"):
            continue
        yield rc, action_of(actions), changed_attributes(change, configured_attributes(plan_json, rc))


def classify_live_color(plan_json: Mapping[str, Any]) -> list[Change]:
    """The changes of a live color's layer: capacity and monitoring apply directly, the rest is a release."""
    return [Change(rc["address"], action, _live_kind(rc["type"], action, attrs), attrs)
            for rc, action, attrs in _changes(plan_json)]


def _live_kind(rtype: str, action: str, attrs: tuple[str, ...]) -> str:
    scaling = CAPACITY_ATTRIBUTES.get(rtype)
    if scaling is not None and action == "update" and set(attrs) <= scaling:
        return CAPACITY
    if rtype == "aws_cloudwatch_metric_alarm" and action in ("create", "update"):
        return MONITORING
    return RELEASE


def classify_shared(plan_json: Mapping[str, Any]) -> list[Change]:
    """The changes of base or traffic: flag the ones that take traffic routing away."""
    return [Change(rc["address"], action,
                   LOAD_BALANCER if rc["type"] in LOAD_BALANCER_TYPES and action in ("replace", "delete") else "",
                   attrs)
            for rc, action, attrs in _changes(plan_json)]


def marks(changes: Iterable[Change]) -> dict[str, str]:
    return {c.address: c.kind for c in changes if c.kind}


def needs_release(changes: Iterable[Change]) -> list[Change]:
    return [c for c in changes if c.kind == RELEASE]


def release_needed_message(env: str, live: Color, changes: Sequence[Change], *, applied_first: bool) -> BgtoolError:
    """The refusal: which live resources would change, what state things are in, and the command."""
    listing = "\n".join(f"  {c.describe()}" for c in changes)
    done = ("the layers listed below as up to date were applied first (the change only became a release "
            "after them); " if applied_first else "nothing was applied; ")
    return BgtoolError(
        f"{env}: the live color {live.value} has pending changes that would alter what serves production:\n"
        f"{listing}\n{done}the {live.value} layer was not applied",
        hint=f"Release them blue/green: 'bgtool apply {env} --release' ({live.other.value} gets them first at "
        f"{live.value}'s version, then the gate, a stepped switch with bake and restore, then {live.value}). "
        "Or revert the change in the repository.",
    )


def apply_order(layers: Sequence[str], live: Iterable[Color], active: Color) -> list[str]:
    """base, the idle color(s), traffic, then the live color(s): the file's active color last."""
    live_layers = sorted((c.value for c in live), key=lambda c: c == active.value)
    head = [layer for layer in layers if layer not in live_layers and layer != "traffic"]
    tail = [layer for layer in live_layers if layer in layers]
    return head + (["traffic"] if "traffic" in layers else []) + tail


# --------------------------------------------------------------------------------------------
# Reading what serves production, and marking plans
# --------------------------------------------------------------------------------------------


def serving_colors(ws: Workspace) -> set[Color]:
    """Colors with production weight now; none before the first apply (nothing serves yet)."""
    weights = router_for(ws).live_weights()
    if weights is None:
        return set()
    return {c for c in Color if weights.of(c) > 0}


def plan_json(ws: Workspace, plan: LayerPlan) -> dict[str, Any]:
    assert plan.plan_file is not None
    return ws.terraform(plan.layer).show_plan(plan.plan_file)


def classify_plan(ws: Workspace, plan: LayerPlan, live: bool) -> list[Change]:
    """Fill in plan.live and plan.marks from its saved plan; returns the classified changes."""
    plan.live = live
    if plan.status != "changes" or plan.plan_file is None or not (live or plan.layer in SHARED_LAYERS):
        return []
    document = plan_json(ws, plan)
    changes = classify_live_color(document) if live else classify_shared(document)
    plan.marks = marks(changes)
    return changes


def mark_plans(ws: Workspace, plans: Sequence[LayerPlan]) -> None:
    """For `bgtool plan`: say which changes are releases, capacity changes, or take routing away."""
    try:
        serving = {c.value for c in serving_colors(ws)}
    except (ClientError, BotoCoreError) as exc:
        ws.emit(Note(f"live weights unreadable ({exc}); live-color changes are not marked", "warn"))
        serving = set()
    for plan in plans:
        classify_plan(ws, plan, plan.layer in serving)


# --------------------------------------------------------------------------------------------
# apply
# --------------------------------------------------------------------------------------------


@dataclass
class InfraApply:
    """`bgtool apply ENV`: the callbacks the CLI provides, and what this run has done so far."""

    ws: Workspace
    approve: Approver
    confirm: Confirm
    confirm_routing: Confirm
    """The second confirmation of a plan that replaces or destroys the load balancer (no --yes skips it)."""
    release: bool = False
    accept_inconclusive: bool = False
    """A switch this apply performs goes on through a gate or steps without a verdict (recorded)."""
    idle_prepared: bool = False

    @property
    def command(self) -> str:
        return f"bgtool apply {self.ws.env}" + (" --release" if self.release else "")

    def run(self, layers: Sequence[str]) -> list[LayerResult]:
        """The whole run under the operation lock, from the first reading of the file and of production to
        the last layer: the guarded switch, the deploy and the release inside it join that lock."""
        ws = self.ws
        ws.prepare()  # the lock table is part of the state backend
        with OperationLock.of(ws).held(self.command.removeprefix("bgtool ")):
            ws.reload()  # the file as it is now that no other operation runs
            started = begin(ws)
            results = self._run_locked(layers)
            self._record_apply(started, layers, results)
            return results

    def _record_apply(self, started: dict[str, Any], layers: Sequence[str], results: list[LayerResult]) -> None:
        """One "apply" record, also when nothing changed: the commit it ran from is what the merge pipeline
        compares HEAD with (`bgtool changed --since-applied`). "complete" when every layer was applied or
        found up to date (a declined or partial run proves nothing)."""
        ws = self.ws
        done = {"applied", "no-changes", "delegated", "released"}
        complete = set(layers) == set(LAYERS) and all(r.status in done for r in results)
        details = {"layers": {r.layer: r.status for r in results}, "complete": complete, "trigger": self.command}
        declined = any(r.status == "declined" for r in results)
        record = Record("apply", "declined" if declined else "succeeded", to_color=ws.config.active_color.value,
                        versions={c.value: ws.config.colors.of(c).version for c in Color}, details=details,
                        **stamp(ws.config, started, wrote=False))
        try:
            History.of(ws).append(record)
        except (ClientError, BotoCoreError, OSError) as exc:
            ws.emit(Note(f"the apply could not be recorded in the history: {exc}", "warn"))

    def _run_locked(self, layers: Sequence[str]) -> list[LayerResult]:
        ws = self.ws
        refuse_stale(ws, History.of(ws).read(), f"apply {ws.env}")  # provenance
        serving = serving_colors(ws)
        releasing = self._precheck(serving, layers)
        handlers: dict[str, LayerHandler] = {"traffic": gitops_handler(self.confirm, self.accept_inconclusive)}
        for color in serving:
            handlers[color.value] = self._live_handler(color)
        active = ws.config.active_color
        if releasing == {active} and serving == {active}:
            handlers[active.other.value] = self._idle_handler(active)
        order = apply_order(layers, serving, ws.config.active_color)
        return apply_layers(ws, order, self._approve, handlers=handlers, resume=self.command)

    # -- before anything is applied ---------------------------------------------------------
    def _precheck(self, serving: set[Color], layers: Sequence[str]) -> set[Color]:
        """Plan the live layer(s) first: refuse a release that was not asked for, with nothing applied;
        return the colors that will be released (so the idle color is prepared in the same pass)."""
        ws = self.ws
        releasing: set[Color] = set()
        for color in sorted(serving):
            stays_live = color is ws.config.active_color or "traffic" not in layers
            if color.value not in layers or not stays_live:
                continue
            try:
                plan = plan_layer(ws, color.value)
            except TerraformError:
                continue  # e.g. base not applied yet: the layer is planned again after base
            pending = needs_release(classify_plan(ws, plan, live=True))
            if pending and not self.release:
                raise release_needed_message(ws.env, color, pending, applied_first=False)
            if pending:
                releasing.add(color)
        return releasing

    # -- every plain layer apply ------------------------------------------------------------
    def _approve(self, plan: LayerPlan) -> bool:
        changes = classify_plan(self.ws, plan, plan.live)
        if not self.approve(plan):
            return False
        routing = [c for c in changes if c.kind == LOAD_BALANCER]
        if not routing:
            return True
        listing = "; ".join(c.describe() for c in routing)
        return self.confirm_routing(Question(
            f"This {plan.layer} plan replaces or destroys traffic routing ({listing}); production does not "
            f"answer until it is recreated. Apply it to {self.ws.env}?", summary=DESCRIPTION[LOAD_BALANCER]))

    # -- the idle color, when a release follows ---------------------------------------------
    def _idle_handler(self, live: Color) -> LayerHandler:
        """Put the idle color at the live color's version in the same apply (no second replace later)."""

        def handle(ws: Workspace) -> LayerResult | None:
            return self._prepare_idle(ws, live)

        return handle

    def _prepare_idle(self, ws: Workspace, live: Color) -> LayerResult:
        idle = live.other
        version = ws.config.colors.of(live).version
        ws.emit(Note(f"{idle.value} takes the infrastructure change first, at {live.value}'s version {version}"))
        done = deploy(ws, version, self.approve, color=idle)
        self.idle_prepared = True
        a = done.apply
        return LayerResult(idle.value, a.status, a.add, a.change, a.destroy,
                           detail=f"at {live.value}'s version {version}, ready after {done.waited_seconds:.0f}s")

    # -- the live color -----------------------------------------------------------------------
    def _live_handler(self, color: Color) -> LayerHandler:
        def handle(ws: Workspace) -> LayerResult | None:
            if production_weight(ws, color) == 0:
                ws.emit(Note(f"{color.value} no longer serves production: its layer is applied as an idle color"))
                return None
            return self._live(ws, color)

        return handle

    def _live(self, ws: Workspace, color: Color) -> LayerResult:
        layer = color.value
        plan = plan_layer(ws, layer)
        changes = classify_plan(ws, plan, live=True)
        if plan.status == "no-changes":
            return LayerResult(layer, "no-changes")
        pending = needs_release(changes)
        if not pending:
            what = ", ".join(sorted({DESCRIPTION[c.kind] for c in changes if c.kind})) or "outputs only"
            ws.emit(Note(f"{layer} (live): not a release: {what}", "ok"))
            if not self.approve(plan):
                return LayerResult(layer, "declined", plan.add, plan.change, plan.destroy)
            apply_plan(ws, plan)
            return LayerResult(layer, "applied", plan.add, plan.change, plan.destroy, detail=f"live color: {what}")
        if not self.release:
            raise release_needed_message(ws.env, color, pending, applied_first=True)
        return self._release(ws, color, pending)

    def _release(self, ws: Workspace, old: Color, pending: list[Change]) -> LayerResult:
        """Idle first at the live version, gate and stepped switch, then the old color; recorded."""
        new = old.other
        version = ws.config.colors.of(old).version
        ws.emit(Note(f"release of {len(pending)} live change(s): {new.value} first, then the switch, then {old.value}"))
        started = (begin(ws), release_values(ws.config))
        stage = "idle"
        try:
            if not self.idle_prepared:
                self._prepare_idle(ws, old)
            stage = "switch"
            outcome = Switch(ws, plan_from(ws, new, None, None, None, trigger="release",
                                            accept_inconclusive=self.accept_inconclusive), self.confirm).run()
            if not outcome.ok:
                raise BgtoolError(explain(outcome))
            stage = "old"
            with OperationLock.of(ws).held(f"release: bring {old.value} up to date"):
                applied = apply_color(ws, old, self.approve)
                wait_for_color(ws, old, ws.config.gate.wait_seconds, version)
        except BgtoolError as exc:
            self._record(ws, started, old, pending, "failed", reason=f"{stage}: {exc.message.splitlines()[0]}")
            raise _release_failed(ws.env, old, version, stage, exc) from exc
        self._record(ws, started, old, pending, "succeeded")
        ws.emit(Note(f"{ws.env}: released; production is on {new.value}, {old.value} is up to date and idle", "ok"))
        return LayerResult(old.value, "released", applied.add, applied.change, applied.destroy,
                           detail=f"released blue/green: {new.value} now live, {old.value} updated")

    def _record(self, ws: Workspace, started: tuple[dict[str, Any], dict[str, Any]], old: Color,
                pending: list[Change], result: str, reason: str = "") -> None:
        """One "release" record beside the deploy and switch records of its steps, with what it wrote."""
        source, values = started
        details = {"changes": [c.describe() for c in pending], "trigger": self.command}
        record = Record("release", result, from_color=old.value, to_color=old.other.value,
                        versions={c.value: ws.config.colors.of(c).version for c in Color}, reason=reason,
                        details=details, **stamp(ws.config, source, wrote=release_values(ws.config) != values))
        try:
            History.of(ws).append(record)
        except (ClientError, BotoCoreError, OSError) as exc:
            ws.emit(Note(f"the release could not be recorded in the history: {exc}", "warn"))


def _release_failed(env: str, old: Color, version: str, stage: str, exc: BgtoolError) -> BgtoolError:
    new = old.other
    state = {
        "idle": f"{new.value} did not get the change (or not all of it); production is untouched on {old.value}",
        "switch": f"{new.value} has the change at version {version}; the switch did not complete (see above)",
        "old": f"production is on {new.value} with the change; {old.value} (now idle) is not up to date yet",
    }[stage]
    return BgtoolError(f"release of the {old.value} changes failed: {exc.message}\n{state}",
                       hint=(f"{exc.hint}\n" if exc.hint else "")
                       + f"Fix the cause and run 'bgtool apply {env} --release' again: it resumes where it stopped.")

"""Plan and apply across an environment's layers, in dependency order.

base → blue, green → traffic (`bgtool apply` moves the live color after traffic, where a handler
decides whether its change is a release: bgtool.release.infra). A failure stops the run and says
exactly which layers are already applied, which failed (with the resource and Terraform's
diagnostic) and which were not reached, plus the command that resumes: nothing is half-applied
silently.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bgtool.errors import BgtoolError
from bgtool.render.templates import LAYERS, UPSTREAM
from bgtool.terraform.events import ResourceChange
from bgtool.terraform.runner import TerraformError
from bgtool.terraform.workspace import Workspace

RELEASE = "release"


@dataclass
class LayerPlan:
    layer: str
    status: str  # "no-changes" | "changes" | "blocked" | "error"
    add: int = 0
    change: int = 0
    destroy: int = 0
    resources: list[ResourceChange] = field(default_factory=list)
    plan_file: Path | None = None
    error: str | None = None
    live: bool = False
    """The layer of a color that serves production traffic now."""
    marks: dict[str, str] = field(default_factory=dict)
    """What a planned change means beyond its action, by address ("release", "capacity", ...)."""

    @property
    def release(self) -> bool:
        """Applying this plan needs a blue/green release (it would change what serves production)."""
        return RELEASE in self.marks.values()

    def to_dict(self) -> dict[str, object]:
        return {
            "layer": self.layer, "status": self.status, "add": self.add, "change": self.change,
            "destroy": self.destroy, "error": self.error, "live": self.live, "release": self.release,
            "resources": [{"address": r.address, "action": r.action, "kind": self.marks.get(r.address),
                           "release": self.marks.get(r.address) == RELEASE} for r in self.resources],
        }


@dataclass
class LayerResult:
    layer: str
    status: str  # "applied" | "no-changes" | "declined" | "failed" | "not-reached" | "delegated" | "released"
    add: int = 0
    change: int = 0
    destroy: int = 0
    detail: str = ""

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


class ApplyFailed(BgtoolError):
    def __init__(self, env: str, results: list[LayerResult], cause: BgtoolError, resume: str | None = None) -> None:
        self.results = results
        applied = [r.layer for r in results if r.status in ("applied", "no-changes", "delegated", "released")]
        failed = [r.layer for r in results if r.status == "failed"]
        pending = [r.layer for r in results if r.status == "not-reached"]
        super().__init__(
            f"{cause.message}\n\nlayers up to date: {', '.join(applied) or 'none'}; "
            f"failed: {', '.join(failed) or 'none'}; not reached: {', '.join(pending) or 'none'}",
            hint=(f"{cause.hint}\n" if cause.hint else "")
            + f"Fix the cause, then run '{resume or f'bgtool apply {env}'}' again: applied layers are left "
            "as they are and the failed layer resumes from its Terraform state.",
        )


def select_layers(requested: Sequence[str] | None) -> list[str]:
    if not requested:
        return list(LAYERS)
    unknown = [layer for layer in requested if layer not in LAYERS]
    if unknown:
        raise BgtoolError(f"--layer {', '.join(unknown)}: unknown layer; allowed: {', '.join(LAYERS)}")
    return [layer for layer in LAYERS if layer in requested]


def plan_layer(ws: Workspace, layer: str, variables: dict[str, object] | None = None, *,
               lock: bool = True) -> LayerPlan:
    """`lock=False` only for a plan that is shown, never applied (see Terraform.plan)."""
    tf = ws.terraform(layer)
    plan_file = tf.workdir / "bgtool.tfplan"
    result = tf.plan(variables=variables, out=plan_file, lock=lock)
    s = result.summary
    status = "changes" if result.exit_code == 2 else "no-changes"
    return LayerPlan(layer, status, s.add, s.change, s.destroy, s.planned, plan_file)


def plan_layers(ws: Workspace, layers: Sequence[str]) -> list[LayerPlan]:
    """`bgtool plan`: plan each layer to show it, without Terraform's state lock (nothing is applied
    from these plans); a layer whose upstream is not applied yet is 'blocked', not an error."""
    ws.prepare()
    plans: list[LayerPlan] = []
    pending_upstream: set[str] = set()
    for layer in layers:
        try:
            plan = plan_layer(ws, layer, lock=False)
        except TerraformError as exc:
            blocked = [u for u in UPSTREAM[layer] if u in pending_upstream]
            status = "blocked" if blocked else "error"
            note = f"waits for layer {', '.join(blocked)} to be applied" if blocked else exc.message
            plan = LayerPlan(layer, status, error=note)
        if plan.status != "no-changes":
            pending_upstream.add(layer)
        plans.append(plan)
    return plans


LayerHandler = Callable[[Workspace], LayerResult | None]
TrafficHandler = LayerHandler
Approver = Callable[[LayerPlan], bool]


def apply_layers(
    ws: Workspace,
    layers: Sequence[str],
    approve: Approver,
    traffic_handler: TrafficHandler | None = None,
    *,
    handlers: Mapping[str, LayerHandler] | None = None,
    resume: str | None = None,
) -> list[LayerResult]:
    """Apply in the order given; a handler may take over a layer (the guarded switch takes traffic,
    a release takes the live color) by returning its result, or return None for a plain apply."""
    ws.prepare()
    by_layer = {**(handlers or {}), **({"traffic": traffic_handler} if traffic_handler else {})}
    results: list[LayerResult] = []
    for i, layer in enumerate(layers):
        try:
            result = _apply_one(ws, layer, approve, by_layer.get(layer))
        except BgtoolError as exc:
            results.append(LayerResult(layer, "failed", detail=exc.message))
            results += [LayerResult(rest, "not-reached") for rest in layers[i + 1 :]]
            raise ApplyFailed(ws.env, results, exc, resume) from exc
        results.append(result)
        if result.status == "declined":
            results += [LayerResult(rest, "not-reached") for rest in layers[i + 1 :]]
            break
    return results


def _apply_one(ws: Workspace, layer: str, approve: Approver, handler: LayerHandler | None) -> LayerResult:
    if handler is not None:
        delegated = handler(ws)
        if delegated is not None:
            return delegated
    plan = plan_layer(ws, layer)
    if plan.status == "no-changes":
        return LayerResult(layer, "no-changes")
    if not approve(plan):
        return LayerResult(layer, "declined", plan.add, plan.change, plan.destroy)
    apply_plan(ws, plan)
    return LayerResult(layer, "applied", plan.add, plan.change, plan.destroy)


def apply_plan(ws: Workspace, plan: LayerPlan) -> None:
    """Apply exactly the saved plan that was shown (and approved), with live progress."""
    assert plan.plan_file is not None
    ws.terraform(plan.layer).apply(plan_file=plan.plan_file)

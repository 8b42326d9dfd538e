"""What runs a color: one kind per `app.compute`, and the workers that follow the live color.

The gate, the switch's bakes, deploy's wait, rollback and `status` read a color through
`ColorCompute` only, so a compute kind is a module here plus one entry in `KINDS`: EC2 Auto Scaling
groups (`autoscaling.AutoScalingCompute`) and ECS services on Fargate (`ecs.EcsCompute`). `workers`
hands a color's queue workers over at a switch.

The environment file may name a kind that is rendered and validated but not operated yet.
`require_operable` is the one rule that refuses such an environment before anything past rendering
touches AWS or Terraform.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from bgtool.aws.live import ColorLive, target_group_arns
from bgtool.config.schema import Color, LoadedEnvironment
from bgtool.errors import BgtoolError
from bgtool.terraform.workspace import Workspace


class ColorCompute(Protocol):
    """Runs a color's instances (or tasks) and says how they are."""

    kind: str
    settings_label: str
    """What `snapshot` compares, in words (drift's parity finding names it)."""

    def live(self, color: Color) -> ColorLive:
        """The color's groups, versions, capacity, targets and alarms as AWS reports them."""

    def snapshot(self, color: Color) -> dict[str, Any]:
        """The color's live settings in a shape comparable with the other color's (drift's live parity).

        Empty when the color does not run as one unit. Its size under "sizes" (compared only when
        the file gives both colors the same), the versions it runs under "versions" (normalized away).
        """


ComputeFactory = Callable[[Workspace], ColorCompute]


class TargetGroupCompute:
    """What every kind shares: its workspace, and the colors' target groups, read once per operation."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._tg_arns: dict[str, str] | None = None

    def target_group_arn(self, color: Color) -> str | None:
        if self._tg_arns is None:  # target groups live in the base layer: fixed during an operation
            self._tg_arns = target_group_arns(self.ws.aws, self.ws.config)
        return self._tg_arns.get(Color(color).value)


def _autoscaling(ws: Workspace) -> ColorCompute:
    from bgtool.compute.autoscaling import AutoScalingCompute  # boto3 clients only for commands that read AWS

    return AutoScalingCompute(ws)


def _ecs(ws: Workspace) -> ColorCompute:
    from bgtool.compute.ecs import EcsCompute

    return EcsCompute(ws)


KINDS: dict[str, ComputeFactory] = {"autoscaling": _autoscaling, "ecs": _ecs}
"""The compute kinds bgtool can operate (plan, apply, deploy, switch, status, ...), by `app.compute`."""


class UnsupportedCompute(BgtoolError):
    """The environment's `app.compute` is rendered and validated, but no command may act on it yet."""


def require_operable(loaded: LoadedEnvironment) -> None:
    """Refuse LOADED when its compute kind has no release support, before any lock, state or AWS call."""
    kind = loaded.config.app.compute
    if kind in KINDS:
        return
    operable = " or ".join(KINDS)
    raise UnsupportedCompute(
        f"environments/{loaded.env}.yaml: app.compute {kind} is supported so far by 'bgtool render' and "
        f"'bgtool iam' only; plan, apply, status, deploy, verify, switch and every other command need "
        f"app.compute {operable} (what bgtool operates so far); nothing was changed",
        hint=f"Release support for {kind} comes in a later change; until then operate an environment with "
        f"app.compute: {operable}.",
    )


def compute_for(ws: Workspace) -> ColorCompute:
    """The compute of WS's environment; refused (UnsupportedCompute) for a kind not operable yet."""
    require_operable(ws.loaded)
    return KINDS[ws.config.app.compute](ws)

"""What runs a color: one kind per `app.compute`, and the workers that follow the live color.

The gate, the switch's bakes and `status` read a color through `ColorCompute` only, so a compute
kind is a module here plus one entry in `compute_for`: EC2 Auto Scaling groups
(`autoscaling.AutoScalingCompute`). `workers` hands a color's queue workers over at a switch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from bgtool.aws.live import ColorLive
from bgtool.config.schema import Color
from bgtool.terraform.workspace import Workspace


class ColorCompute(Protocol):
    """Runs a color's instances (or tasks) and says how they are."""

    kind: str

    def live(self, color: Color) -> ColorLive:
        """The color's groups, versions, capacity, targets and alarms as AWS reports them."""


ComputeFactory = Callable[[Workspace], ColorCompute]


def compute_for(ws: Workspace) -> ColorCompute:
    from bgtool.compute.autoscaling import AutoScalingCompute

    kinds: dict[str, ComputeFactory] = {"autoscaling": AutoScalingCompute}
    return kinds[ws.config.app.compute](ws)

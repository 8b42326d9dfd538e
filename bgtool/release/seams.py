"""The two seams a release turns on: how traffic moves, and what runs a color.

Everything above them (the switch state machine, rollback, the gate's capacity checks) talks to these
interfaces only, so a new traffic mode (Route 53 weighted records) or a new compute kind (ECS services,
worker groups) is a module behind an interface plus one line in a registry, not branches across the
release code. Today: listener weights (bgtool.release.traffic.ListenerRouter) and Auto Scaling groups
(bgtool.release.compute.AutoScalingCompute).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from bgtool.aws.live import ColorLive
from bgtool.config.schema import Color
from bgtool.release.weights import Weights
from bgtool.terraform.workspace import Workspace


class TrafficRouter(Protocol):
    """Moves production traffic between the colors."""

    mode: str

    def live_weights(self) -> Weights | None:
        """What production serves now (None when nothing routes yet), read from AWS, never from state."""

    def apply(self, weights: Weights, test_color: Color) -> dict[str, int]:
        """Move traffic through Terraform (the traffic layer), so plans and drift stay truthful;
        returns Terraform's counts (add, change, destroy)."""

    def flip(self, color: Color) -> Any:
        """Break glass: 100% on COLOR by a direct API call; the caller reconciles with apply()."""

    def describe(self) -> str:
        """One line on what production serves now, for messages after a failure; never raises."""


class ColorCompute(Protocol):
    """Runs a color's instances (or tasks) and says how they are."""

    kind: str

    def live(self, color: Color) -> ColorLive:
        """The color's groups, versions, capacity, targets and alarms as AWS reports them."""


RouterFactory = Callable[[Workspace], TrafficRouter]
ComputeFactory = Callable[[Workspace], ColorCompute]


def router_for(ws: Workspace) -> TrafficRouter:
    from bgtool.release.dns import DnsRouter
    from bgtool.release.traffic import ListenerRouter

    routers: dict[str, RouterFactory] = {"listener": ListenerRouter, "dns": DnsRouter}
    return routers[ws.config.traffic.mode](ws)


def compute_for(ws: Workspace) -> ColorCompute:
    from bgtool.release.compute import AutoScalingCompute

    kinds: dict[str, ComputeFactory] = {"autoscaling": AutoScalingCompute}
    return kinds[ws.config.app.compute](ws)

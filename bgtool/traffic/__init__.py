"""How production traffic moves between the colors: one router per `traffic.mode`.

The switch, the rollback and the apply talk to `TrafficRouter` only, so a traffic mode is a module
here plus one entry in `router_for`, not branches across the release code: listener weights
(`listener.ListenerRouter`) and weighted Route 53 records (`dns.DnsRouter`), with the weights
arithmetic both share (`weights`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from bgtool.config.schema import Color
from bgtool.terraform.workspace import Workspace
from bgtool.traffic.weights import Weights


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


RouterFactory = Callable[[Workspace], TrafficRouter]


def router_for(ws: Workspace) -> TrafficRouter:
    from bgtool.traffic.dns import DnsRouter
    from bgtool.traffic.listener import ListenerRouter

    routers: dict[str, RouterFactory] = {"listener": ListenerRouter, "dns": DnsRouter}
    return routers[ws.config.traffic.mode](ws)

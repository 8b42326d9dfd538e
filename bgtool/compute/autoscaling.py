"""Compute behind EC2 Auto Scaling groups: the color's instances, registered in its target group."""

from __future__ import annotations

from bgtool.aws.live import ColorLive, color_live, target_group_arns
from bgtool.config.schema import Color
from bgtool.terraform.workspace import Workspace


class AutoScalingCompute:
    """One launch template + Auto Scaling group per color (modules/color)."""

    kind = "autoscaling"

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._tg_arns: dict[str, str] | None = None

    def live(self, color: Color) -> ColorLive:
        if self._tg_arns is None:  # target groups live in the base layer: fixed during an operation
            self._tg_arns = target_group_arns(self.ws.aws, self.ws.config)
        return color_live(self.ws.aws, self.ws.config, self.ws.env, color, self._tg_arns.get(color.value))

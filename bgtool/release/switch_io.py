"""What a switch does to the world, behind one small interface.

`Switch` (bgtool.release.switch) drives the state machine; everything it reads or changes goes
through a SwitchIO: the traffic router and the color compute (bgtool.compute, bgtool.traffic), the gate, the
environment file, the history and the operation lock. `WorkspaceIO` is the real one; unit tests
give the switch a fake and check what it does when a restore fails, an operator declines or an
interrupt arrives in any phase.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from bgtool.aws.live import color_alb, target_group_arns
from bgtool.aws.metrics import MetricsReader, TrafficStats, metrics_resolution
from bgtool.compute import ColorCompute, compute_for
from bgtool.config import envfile
from bgtool.config.schema import Color, Environment
from bgtool.records.history import History, Record
from bgtool.records.lock import OperationLock
from bgtool.release.gate import GateReport
from bgtool.terraform.workspace import Workspace
from bgtool.traffic import TrafficRouter, router_for


class TrafficMeter(Protocol):
    def window(self, color: Color, start: datetime, end: datetime) -> TrafficStats | None:
        """What COLOR's target group served between START and END (None: no load balancer to ask)."""


class SwitchIO(Protocol):
    env: str
    router: TrafficRouter
    compute: ColorCompute
    meter: TrafficMeter | None
    """Each step is judged by its traffic when there is one."""

    def emit(self, event: object) -> None: ...

    def config(self) -> Environment:
        """The environment file as it is now, validated again."""

    def gate(self, color: Color) -> GateReport: ...

    def write_active(self, color: Color) -> str:
        """Write active_color into the environment file; returns the file's name."""

    def record(self, record: Record) -> None: ...

    def lock(self, label: str) -> AbstractContextManager[object]: ...

    def refuse_stale(self, action: str) -> None:
        """Raise when the environment file predates the last release that wrote it (provenance)."""

    def serving_problems(self, color: Color) -> list[str]:
        """Why COLOR must not serve production: its version predates a contract migration that ran."""


class WorkspaceIO:
    """The real I/O of a switch, on one environment's workspace."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.env = ws.env
        self.router = router_for(ws)
        self.compute = compute_for(ws)
        self.meter: TrafficMeter | None = CloudWatchMeter(ws)

    def emit(self, event: object) -> None:
        self.ws.emit(event)

    def config(self) -> Environment:
        self.ws.reload()
        return self.ws.config

    def gate(self, color: Color) -> GateReport:
        from bgtool.release.gate import run_gate

        return run_gate(self.ws, color)

    def write_active(self, color: Color) -> str:
        envfile.set_active_color(self.ws.loaded, color)
        self.ws.reload()
        return self.ws.loaded.path.name

    def record(self, record: Record) -> None:
        History.of(self.ws).append(record)

    def handover(self, old: Color, new: Color) -> dict[str, Any]:
        """The workers follow the traffic (nothing without a `workers` section)."""
        from bgtool.compute.workers import hand_over

        return hand_over(self.ws, old, new)

    def lock(self, label: str) -> AbstractContextManager[object]:
        return OperationLock.of(self.ws).held(label)

    def refuse_stale(self, action: str) -> None:
        from bgtool.records.provenance import refuse_stale

        refuse_stale(self.ws, History.of(self.ws).read(), action)

    def serving_problems(self, color: Color) -> list[str]:
        from bgtool.release.database import rollback_problems

        return rollback_problems(self.ws, color, History.of(self.ws))


class CloudWatchMeter:
    """The load balancer metrics of the environment's two target groups (found once, then cached)."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._readers: dict[Color, MetricsReader] = {}
        self._tg_arns: dict[str, str] = {}

    def window(self, color: Color, start: datetime, end: datetime) -> TrafficStats | None:
        reader = self._readers.get(color)
        if reader is None:
            alb = color_alb(self.ws.aws, self.ws.config, color)  # in DNS mode each color has its own
            if alb is None:
                return None
            self._tg_arns = self._tg_arns or target_group_arns(self.ws.aws, self.ws.config)
            reader = self._readers[color] = MetricsReader(self.ws.aws, alb["LoadBalancerArn"],
                                                          metrics_resolution(self.ws.config))
        arn = self._tg_arns.get(color.value)
        return reader.window(arn, start, end) if arn else None

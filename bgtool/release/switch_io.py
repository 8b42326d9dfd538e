"""What a switch does to the world, behind one small interface.

`Switch` (bgtool.release.switch) drives the state machine; everything it reads or changes goes
through a SwitchIO: the traffic router and the color compute (bgtool.release.seams), the gate, the
environment file, the history and the operation lock. `WorkspaceIO` is the real one; unit tests
give the switch a fake and check what it does when a restore fails, an operator declines or an
interrupt arrives in any phase.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from bgtool.config import envfile
from bgtool.config.schema import Color, Environment
from bgtool.release.gate import GateReport
from bgtool.release.history import History, Record
from bgtool.release.lock import OperationLock
from bgtool.release.seams import ColorCompute, TrafficRouter, compute_for, router_for
from bgtool.terraform.workspace import Workspace


class SwitchIO(Protocol):
    env: str
    router: TrafficRouter
    compute: ColorCompute

    def emit(self, event: object) -> None: ...

    def config(self) -> Environment:
        """The environment file as it is now, validated again."""

    def gate(self, color: Color) -> GateReport: ...

    def write_active(self, color: Color) -> str:
        """Write active_color into the environment file; returns the file's name."""

    def record(self, record: Record) -> None: ...

    def lock(self, label: str) -> AbstractContextManager[object]: ...


class WorkspaceIO:
    """The real I/O of a switch, on one environment's workspace."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.env = ws.env
        self.router = router_for(ws)
        self.compute = compute_for(ws)

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
        History(self.ws.root, self.ws.env, self.ws.config, self.ws.aws).append(record)

    def lock(self, label: str) -> AbstractContextManager[object]:
        return OperationLock(self.ws.root, self.ws.env, self.ws.config, self.ws.aws).held(label)

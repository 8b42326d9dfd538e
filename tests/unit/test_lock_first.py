"""`deploy` and `retire` lock first and decide after: a switch that finishes while they wait for the
operation lock has made the other color idle, and they act on that one (or refuse), never on the color
that is live by then. And `apply` holds the lock for its whole run, which the switch inside it joins."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bgtool import traffic
from bgtool.config import envfile
from bgtool.config.schema import Color, load_environment
from bgtool.errors import BgtoolError
from bgtool.events import Collector
from bgtool.records.lock import OperationLock
from bgtool.release import deploy as deploy_module
from bgtool.release import infra
from bgtool.release import retire as retire_module
from bgtool.terraform.workspace import Workspace
from bgtool.traffic.weights import Weights
from tests.helpers import copy_project, edit_yaml


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    root = copy_project(tmp_path)
    edit_yaml(root / "environments/local.yaml", "backend: s3", "backend: local")
    workspace = Workspace(root, "local")
    assert workspace.config.active_color is Color.BLUE
    return workspace


@pytest.fixture
def switch_meanwhile(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> dict[str, Color]:
    """Production follows `live`; a switch to green finishes just before the operation lock is granted."""
    live = {"color": Color.BLUE}
    monkeypatch.setattr(traffic, "router_for", lambda _ws: SimpleNamespace(
        live_weights=lambda: Weights.all_on(live["color"])))
    acquire = OperationLock.acquire

    def switched_then_acquire(self: OperationLock, operation: str) -> Any:
        envfile.set_active_color(load_environment(ws.root, "local"), Color.GREEN)
        live["color"] = Color.GREEN
        return acquire(self, operation)

    monkeypatch.setattr(OperationLock, "acquire", switched_then_acquire)
    return live


def test_deploy_goes_to_the_color_that_is_idle_once_it_holds_the_lock(
        ws: Workspace, switch_meanwhile: dict[str, Color], monkeypatch: pytest.MonkeyPatch) -> None:
    chosen: list[Color] = []
    monkeypatch.setattr(deploy_module, "_deploy_locked", lambda ws, color, *a: chosen.append(color))
    deploy_module.deploy(ws, "9.9.9", lambda plan: True)
    assert chosen == [Color.BLUE], "green serves production now: the idle color is blue"


def test_deploy_to_a_named_color_that_went_live_meanwhile_is_refused(
        ws: Workspace, switch_meanwhile: dict[str, Color], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deploy_module, "_deploy_locked", lambda *a: pytest.fail("the live color was deployed"))
    with pytest.raises(BgtoolError, match="it is the live color"):
        deploy_module.deploy(ws, "9.9.9", lambda plan: True, color=Color.GREEN)
    assert OperationLock.of(ws).current() is None


def test_retire_scales_down_the_color_that_is_idle_once_it_holds_the_lock(
        ws: Workspace, switch_meanwhile: dict[str, Color], monkeypatch: pytest.MonkeyPatch) -> None:
    chosen: list[Color] = []
    monkeypatch.setattr(retire_module, "_check_quiet", lambda ws, color, force: {"minutes": 0, "requests": None})
    monkeypatch.setattr(retire_module, "_retire_locked", lambda ws, color, *a, **k: chosen.append(color))
    retire_module.retire(ws, lambda plan: True, force=True)
    assert chosen == [Color.BLUE], "green serves production now: it must never be retired"


def test_apply_holds_the_lock_for_its_whole_run_and_the_switch_inside_joins_it(
        ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []

    def apply_layers(run_ws: Any, order: list[str], approve: Any, **kw: Any) -> list[Any]:
        lock = OperationLock.of(run_ws)
        seen.append(lock.current())
        with lock.held("switch blue -> green") as joined:  # what the guarded switch or a deploy does
            seen.append(joined)
        seen.append(lock.current())
        return []

    fake = SimpleNamespace(root=ws.root, env=ws.env, config=ws.config, aws=ws.aws, emit=Collector(), loaded=ws.loaded,
                           prepare=lambda: [], reload=lambda: None)
    monkeypatch.setattr(infra, "serving_colors", lambda _ws: set())
    monkeypatch.setattr(infra, "apply_layers", apply_layers)
    monkeypatch.setattr(infra, "refuse_stale", lambda *a: None)
    infra.InfraApply(fake, lambda plan: True, lambda q: True, lambda q: True).run(["base", "traffic"])
    held, joined, after_join = seen
    assert held is not None and held.operation == "apply local"
    assert joined == held and after_join == held, "joined, not taken twice, and not released by the inner run"
    assert OperationLock.of(ws).current() is None

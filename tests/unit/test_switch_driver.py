"""The switch driven through a fake SwitchIO: what it does to traffic, the file and the history when a
restore fails, an operator declines, an interrupt arrives in any phase, or it starts from a split."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bgtool.aws.live import ColorLive, TargetHealth
from bgtool.config.schema import Color, Environment, load_environment
from bgtool.events import Collector, Question, Restored
from bgtool.records.history import Record
from bgtool.release.gate import Check, GateReport
from bgtool.release.switch import Switch, SwitchPlan
from bgtool.traffic.weights import Weights
from tests.helpers import copy_project


class FakeRouter:
    mode = "fake"

    def __init__(self, start: Weights, fail_on: Weights | None = None) -> None:
        self.weights = start
        self.applied: list[Weights] = []
        self.fail_on = fail_on
        self.interrupt_on: Weights | None = None
        self.flips: list[Color] = []
        self.flip_fails = False

    def live_weights(self) -> Weights:
        return self.weights

    def apply(self, weights: Weights, test_color: Color) -> dict[str, int]:
        self.applied.append(weights)
        if weights == self.interrupt_on:
            raise KeyboardInterrupt
        if weights == self.fail_on:
            from bgtool.errors import BgtoolError

            raise BgtoolError(f"apply of {weights} failed")
        self.weights = weights
        return {"add": 0, "change": 1, "destroy": 0}

    def flip(self, color: Color) -> None:
        from bgtool.errors import BgtoolError

        self.flips.append(color)
        if self.flip_fails:
            raise BgtoolError("ModifyListener refused")
        self.weights = Weights.all_on(color)

    def describe(self) -> str:
        return str(self.weights)


class FakeCompute:
    kind = "fake"

    def __init__(self, version: str) -> None:
        self.version = version
        self.alarm_after_polls: int | None = None
        self.alarm_color = Color.GREEN
        self.polls = 0
        self.target_state = {Color.BLUE: "healthy", Color.GREEN: "healthy"}

    def live(self, color: Color) -> ColorLive:
        if color is Color.GREEN:  # the new color is polled once per bake poll
            self.polls += 1
        alarm = f"{color.value}-5xx"
        firing = [alarm] if color is self.alarm_color and self.alarm_after_polls is not None \
            and self.polls > self.alarm_after_polls else []
        return ColorLive(color.value, versions=[self.version], targets=[TargetHealth("i-1", self.target_state[color])],
                         alarms=[alarm], alarms_firing=firing)


class FakeIO:
    env = "local"

    def __init__(self, config: Environment, router: FakeRouter, gate_passes: bool = True) -> None:
        self._config = config
        self.router = router
        self.compute = FakeCompute(config.colors.green.version)
        self.events = Collector()
        self.records: list[Record] = []
        self.written: list[Color] = []
        self.locked: list[str] = []
        self.released = False
        self.gate_passes = gate_passes
        self.interrupt_in: str | None = None
        self.stale: str | None = None
        """A provenance refusal to raise (the file predates the last release)."""
        self.guard_refuses: dict[Color, str] = {}

    def emit(self, event: object) -> None:
        self.events(event)

    def config(self) -> Environment:
        self.reads = getattr(self, "reads", 0) + 1
        if self.interrupt_in == "preflight" and self.reads == 2:  # the first read is the switch's set-up
            raise KeyboardInterrupt
        return self._config

    def gate(self, color: Color) -> GateReport:
        if self.interrupt_in == "gate":
            raise KeyboardInterrupt
        return GateReport(color.value, [Check("targets healthy", self.gate_passes, "1/1")])

    def write_active(self, color: Color) -> str:
        if self.interrupt_in == "finalize":
            raise KeyboardInterrupt
        self.written.append(color)
        return "local.yaml"

    def record(self, record: Record) -> None:
        self.records.append(record)

    def refuse_stale(self, action: str) -> None:
        if self.stale is not None:
            from bgtool.errors import BgtoolError

            raise BgtoolError(f"refusing to {action}: {self.stale}")

    def serving_problems(self, color: Color) -> list[str]:
        return [self.guard_refuses[color]] if color in self.guard_refuses else []

    @contextmanager
    def lock(self, label: str) -> Iterator[None]:
        self.locked.append(label)
        try:
            yield
        finally:
            self.released = True


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Environment:
    root = copy_project(tmp_path_factory.mktemp("project"))
    return load_environment(Path(root), "local").config


def plan(steps: list[int]) -> SwitchPlan:
    return SwitchPlan(to=Color.GREEN, steps=steps, bake_seconds=0, monitor_seconds=0, poll_seconds=1)


def run(io: FakeIO, steps: list[int], *, answer: bool = True) -> tuple[str, FakeIO]:
    asked: list[Question] = []

    def confirm(q: Question) -> bool:
        asked.append(q)
        if io.interrupt_in == "confirm":
            raise KeyboardInterrupt
        return answer

    outcome = Switch(None, plan(steps), confirm, io=io, sleep=lambda _s: None).run()
    return outcome.result, io


def test_happy_switch_steps_writes_the_file_and_records(config: Environment) -> None:
    result, io = run(FakeIO(config, FakeRouter(Weights(100, 0))), [10, 50, 100])
    assert result == "succeeded"
    assert io.router.applied == [Weights(90, 10), Weights(50, 50), Weights(0, 100)]
    assert io.written == [Color.GREEN]
    assert io.records[-1].result == "succeeded" and io.released


def test_operator_declining_changes_nothing(config: Environment) -> None:
    result, io = run(FakeIO(config, FakeRouter(Weights(100, 0))), [10, 100], answer=False)
    assert result == "failed"
    assert io.router.applied == [] and io.written == []
    assert "declined" in io.records[-1].reason and io.released


def test_a_failed_restore_ends_failed_and_says_where_traffic_is(config: Environment) -> None:
    router = FakeRouter(Weights(100, 0), fail_on=Weights(100, 0))
    router.flip_fails = True
    io = FakeIO(config, router)
    io.compute.alarm_after_polls = 1  # an alarm fires during the first bake
    result, _ = run(io, [10, 100])
    assert result == "failed"
    record = io.records[-1]
    assert "ALARM" in record.reason
    assert record.details["restore_error"] and record.details["live_weights"] == str(Weights(90, 10))
    restored = io.events.of(Restored)
    assert restored and not restored[-1].ok  # type: ignore[attr-defined]
    assert io.written == [] and io.released


@pytest.mark.parametrize("phase", ["preflight", "gate", "confirm"])
def test_an_interrupt_before_traffic_moved_leaves_it_alone(config: Environment, phase: str) -> None:
    io = FakeIO(config, FakeRouter(Weights(100, 0)))
    io.interrupt_in = phase
    result, _ = run(io, [10, 100])
    assert result == "failed"
    assert io.router.applied == []
    assert "interrupted" in io.records[-1].reason and io.released


@pytest.mark.parametrize("at", [Weights(90, 10), Weights(0, 100)])
def test_an_interrupt_during_a_step_restores_the_old_color(config: Environment, at: Weights) -> None:
    router = FakeRouter(Weights(100, 0))
    router.interrupt_on = at
    io = FakeIO(config, router)
    result, _ = run(io, [10, 100])
    assert result == "rolled-back"
    assert router.applied[-1] == Weights(100, 0) and router.weights == Weights(100, 0)
    assert "interrupted" in io.records[-1].reason and io.written == [] and io.released


def test_an_interrupt_while_finalizing_restores(config: Environment) -> None:
    io = FakeIO(config, FakeRouter(Weights(100, 0)))
    io.interrupt_in = "finalize"
    result, _ = run(io, [100])
    assert result == "rolled-back"
    assert io.router.weights == Weights(100, 0) and io.written == []


def test_a_split_start_is_left_as_it_was_when_the_gate_fails(config: Environment) -> None:
    """Traffic already split (a crashed switch): a failure before any step changed nothing, so nothing
    is "restored" to a state production was not in when the switch began."""
    io = FakeIO(config, FakeRouter(Weights(50, 50)), gate_passes=False)
    result, _ = run(io, [100])
    assert result == "failed"
    assert io.router.applied == [] and io.router.weights == Weights(50, 50)


def test_a_restore_flips_first_then_reconciles_and_records_both_times(config: Environment) -> None:
    router = FakeRouter(Weights(100, 0))
    io = FakeIO(config, router)
    io.compute.alarm_after_polls = 1
    outcome = Switch(None, plan([10, 100]), lambda q: True, io=io, sleep=lambda _s: None).run()
    assert outcome.result == "rolled-back"
    assert router.flips == [Color.BLUE]
    assert router.applied[-1] == Weights(100, 0)  # Terraform reconciles what the flip did
    restore = io.records[-1].details["restore"]
    assert 0 <= restore["flip_seconds"] <= restore["reconcile_seconds"]


def test_the_record_keeps_when_each_step_was_applied_and_when_the_problem_was_detected(config: Environment) -> None:
    """`bgtool report` draws them on one time axis with the load balancer metrics (UTC, to the second)."""
    io = FakeIO(config, FakeRouter(Weights(100, 0)))
    io.compute.alarm_after_polls = 1
    before = datetime.now(UTC).replace(microsecond=0)
    Switch(None, plan([10, 100]), lambda q: True, io=io, sleep=lambda _s: None).run()
    details = io.records[-1].details
    times = [datetime.fromisoformat(s["at"]) for s in details["applied"]] + \
        [datetime.fromisoformat(details["restore"]["detected_at"])]
    assert len(times) == 2 and before <= times[0] <= times[1] <= datetime.fromisoformat(io.records[-1].at)
    assert all(t.utcoffset() == timedelta(0) and t.microsecond == 0 for t in times)


def test_a_failed_flip_still_restores_through_terraform(config: Environment) -> None:
    router = FakeRouter(Weights(100, 0))
    router.flip_fails = True
    io = FakeIO(config, router)
    io.compute.alarm_after_polls = 1
    outcome = Switch(None, plan([10, 100]), lambda q: True, io=io, sleep=lambda _s: None).run()
    assert outcome.result == "rolled-back" and router.weights == Weights(100, 0)
    assert "ModifyListener refused" in io.records[-1].details["restore"]["flip_error"]


class BuggyCompute(FakeCompute):
    """A bug in reading the new color (say a KeyError on an unexpected answer) from the first bake on."""

    def live(self, color: Color) -> ColorLive:
        if color is Color.GREEN and self.polls >= 1:  # preflight read it once
            raise KeyError("TargetHealthDescriptions")
        return super().live(color)


class BuggyRouter(FakeRouter):
    def apply(self, weights: Weights, test_color: Color) -> dict[str, int]:
        if weights == Weights(90, 10):
            self.applied.append(weights)
            self.weights = weights  # the step reached production, then the bug
            raise RuntimeError("unexpected answer from the listener")
        return super().apply(weights, test_color)


@pytest.mark.parametrize("where", ["step", "bake"])
def test_a_bug_inside_the_switch_restores_records_and_is_still_raised(config: Environment, where: str) -> None:
    """Not only bgtool's, boto's and the OS's errors: whatever goes wrong once traffic moved, production
    goes back to the old color before the error reaches anyone, and the run is recorded."""
    router = BuggyRouter(Weights(100, 0)) if where == "step" else FakeRouter(Weights(100, 0))
    io = FakeIO(config, router)
    if where == "bake":
        io.compute = BuggyCompute(config.colors.green.version)
    with pytest.raises((KeyError, RuntimeError)):
        Switch(None, plan([10, 100]), lambda q: True, io=io, sleep=lambda _s: None).run()
    assert router.weights == Weights(100, 0) and router.applied[-1] == Weights(100, 0)
    record = io.records[-1]
    assert record.result == "rolled-back" and "unexpected" in record.reason
    assert io.written == [] and io.released

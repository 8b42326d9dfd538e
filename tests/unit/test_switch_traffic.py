"""Traffic in the switch: an inconclusive gate needs --accept-inconclusive, and each step is judged by
the requests, errors and p99 each color served (fake SwitchIO, no network)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from bgtool.aws.metrics import TrafficStats
from bgtool.config.schema import Color, Environment, load_environment
from bgtool.events import Countdown, Note, Question, TrafficJudged
from bgtool.release.analysis import Judgement, Verdict, decide_step, judged_bake_seconds, publish_delay
from bgtool.release.gate import Check, GateReport
from bgtool.release.retire import quiet_problem
from bgtool.release.switch import Switch, SwitchPlan
from bgtool.traffic.weights import Weights
from tests.helpers import copy_project
from tests.unit.test_switch_driver import FakeIO, FakeRouter


class FakeMeter:
    """Serves STATS[color] once the router has put the new color at or above `from_share` percent."""

    def __init__(self, router: FakeRouter, stats: dict[Color, TrafficStats], bad_from_share: int = 101,
                 bad: TrafficStats | None = None) -> None:
        self.router, self.stats, self.bad_from_share, self.bad = router, stats, bad_from_share, bad
        self.calls: list[tuple[Color, datetime, datetime]] = []

    def window(self, color: Color, start: datetime, end: datetime) -> TrafficStats | None:
        self.calls.append((color, start, end))
        if color is Color.GREEN and self.bad and self.router.weights.of(Color.GREEN) >= self.bad_from_share:
            return self.bad
        return self.stats[color]


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Environment:
    root = copy_project(tmp_path_factory.mktemp("project"))
    return load_environment(Path(root), "local").config


class FakeClock:
    """Time that passes only when the switch sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def switch(io: FakeIO, *, accept: bool = False, steps: list[int] | None = None, bake: float = 0,
           clock: FakeClock | None = None) -> Switch:
    plan = SwitchPlan(to=Color.GREEN, steps=steps or [10, 50, 100], bake_seconds=bake, monitor_seconds=0,
                      poll_seconds=1, accept_inconclusive=accept)
    clock = clock or FakeClock()
    return Switch(None, plan, lambda q: isinstance(q, Question), io=io, sleep=clock.sleep, clock=clock)


def metered(config: Environment, green: TrafficStats, blue: TrafficStats) -> FakeIO:
    """A switch from 100% blue whose every step's traffic meter reads GREEN and BLUE."""
    router = FakeRouter(Weights(100, 0))
    io = FakeIO(config, router)
    io.meter = FakeMeter(router, {Color.GREEN: green, Color.BLUE: blue})  # type: ignore[attr-defined]
    return io


def inconclusive_gate(io: FakeIO) -> None:
    check = Check.of("analysis", Judgement(Verdict.INCONCLUSIVE, "too little data: green served 3 requests"))
    io.gate = lambda color: GateReport(color.value, [Check("targets healthy", True, "1/1"), check])  # type: ignore[method-assign]


def test_an_inconclusive_gate_refuses_the_switch_before_traffic_moves(config: Environment) -> None:
    io = FakeIO(config, FakeRouter(Weights(100, 0)))
    inconclusive_gate(io)
    outcome = switch(io).run()
    assert outcome.result == "failed" and io.router.applied == []
    assert "inconclusive" in outcome.reason and "3 requests" in outcome.reason
    assert outcome.gate and outcome.gate["checks"][1]["verdict"] == "inconclusive"


def test_accept_inconclusive_goes_on_and_is_recorded(config: Environment) -> None:
    io = FakeIO(config, FakeRouter(Weights(100, 0)))
    inconclusive_gate(io)
    outcome = switch(io, accept=True).run()
    assert outcome.result == "succeeded"
    assert io.records[-1].details["gate"]["accepted_inconclusive"] is True
    assert any("accepted by --accept-inconclusive" in e.text for e in io.events.of(Note))  # type: ignore[attr-defined]


def test_accept_inconclusive_does_not_override_a_failed_check(config: Environment) -> None:
    io = FakeIO(config, FakeRouter(Weights(100, 0)), gate_passes=False)
    assert switch(io, accept=True).run().result == "failed"


def test_each_step_reports_what_both_colors_served(config: Environment) -> None:
    io = metered(config, green=TrafficStats(120, 0, 20.0), blue=TrafficStats(900, 1, 18.0))
    outcome = switch(io).run()
    assert outcome.result == "succeeded"
    for step in outcome.steps:
        assert step["traffic"]["verdict"] == "pass"
        assert step["traffic"]["green"]["requests"] == 120 and step["traffic"]["blue"]["p99_ms"] == 18.0
    assert io.records[-1].details["applied"][0]["traffic"]["blue"]["requests"] == 900
    judged = io.events.of(TrafficJudged)  # type: ignore[attr-defined]
    assert [(e.phase, e.verdict) for e in judged][:2] == [("bake 1", "pass"), ("bake 2", "pass")]
    assert judged[0].text == "green 120 requests, 0 5xx, p99 20 ms | blue 900 requests, 1 5xx, p99 18 ms"
    countdowns = io.events.of(Countdown)  # type: ignore[attr-defined]
    assert [e.phase for e in countdowns] == [f"bake {i}" for i in range(1, len(outcome.steps))] + ["monitor"]
    assert all(e.seconds > 0 for e in countdowns)


def test_errors_starting_at_the_50_percent_step_restore_the_old_color(config: Environment) -> None:
    router = FakeRouter(Weights(100, 0))
    io = FakeIO(config, router)
    io.meter = FakeMeter(router, {Color.GREEN: TrafficStats(120, 0, 20.0), Color.BLUE: TrafficStats(900, 0, 18.0)},  # type: ignore[attr-defined]
                         bad_from_share=50, bad=TrafficStats(400, 40, 25.0))
    outcome = switch(io).run()
    assert outcome.result == "rolled-back"
    assert outcome.trace[:5] == ["preflight", "gate", "confirm", "step 1/3", "bake 1/3"]
    assert "bake 2/3" in outcome.reason and "5xx rate 10.00%" in outcome.reason
    assert outcome.steps[1]["traffic"]["verdict"] == "fail" and outcome.steps[1]["traffic"]["green"]["errors"] == 40
    assert router.weights == Weights(100, 0) and router.flips == [Color.BLUE]


def test_a_step_without_a_verdict_restores(config: Environment) -> None:
    """Too few requests to judge by the end of the bake is not a pass: the first step restores."""
    io = metered(config, green=TrafficStats(5, 2, 20.0), blue=TrafficStats(900, 0, 18.0))
    outcome = switch(io).run()
    assert outcome.result == "rolled-back"
    assert "bake 1/3" in outcome.reason and "not judged" in outcome.reason and "5 requests" in outcome.reason
    assert "--accept-inconclusive" in outcome.reason
    assert outcome.steps[0]["traffic"]["verdict"] == "inconclusive"
    assert io.router.applied == [Weights(90, 10), Weights(100, 0)] and io.written == []


def test_no_metrics_at_all_is_not_a_pass(config: Environment) -> None:
    router = FakeRouter(Weights(100, 0))
    io = FakeIO(config, router)
    io.meter = NoMetrics()  # type: ignore[attr-defined]
    outcome = switch(io, steps=[100]).run()
    assert outcome.result == "rolled-back"
    assert "monitor" in outcome.reason and "no load balancer metrics for green" in outcome.reason


class NoMetrics:
    def window(self, color: Color, start: datetime, end: datetime) -> TrafficStats | None:
        return None


class BrokenMetrics:
    def window(self, color: Color, start: datetime, end: datetime) -> TrafficStats | None:
        from botocore.exceptions import EndpointConnectionError

        raise EndpointConnectionError(endpoint_url="http://monitoring")


def test_metrics_that_cannot_be_read_are_not_a_pass_and_say_why(config: Environment) -> None:
    router = FakeRouter(Weights(100, 0))
    io = FakeIO(config, router)
    io.meter = BrokenMetrics()  # type: ignore[attr-defined]
    outcome = switch(io, steps=[100]).run()
    assert outcome.result == "rolled-back"
    assert "metrics unavailable" in outcome.reason and "http://monitoring" in outcome.reason


def test_accept_inconclusive_goes_on_through_unjudged_steps_and_records_it(config: Environment) -> None:
    io = metered(config, green=TrafficStats(5, 2, 20.0), blue=TrafficStats(900, 0, 18.0))
    clock = FakeClock()
    outcome = switch(io, accept=True, clock=clock).run()
    assert outcome.result == "succeeded"
    assert all(s["traffic"]["verdict"] == "inconclusive" and s["traffic"]["accepted_inconclusive"]
               for s in outcome.steps)
    assert sum(clock.slept) == 0  # the operator accepted steps without a verdict: bakes are not lengthened
    notes = [e.text for e in io.events.of(Note)]  # type: ignore[attr-defined]
    assert any("accepted by --accept-inconclusive" in n and "5 requests" in n for n in notes)


def test_a_failing_step_restores_even_when_inconclusive_is_accepted(config: Environment) -> None:
    io = metered(config, green=TrafficStats(120, 30, 20.0), blue=TrafficStats(900, 0, 18.0))
    assert switch(io, accept=True).run().result == "rolled-back"


def test_a_bake_shorter_than_its_metrics_is_lengthened(config: Environment) -> None:
    """Each bake lasts until a whole metrics period of the step is published (the file's 10 s period
    on the embedded AWS: 2 x 10 s + 2 s), and says so."""
    io = metered(config, green=TrafficStats(120, 0, 20.0), blue=TrafficStats(900, 0, 18.0))
    clock = FakeClock()
    outcome = switch(io, steps=[10, 100], bake=2, clock=clock).run()
    assert outcome.result == "succeeded"
    assert sum(clock.slept) == 22 + 22  # bake 1 and the monitor, not 2 s and 0 s
    notes = [e.text for e in io.events.of(Note)]  # type: ignore[attr-defined]
    assert any("bake 22s instead of 2s" in n and "10 s load balancer metrics" in n for n in notes)


def test_a_bake_longer_than_the_minimum_is_kept(config: Environment) -> None:
    io = metered(config, green=TrafficStats(120, 0, 20.0), blue=TrafficStats(900, 0, 18.0))
    clock = FakeClock()
    switch(io, steps=[10, 100], bake=40, clock=clock).run()
    assert sum(clock.slept) == 40 + 22


def test_the_minimum_bake_is_two_periods_and_the_publication_delay() -> None:
    assert judged_bake_seconds(10, publish_delay(embedded=True)) == 22
    assert judged_bake_seconds(60, publish_delay(embedded=False)) == 180  # an ALB on AWS: 3 minutes
    assert judged_bake_seconds(5, 1) == 11


@pytest.mark.parametrize(("verdict", "accept", "go_on"), [
    (Verdict.PASS, False, True), (Verdict.PASS, True, True),
    (Verdict.FAIL, False, False), (Verdict.FAIL, True, False),
    (Verdict.INCONCLUSIVE, False, False), (Verdict.INCONCLUSIVE, True, True),
    (None, False, False), (None, True, True),
])
def test_only_a_pass_or_an_accepted_inconclusive_goes_on(verdict: Verdict | None, accept: bool, go_on: bool) -> None:
    judgement = None if verdict is None else Judgement(verdict, "green: 3 requests")
    call = decide_step(judgement, accept, color="green")
    assert call.go_on is go_on
    assert call.accepted_inconclusive is (go_on and verdict is not Verdict.PASS)
    if not go_on:
        assert "green" in call.reason and (verdict is None or "3 requests" in call.reason)


def test_retire_waits_until_traffic_has_left() -> None:
    assert quiet_problem("green", 0, 10) is None and quiet_problem("green", None, 10) is None
    problem = quiet_problem("green", 37, 10)
    assert problem and "37 requests in the last 10 min" in problem

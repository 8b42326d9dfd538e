"""A switch never moves traffic the file did not decide on, never steps back, and never "restores" to a
state production was not in: driven through the fakes of test_switch_driver."""

from __future__ import annotations

from pathlib import Path

import pytest

from bgtool.config.schema import Color, Environment, load_environment
from bgtool.release.switch import Switch, SwitchPlan, explain
from bgtool.traffic.weights import Weights
from tests.helpers import copy_project
from tests.unit.test_switch_driver import FakeIO, FakeRouter


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Environment:
    root = copy_project(tmp_path_factory.mktemp("project"))
    return load_environment(Path(root), "local").config


def run(io: FakeIO, steps: list[int], to: Color = Color.GREEN):
    plan = SwitchPlan(to=to, steps=steps, bake_seconds=0, monitor_seconds=0, poll_seconds=1)
    return Switch(None, plan, lambda q: True, io=io, sleep=lambda _s: None).run()


def test_a_file_that_predates_the_last_release_moves_nothing(config: Environment) -> None:
    io = FakeIO(config, FakeRouter(Weights(0, 100)))
    io.stale = "environments/local.yaml predates the last release of local"
    outcome = run(io, [10, 50, 100])
    assert outcome.result == "failed" and "predates" in outcome.reason
    assert io.router.applied == [] and io.router.flips == [] and io.router.weights == Weights(0, 100)
    assert io.written == [] and io.released


def test_a_target_named_on_the_command_line_is_a_deliberate_choice(config: Environment) -> None:
    io = FakeIO(config, FakeRouter(Weights(0, 100)))
    io.stale = "environments/local.yaml predates the last release of local"
    plan = SwitchPlan(to=Color.BLUE, steps=[100], bake_seconds=0, monitor_seconds=0, poll_seconds=1, explicit=True)
    assert Switch(None, plan, lambda q: True, io=io, sleep=lambda _s: None).run().result == "succeeded"
    assert io.router.weights == Weights(100, 0)


def test_a_target_that_already_serves_everything_is_refused_not_restored_away(config: Environment) -> None:
    """The stale checkout of the report: the file says blue, green serves 100%, the gate fails. Today's
    code took that for a half-finished switch and put 100% back on blue."""
    io = FakeIO(config, FakeRouter(Weights(0, 100)), gate_passes=False)
    outcome = run(io, [10, 50, 100])
    assert outcome.result == "failed" and "already serves 100%" in outcome.reason
    assert io.router.applied == [] and io.router.flips == [] and io.router.weights == Weights(0, 100)


def test_steps_start_from_the_live_share_and_never_step_back(config: Environment) -> None:
    io = FakeIO(config, FakeRouter(Weights(40, 60)))
    outcome = run(io, [10, 50, 100])
    assert outcome.result == "succeeded"
    assert io.router.applied == [Weights(0, 100)]


def test_a_failure_restores_to_the_split_production_had_when_the_switch_began(config: Environment) -> None:
    io = FakeIO(config, FakeRouter(Weights(50, 50)))
    io.compute.alarm_after_polls = 0  # the new color's alarm fires in the first watch
    outcome = run(io, [10, 50, 100])
    assert outcome.result == "rolled-back"
    assert io.router.applied == [Weights(0, 100), Weights(50, 50)]
    assert io.router.flips == [] and io.router.weights == Weights(50, 50)
    assert outcome.restore["to"] == {"blue": 50, "green": 50}
    assert "blue 50 / green 50, as it was when the switch began" in explain(outcome)


@pytest.mark.parametrize("why", ["retired", "no healthy target", "database guard"])
def test_an_old_color_that_cannot_keep_serving_is_refused_before_anything_moves(
        config: Environment, why: str) -> None:
    if why == "retired":
        blue = config.colors.blue.model_copy(update={"retired": True})
        config = config.model_copy(update={"colors": config.colors.model_copy(update={"blue": blue})})
    io = FakeIO(config, FakeRouter(Weights(100, 0)))
    if why == "no healthy target":
        io.compute.target_state[Color.BLUE] = "unhealthy"
    else:
        io.guard_refuses[Color.BLUE] = "blue runs 1.0.0, which predates contract migration 0003"
    outcome = run(io, [10, 100])
    assert outcome.result == "failed" and "blue keeps serving" in outcome.reason
    assert io.router.applied == [] and io.router.weights == Weights(100, 0)


@pytest.mark.parametrize("trouble", ["alarm", "no healthy target"])
def test_every_bake_watches_the_old_color_too(config: Environment, trouble: str) -> None:
    io = FakeIO(config, FakeRouter(Weights(100, 0)))
    if trouble == "alarm":
        io.compute.alarm_color, io.compute.alarm_after_polls = Color.BLUE, 1
    else:
        real = io.compute.live

        def failing_old(color: Color):  # blue's last target fails once the first step is out
            if color is Color.BLUE and io.router.applied:
                io.compute.target_state[Color.BLUE] = "unhealthy"
            return real(color)

        io.compute.live = failing_old  # type: ignore[method-assign]
    outcome = run(io, [10, 50, 100])
    assert outcome.result == "rolled-back" and outcome.reason.startswith("bake 1/3: blue ")
    assert io.router.weights == Weights(100, 0)


class ListenerLikeRouter(FakeRouter):
    """A router whose test listener forwards to a color of its own (the listener mode's)."""

    def __init__(self, start: Weights, test: Color) -> None:
        super().__init__(start)
        self.test = test
        self.tests: list[Color] = []

    def apply(self, weights: Weights, test_color: Color) -> dict[str, int]:
        self.tests.append(test_color)
        self.test = test_color
        return super().apply(weights, test_color)

    def test_color(self) -> Color:
        return self.test


def test_a_switch_to_a_color_the_test_listener_does_not_reach_points_it_there_first(config: Environment) -> None:
    """After an out-of-band flip to green, the reconcile to the file's blue gates blue: the test listener
    (the file's idle color, green) is pointed at blue first, production weights unchanged."""
    router = ListenerLikeRouter(Weights(0, 100), test=Color.GREEN)
    io = FakeIO(config, router)
    gated: list[tuple[Color, Color]] = []
    real_gate = io.gate
    io.gate = lambda color: (gated.append((color, router.test)), real_gate(color))[1]  # type: ignore[method-assign]
    outcome = run(io, [100], to=Color.BLUE)
    assert outcome.result == "succeeded"
    assert gated == [(Color.BLUE, Color.BLUE)]
    assert router.applied[0] == Weights(0, 100) and router.tests[0] is Color.BLUE
    assert router.weights == Weights(100, 0)


def test_the_test_listener_already_on_the_target_costs_no_apply(config: Environment) -> None:
    router = ListenerLikeRouter(Weights(100, 0), test=Color.GREEN)
    io = FakeIO(config, router)
    assert run(io, [100]).result == "succeeded"
    assert router.applied == [Weights(0, 100)]

"""The switch state machine and the choice of rollback target: pure transitions, no AWS."""

from __future__ import annotations

import pytest

from bgtool.config.schema import Color
from bgtool.release.rollback import rollback_target
from bgtool.release.switch import Phase, State, next_phase


def _walk(n_steps: int, fail_at: str | None = None) -> list[str]:
    """Labels of the phases visited, failing the first phase whose label is FAIL_AT."""
    phase, seen = Phase(State.PREFLIGHT), []
    while not phase.terminal:
        label = phase.label(n_steps)
        seen.append(label)
        phase = next_phase(phase, ok=label != fail_at, n_steps=n_steps)
    return [*seen, phase.state.value]


def test_happy_path_steps_bakes_then_monitors_at_100_percent() -> None:
    assert _walk(3) == ["preflight", "gate", "confirm", "step 1/3", "bake 1/3", "step 2/3", "bake 2/3",
                        "step 3/3", "monitor", "finalize", "succeeded"]


def test_one_step_goes_straight_to_monitor() -> None:
    assert _walk(1) == ["preflight", "gate", "confirm", "step 1/1", "monitor", "finalize", "succeeded"]


@pytest.mark.parametrize("where", ["preflight", "gate", "confirm"])
def test_failure_before_traffic_moved_fails_without_restore(where: str) -> None:
    assert _walk(3, fail_at=where)[-2:] == [where, "failed"]


@pytest.mark.parametrize("where", ["step 1/3", "bake 1/3", "step 2/3", "bake 2/3", "step 3/3", "monitor", "finalize"])
def test_failure_after_traffic_may_have_moved_restores(where: str) -> None:
    assert _walk(3, fail_at=where)[-3:] == [where, "restore", "rolled-back"]


def test_a_failed_restore_ends_failed() -> None:
    phase = Phase(State.RESTORE, 1, True)
    assert next_phase(phase, ok=False, n_steps=3).state is State.FAILED


def test_traffic_left_split_by_an_earlier_crash_is_left_as_it_was_when_the_gate_fails() -> None:
    """A restore goes back to what production served when the switch began; before a step nothing moved."""
    assert _walk(3, fail_at="gate")[-2:] == ["gate", "failed"]


def test_terminal_phases_have_no_successor() -> None:
    for state in (State.SUCCEEDED, State.ROLLED_BACK, State.FAILED):
        with pytest.raises(ValueError):
            next_phase(Phase(state), ok=True, n_steps=1)


def test_rollback_after_a_finalized_switch_goes_to_the_idle_color() -> None:
    target, _ = rollback_target(Color.GREEN, Color.GREEN, last_switch_failed=False)
    assert target is Color.BLUE


def test_rollback_after_a_rolled_back_switch_has_nothing_to_do() -> None:
    target, why = rollback_target(Color.BLUE, Color.BLUE, last_switch_failed=True)
    assert target is None and "already" in why


@pytest.mark.parametrize("live", [None, Color.GREEN])
def test_rollback_of_split_or_stray_traffic_returns_to_the_files_color(live: Color | None) -> None:
    target, _ = rollback_target(Color.BLUE, live, last_switch_failed=True)
    assert target is Color.BLUE

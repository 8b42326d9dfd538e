"""Weights per canary step, --steps validation and the bake health verdict: pure, no AWS."""

from __future__ import annotations

import pytest

from bgtool.config.schema import Color
from bgtool.errors import BgtoolError
from bgtool.traffic.weights import (
    HealthSample,
    Weights,
    health_problems,
    parse_steps,
    remaining_steps,
    step_test_color,
    step_weights,
)


def test_steps_to_green_shift_weight_from_blue() -> None:
    assert step_weights(Color.GREEN, [10, 50, 100]) == [Weights(90, 10), Weights(50, 50), Weights(0, 100)]


def test_steps_to_blue_mirror_them() -> None:
    assert step_weights(Color.BLUE, [10, 50, 100]) == [Weights(10, 90), Weights(50, 50), Weights(100, 0)]


def test_one_step_is_a_plain_cut_over() -> None:
    assert step_weights(Color.GREEN, [100]) == [Weights.all_on(Color.GREEN)]


@pytest.mark.parametrize("text", ["10,50,100", "10, 50, 100", " 10,50,100 "])
def test_parse_steps_accepts_the_cli_forms(text: str) -> None:
    assert parse_steps(text) == [10, 50, 100]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("10,x,100", "not a comma-separated list"),
        ("50,10,100", "strictly increasing"),
        ("10,10,100", "strictly increasing"),
        ("10,50", "last step must be 100"),
        ("0,100", "between 1 and 100"),
        ("10,150", "between 1 and 100"),
    ],
)
def test_parse_steps_rejects_bad_input_naming_the_flag(text: str, why: str) -> None:
    with pytest.raises(BgtoolError) as err:
        parse_steps(text)
    assert err.value.message.startswith("--steps") and why in err.value.message


def test_weights_must_sum_to_100() -> None:
    with pytest.raises(ValueError):
        Weights(60, 60)
    assert Weights(50, 50).live_color is None and Weights(0, 100).live_color is Color.GREEN


def test_test_listener_stays_on_the_new_color_until_100_percent() -> None:
    assert step_test_color(Color.GREEN, is_last=False) is Color.GREEN
    assert step_test_color(Color.GREEN, is_last=True) is Color.BLUE


def test_healthy_color_has_no_problems() -> None:
    assert health_problems(HealthSample({"i-1": "healthy", "i-2": "healthy"}, []), min_healthy=1) == []


def test_alarm_in_alarm_is_a_problem_naming_it() -> None:
    problems = health_problems(HealthSample({"i-1": "healthy"}, ["app-green-5xx"]), min_healthy=1)
    assert problems == ["alarm in ALARM: app-green-5xx"]


def test_unhealthy_or_missing_targets_are_problems() -> None:
    assert "unhealthy targets: i-2 unused" in health_problems(
        HealthSample({"i-1": "healthy", "i-2": "unused"}, []), min_healthy=1)
    assert health_problems(HealthSample({}, []), min_healthy=0) == ["0 healthy targets, need at least 1"]
    assert health_problems(HealthSample({"i-1": "healthy"}, []), min_healthy=2) == [
        "1 healthy targets, need at least 2"]


def test_a_resumed_switch_never_steps_back() -> None:
    assert remaining_steps([10, 50, 100], 0) == [10, 50, 100]
    assert remaining_steps([10, 50, 100], 50) == [100]
    assert remaining_steps([10, 50, 100], 30) == [50, 100]
    assert remaining_steps([10, 50, 100], 100) == [100]

"""Pure traffic arithmetic: the weights of each canary step and the health verdict of a bake.

No AWS and no Terraform here, so the rules that decide where production traffic goes are tested
in milliseconds (tests/unit/test_weights.py) and read in one place.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from bgtool.config.schema import Color
from bgtool.errors import BgtoolError


@dataclass(frozen=True)
class Weights:
    """Production listener weights; they always sum to 100."""

    blue: int
    green: int

    def __post_init__(self) -> None:
        if not (0 <= self.blue <= 100 and 0 <= self.green <= 100 and self.blue + self.green == 100):
            raise ValueError(f"weights must be 0..100 and sum to 100, got blue={self.blue} green={self.green}")

    @classmethod
    def all_on(cls, color: Color) -> Weights:
        return cls(100, 0) if Color(color) is Color.BLUE else cls(0, 100)

    @classmethod
    def split(cls, to: Color, percent: int) -> Weights:
        """PERCENT of the traffic on TO, the rest on the other color."""
        return cls(100 - percent, percent) if Color(to) is Color.GREEN else cls(percent, 100 - percent)

    def of(self, color: Color) -> int:
        return self.blue if Color(color) is Color.BLUE else self.green

    @property
    def live_color(self) -> Color | None:
        """The color taking all traffic; None while split."""
        return Color.BLUE if self.blue == 100 else Color.GREEN if self.green == 100 else None

    def as_dict(self) -> dict[str, int]:
        return {"blue": self.blue, "green": self.green}

    def __str__(self) -> str:
        return f"blue {self.blue} / green {self.green}"


def parse_steps(text: str, flag: str = "--steps") -> list[int]:
    """Parse '10,50,100' given on the command line; errors name the flag and what is allowed."""
    parts = [p.strip() for p in text.replace(" ", ",").split(",") if p.strip()]
    if not parts:
        raise BgtoolError(f"{flag}: empty; give percentages like 10,50,100")
    try:
        steps = [int(p) for p in parts]
    except ValueError:
        raise BgtoolError(f"{flag} {text!r}: not a comma-separated list of whole percentages like 10,50,100") from None
    return validate_steps(steps, flag)


def validate_steps(steps: Sequence[int], flag: str = "--steps") -> list[int]:
    """Steps are the new color's share: strictly increasing, each 1..100, the last exactly 100."""
    steps = list(steps)
    allowed = "allowed: strictly increasing whole percentages 1..100 ending at 100, e.g. 10,50,100 or 100"
    if not steps:
        raise BgtoolError(f"{flag}: no steps; {allowed}")
    if any(not 1 <= s <= 100 for s in steps):
        raise BgtoolError(f"{flag} {_show(steps)}: every step must be between 1 and 100; {allowed}")
    if any(b <= a for a, b in itertools.pairwise(steps)):
        raise BgtoolError(f"{flag} {_show(steps)}: steps must be strictly increasing; {allowed}")
    if steps[-1] != 100:
        raise BgtoolError(f"{flag} {_show(steps)}: the last step must be 100 (all traffic on the new color); {allowed}")
    return steps


def _show(steps: Sequence[int]) -> str:
    return ",".join(str(s) for s in steps)


def step_weights(to: Color, steps: Sequence[int]) -> list[Weights]:
    """The production weights of each step of a switch to TO: [10, 50, 100] → 90/10, 50/50, 0/100."""
    return [Weights.split(Color(to), percent) for percent in validate_steps(steps)]


def remaining_steps(steps: Sequence[int], current_share: int) -> list[int]:
    """The steps still ahead when the new color already has CURRENT_SHARE percent (a switch
    resumed from a split, e.g. a merged pull request after a crashed switch): never step back."""
    return [s for s in validate_steps(steps) if s > current_share] or [100]


def step_test_color(to: Color, is_last: bool) -> Color:
    """The test listener keeps pointing at the new color while it is being proven; at 100% it
    moves to the old color (the new idle one), exactly what the file will render after the
    switch, so the traffic layer shows no changes once the switch is finalized."""
    return Color(to).other if is_last else Color(to)


@dataclass(frozen=True)
class HealthSample:
    """What a bake poll saw of the new color (read with boto3)."""

    target_states: dict[str, str]
    alarms_firing: list[str]


def health_problems(sample: HealthSample, min_healthy: int) -> list[str]:
    """Why the new color must not keep (or get) traffic; empty when it is fine."""
    problems: list[str] = []
    if sample.alarms_firing:
        problems.append(f"alarm in ALARM: {', '.join(sorted(sample.alarms_firing))}")
    unhealthy = {t: s for t, s in sample.target_states.items() if s != "healthy"}
    if unhealthy:
        shown = ", ".join(f"{t} {s}" for t, s in sorted(unhealthy.items()))
        problems.append(f"unhealthy targets: {shown}")
    healthy = len(sample.target_states) - len(unhealthy)
    if healthy < max(min_healthy, 1):
        problems.append(f"{healthy} healthy targets, need at least {max(min_healthy, 1)}")
    return problems


def serving_problems(sample: HealthSample) -> list[str]:
    """Why the old color cannot go on serving its share (or take everything back on a restore): an alarm
    (its 5xx are production's) or no healthy target at all. Some unhealthy targets are the group's to heal."""
    problems: list[str] = []
    if sample.alarms_firing:
        problems.append(f"alarm in ALARM: {', '.join(sorted(sample.alarms_firing))}")
    if not any(state == "healthy" for state in sample.target_states.values()):
        problems.append(f"no healthy targets ({len(sample.target_states)} registered)")
    return problems

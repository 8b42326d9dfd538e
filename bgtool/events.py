"""What an operation reports while it runs, as typed events.

Release, drift and Terraform code never print. They hand these events to a sink, and whoever called
them decides what they become: the CLI renders them as live progress on stderr, a `--json` run keeps
stdout for its one document, tests collect them and assert on them, a quiet caller discards them.
One vocabulary for every operation keeps the output consistent, and the same code runs from a
terminal, a pipeline or a test without branches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

Level = Literal["info", "ok", "warn", "error", "detail"]


@dataclass(frozen=True)
class Note:
    """A line of progress for people; `level` says how much it matters."""

    text: str
    level: Level = "info"


@dataclass(frozen=True)
class PhaseEntered:
    """An operation entered a phase of its state machine (e.g. a switch's "bake 2/3")."""

    operation: str
    phase: str


@dataclass(frozen=True)
class Countdown:
    """A timed phase (a bake, the monitor) began and lasts SECONDS from now, unless it fails first:
    a live view shows how long is left without knowing the operation's settings."""

    phase: str
    seconds: float


@dataclass(frozen=True)
class CheckResult:
    """One verdict with its evidence (a gate check, a host check, a watched health poll)."""

    name: str
    passed: bool
    evidence: str
    scope: str = "gate"


@dataclass(frozen=True)
class StepApplied:
    """Production weights of a canary step are live (1-based index)."""

    index: int
    total: int
    weights: dict[str, int]
    seconds: float


@dataclass(frozen=True)
class TrafficJudged:
    """What a bake's traffic came to (`verdict` pass, fail or inconclusive); `text` says what each color
    served."""

    phase: str
    verdict: str
    text: str


@dataclass(frozen=True)
class Restored:
    """Traffic was put back on COLOR after a failure (ok) or the attempt failed (not ok)."""

    color: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class RecordWritten:
    """A history record was written; `error` says why it could not be, when it could not."""

    operation: str
    result: str
    error: str = ""


@dataclass(frozen=True)
class Waiting:
    """A slow wait is still going on; `text` is the latest state of what is awaited."""

    subject: str
    text: str
    elapsed: float


@dataclass(frozen=True)
class WaitOver:
    """The wait on `subject` ended (so a spinner can stop)."""

    subject: str


@dataclass(frozen=True)
class TerraformActivity:
    """One event of a Terraform run in a layer (resource start/finish, a warning)."""

    layer: str
    kind: str
    address: str | None
    action: str | None
    elapsed: float | None
    message: str
    severity: str | None = None


@dataclass(frozen=True)
class Question:
    """Something a person must confirm; `details` are shown first (e.g. the gate's checks)."""

    text: str
    details: list[CheckResult] = field(default_factory=list)
    summary: str = ""


Sink = Callable[[object], None]
Confirm = Callable[[Question], bool]


def discard(event: object) -> None:
    """The sink of callers that want no progress."""


class Collector:
    """A sink that keeps every event: for tests, and for callers that report them afterwards."""

    def __init__(self) -> None:
        self.events: list[object] = []

    def __call__(self, event: object) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list[object]:
        return [e for e in self.events if isinstance(e, kind)]

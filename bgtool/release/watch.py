"""What the live view of an environment shows: a reading of AWS as it stands, and what a running
operation has said so far.

Two sources, kept apart on purpose. A `Reading` is what anyone can see (weights, each color's
traffic, health and alarms, the lock holder), so `bgtool watch` shows another person's release or
production at rest. A `PanelState` is what only the process running the operation knows (the phase,
how long its bake has left, each step's verdict as it lands); it is built from the operation's own
progress events. Both are plain data, so the panel's look is tested without a terminal or AWS.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bgtool import events
from bgtool.aws.live import find_alb, target_group_arns
from bgtool.aws.metrics import MetricsReader, TrafficStats, metrics_resolution
from bgtool.compute import compute_for
from bgtool.config.schema import Color
from bgtool.records.lock import OperationLock
from bgtool.release.analysis import publish_delay
from bgtool.terraform.workspace import Workspace

NOTES_KEPT = 6
WINDOW_PERIODS = 3
"""Traffic is shown over the last few whole metric periods that are published: one period is too
noisy to read as a rate, many hide a change that just happened."""


@dataclass(frozen=True)
class ColorReading:
    """One color as it stands: what it runs, how much production it takes and how it serves it."""

    color: str
    role: str
    version: str
    weight: int | None
    traffic: TrafficStats | None
    seconds: float
    healthy: int
    targets: int
    alarms_firing: tuple[str, ...] = ()

    @property
    def rate(self) -> float | None:
        """Requests per second over the reading's window (None when nothing was published)."""
        return None if self.traffic is None or self.seconds <= 0 else self.traffic.requests / self.seconds

    def to_dict(self) -> dict[str, Any]:
        rate = self.rate
        return {"role": self.role, "version": self.version, "weight": self.weight,
                "requests_per_second": None if rate is None else round(rate, 2),
                **(self.traffic.to_dict() if self.traffic else {"requests": None}),
                "healthy_targets": self.healthy, "targets": self.targets,
                "alarms_firing": list(self.alarms_firing)}


@dataclass(frozen=True)
class Reading:
    """The environment at `at`; `error` says why (part of) it could not be read."""

    env: str
    at: datetime
    mode: str
    colors: dict[str, ColorReading]
    lock: str | None
    window: tuple[datetime, datetime] | None = None
    error: str = ""

    @property
    def weights(self) -> dict[str, int] | None:
        got = {c: r.weight for c, r in self.colors.items() if r.weight is not None}
        return got or None

    def to_dict(self) -> dict[str, Any]:
        lo, hi = self.window or (None, None)
        return {"env": self.env, "at": _iso(self.at), "traffic_mode": self.mode, "weights": self.weights,
                "colors": {c: r.to_dict() for c, r in self.colors.items()}, "lock": self.lock,
                "metrics_window": {"start": _iso(lo), "end": _iso(hi)} if lo else None,
                **({"error": self.error} if self.error else {})}


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat(timespec="seconds")


def metrics_window(now: datetime, resolution: int, delay: float) -> tuple[datetime, datetime]:
    """The last WINDOW_PERIODS whole periods whose datapoints are published by NOW."""
    end = math.floor((now.timestamp() - delay) / resolution) * resolution
    return (datetime.fromtimestamp(end - WINDOW_PERIODS * resolution, UTC), datetime.fromtimestamp(end, UTC))


def read_environment(ws: Workspace, now: datetime | None = None) -> Reading:
    """Read everything the panel shows from AWS (describe calls and CloudWatch statistics: nothing
    changes). The workspace should be the caller's own: this runs beside an operation, on its own
    clients."""
    from bgtool.traffic import router_for  # the traffic modes import release's neighbours

    now = now or datetime.now(UTC)
    config = ws.config
    compute = compute_for(ws)  # each color once, through the compute seam; the weights through the router
    production = router_for(ws).live_weights()
    lock = OperationLock.of(ws).current()
    lo, hi = metrics_window(now, metrics_resolution(config), publish_delay(config.embedded))
    served, error = _traffic(ws, lo, hi)
    colors = {}
    for color in Color:
        cl = compute.live(color)
        colors[color.value] = ColorReading(
            color.value, "active" if color is config.active_color else "idle",
            ",".join(cl.versions) or config.colors.of(color).version,
            production.of(color) if production else None, served.get(color.value), (hi - lo).total_seconds(),
            cl.healthy_targets, len(cl.targets), tuple(cl.alarms_firing))
    return Reading(ws.env, now, config.traffic.mode, colors, lock.describe() if lock else None, (lo, hi), error)


def _traffic(ws: Workspace, lo: datetime, hi: datetime) -> tuple[dict[str, TrafficStats], str]:
    alb = find_alb(ws.aws, ws.config)
    if alb is None:
        return {}, ""
    reader = MetricsReader(ws.aws, alb["LoadBalancerArn"], metrics_resolution(ws.config))
    try:
        return {c: reader.window(arn, lo, hi) for c, arn in target_group_arns(ws.aws, ws.config).items()}, ""
    except Exception as exc:
        return {}, f"metrics unavailable: {exc}"


@dataclass
class StepRow:
    """A canary step as the panel lists it: its weights, then its traffic's verdict once judged."""

    label: str
    weights: str
    verdict: str = ""
    evidence: str = ""


@dataclass
class PanelState:
    """What the running operation has said: built from its progress events (bgtool.events)."""

    operation: str = ""
    phase: str = ""
    phase_ends: float | None = None
    steps: list[StepRow] = field(default_factory=list)
    gate: dict[str, int] = field(default_factory=lambda: {"passed": 0, "failed": 0})
    notes: deque[tuple[str, str]] = field(default_factory=lambda: deque(maxlen=NOTES_KEPT))
    terraform: dict[tuple[str, str], tuple[str, float]] = field(default_factory=dict)
    waiting: dict[str, str] = field(default_factory=dict)

    def apply(self, event: object, now: float | None = None) -> None:
        """Fold one event in; events the panel does not show are ignored."""
        handler = getattr(self, f"_on_{type(event).__name__}", None)
        if handler is not None:
            handler(event, time.monotonic() if now is None else now)

    def seconds_left(self, now: float | None = None) -> float | None:
        if self.phase_ends is None:
            return None
        return max(0.0, self.phase_ends - (time.monotonic() if now is None else now))

    def activity(self) -> str:
        """The phase, or what is going on when the operation has no named phase (a deploy's apply and wait)."""
        if self.phase:
            return self.phase
        if self.terraform:
            layers = sorted({layer for layer, _ in self.terraform})
            return f"terraform apply: {', '.join(layers)} ({len(self.terraform)} resource(s) in flight)"
        if self.waiting:
            return "waiting: " + "; ".join(f"{s}: {t}" for s, t in self.waiting.items())
        return ""

    # -- events ---------------------------------------------------------------------------------
    def _on_PhaseEntered(self, e: events.PhaseEntered, now: float) -> None:
        self.operation, self.phase, self.phase_ends = e.operation, e.phase, None

    def _on_Countdown(self, e: events.Countdown, now: float) -> None:
        self.phase_ends = now + e.seconds

    def _on_StepApplied(self, e: events.StepApplied, now: float) -> None:
        weights = " / ".join(f"{c} {w}" for c, w in e.weights.items())
        self.steps.append(StepRow(f"{e.index}/{e.total}", weights))

    def _on_TrafficJudged(self, e: events.TrafficJudged, now: float) -> None:
        if e.phase == "monitor" or not self.steps:
            self.steps.append(StepRow(e.phase, ""))
        self.steps[-1].verdict, self.steps[-1].evidence = e.verdict, e.text

    def _on_CheckResult(self, e: events.CheckResult, now: float) -> None:
        self.gate["passed" if e.passed else "failed"] += 1

    def _on_Note(self, e: events.Note, now: float) -> None:
        self.notes.append((e.level, e.text))

    def _on_Restored(self, e: events.Restored, now: float) -> None:
        self.phase_ends = None
        self.notes.append(("warn" if e.ok else "error",
                           f"restored: production 100% on {e.color} {e.detail}" if e.ok
                           else f"restore to {e.color} failed: {e.detail}"))

    def _on_Waiting(self, e: events.Waiting, now: float) -> None:
        self.waiting[e.subject] = f"{e.text} ({e.elapsed:.0f}s)"

    def _on_WaitOver(self, e: events.WaitOver, now: float) -> None:
        self.waiting.pop(e.subject, None)

    def _on_TerraformActivity(self, e: events.TerraformActivity, now: float) -> None:
        if not e.address or e.action == "read":
            return
        if e.kind == "apply_start":
            self.terraform[(e.layer, e.address)] = (e.action or "", now)
        elif e.kind in ("apply_complete", "apply_errored"):
            self.terraform.pop((e.layer, e.address), None)

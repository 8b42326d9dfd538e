"""Verdicts from traffic: the gate's load test, the pre-promotion analysis, each canary step.

Pure functions over numbers already gathered (bgtool.release.load for the client's view,
bgtool.aws.metrics for the load balancer's), so the thresholds are unit-tested without a network.

Three outcomes, not two: too little data is *inconclusive*. A color that answered 12 requests has
not shown that it can take production, so the switch refuses it unless the operator says
`--accept-inconclusive`. A canary step is the same: until its traffic is judged it has not passed,
and a bake that ends without a verdict restores unless the operator accepted that (`decide_step`). A
bake can only be judged if it outlasts the metrics it needs (`judged_bake_seconds`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bgtool.aws.metrics import TrafficStats
from bgtool.config.schema import AnalysisSettings, LoadSettings
from bgtool.release.load import LoadResult

KEEP_UP = 0.9
"""A load run passes only if the color answered at least this share of the planned rate."""

EMBEDDED_PUBLISH_DELAY_SECONDS = 2.0
"""The embedded data plane publishes a finished period on its next tick (one a second) plus the put."""
AWS_PUBLISH_DELAY_SECONDS = 60.0
"""An ALB's minute of metrics is in CloudWatch within about a minute of the minute's end."""


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    evidence: str
    numbers: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASS


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def judge_load(result: LoadResult, settings: LoadSettings) -> Judgement:
    """The client's view of a load run: failures (any non-2xx/3xx, connection errors, timeouts),
    p99, and whether the color kept the rate."""
    p50, p95, p99 = result.percentile(50), result.percentile(95), result.percentile(99)
    summary = (f"{result.sent} requests at {result.rate:g}/s for {result.seconds:g}s "
               f"(concurrency {result.concurrency}): {result.achieved_rate:.1f}/s answered, "
               f"{result.failures} failed; p50 {_ms(p50)}, p95 {_ms(p95)}, p99 {_ms(p99)}")
    numbers = result.to_dict()
    problems = []
    rate = result.error_rate
    if rate is not None and rate > settings.max_error_rate:
        kinds = ", ".join(f"{kind} x{n}" for kind, n in sorted(result.errors_by_kind.items()))
        worst = [k for k, _ in sorted(result.by_path.items(), key=lambda kv: -kv[1])
                 if not k.rsplit(" ", 1)[-1].startswith(("2", "3"))][:3]
        problems.append(f"failure rate {rate:.1%} > max_error_rate {settings.max_error_rate:.1%} ({kinds}; "
                        f"e.g. {', '.join(worst)})")
    if p99 is not None and p99 > settings.max_p99_ms:
        problems.append(f"p99 {_ms(p99)} > max_p99_ms {settings.max_p99_ms:g}")
    if result.achieved_rate < KEEP_UP * result.rate:
        hint = f", {result.late} started over a second late" if result.late else ""
        problems.append(f"answered {result.achieved_rate:.1f}/s of the planned {result.rate:g}/s{hint}: "
                        f"concurrency {result.concurrency} at p50 {_ms(p50)} cannot carry it")
    if problems:
        return Judgement(Verdict.FAIL, f"{summary}; " + "; ".join(problems), numbers)
    return Judgement(Verdict.PASS, summary, numbers)


def absolute_problems(stats: TrafficStats, settings: AnalysisSettings) -> list[str]:
    problems = []
    rate = stats.error_rate
    if rate is not None and rate > settings.max_error_rate:
        problems.append(f"5xx rate {rate:.2%} > max_error_rate {settings.max_error_rate:.2%}")
    if stats.p99_ms is not None and stats.p99_ms > settings.max_p99_ms:
        problems.append(f"p99 {_ms(stats.p99_ms)} > max_p99_ms {settings.max_p99_ms:g}")
    return problems


def regressions(new: TrafficStats, old: TrafficStats, settings: AnalysisSettings) -> list[str]:
    """Where NEW is worse than OLD beyond `max_regression` (relative) and beyond the absolute
    tolerances (so that 0.1% against 0% or 3 ms against 2 ms is not a regression)."""
    problems = []
    r = settings.max_regression
    new_rate, old_rate = new.error_rate or 0.0, old.error_rate or 0.0
    if new_rate - old_rate > max(r * old_rate, settings.error_rate_tolerance):
        problems.append(f"5xx rate {new_rate:.2%} vs {old_rate:.2%} on the old color")
    if new.p99_ms is not None and old.p99_ms is not None and \
            new.p99_ms - old.p99_ms > max(r * old.p99_ms, settings.latency_tolerance_ms):
        problems.append(f"p99 {_ms(new.p99_ms)} vs {_ms(old.p99_ms)} on the old color")
    return problems


def judge_traffic(new: TrafficStats, old: TrafficStats | None, settings: AnalysisSettings, *,
                  new_color: str, old_color: str, need_baseline: bool) -> Judgement:
    """The new color's load balancer metrics against the absolute thresholds and against the old
    color's over the same window (no more than `max_regression` worse)."""
    numbers = {new_color: new.to_dict(), old_color: old.to_dict() if old is not None else None}
    seen = f"{new_color}: {new.describe()}; {old_color}: {old.describe() if old is not None else 'no data'}"
    if new.requests < settings.min_requests:
        return Judgement(Verdict.INCONCLUSIVE, f"too little data: {new_color} served {new.requests} requests "
                                               f"(min_requests {settings.min_requests}); {seen}", numbers)
    if new.p99_ms is None:
        return Judgement(Verdict.INCONCLUSIVE, f"no TargetResponseTime p99 for {new_color}; {seen}", numbers)
    problems = absolute_problems(new, settings)
    baseline = old is not None and old.requests >= settings.min_requests
    if baseline:
        assert old is not None
        problems += [f"regression beyond {settings.max_regression:.0%}: {p}" for p in regressions(new, old, settings)]
    if problems:
        return Judgement(Verdict.FAIL, f"{'; '.join(problems)} ({seen})", numbers)
    if not baseline:
        why = (f"{old_color} served {old.requests if old else 0} requests in the window "
               f"(min_requests {settings.min_requests}): nothing to compare with")
        if need_baseline:
            return Judgement(Verdict.INCONCLUSIVE, f"{why} (require_baseline); {seen}", numbers)
        return Judgement(Verdict.PASS, f"{seen}; within the absolute thresholds; {why}", numbers)
    return Judgement(Verdict.PASS, f"{seen}; within the thresholds and within {settings.max_regression:.0%} "
                                   f"of {old_color}", numbers)


def judged_bake_seconds(period: float, publish_delay: float) -> float:
    """The shortest bake at whose end CloudWatch holds one whole metrics period of the step's own
    traffic: the step may start just after a period began (up to one period until the next boundary),
    then one whole period, then the time until that period is published. On AWS (60 s periods,
    published within about a minute) that is 3 minutes; with the embedded AWS's 10 s it is 22 s."""
    return 2.0 * period + publish_delay


def publish_delay(embedded: bool) -> float:
    return EMBEDDED_PUBLISH_DELAY_SECONDS if embedded else AWS_PUBLISH_DELAY_SECONDS


@dataclass(frozen=True)
class StepCall:
    """What the end of a bake decides: go on to the next step, or restore (and why)."""

    go_on: bool
    reason: str = ""
    accepted_inconclusive: bool = False


def decide_step(judgement: Judgement | None, accept_inconclusive: bool, *, color: str) -> StepCall:
    """The verdict on a step's traffic when its bake ends. Only a pass goes on: a step whose traffic
    was never judged (no data, too little data, metrics unavailable) has not passed, and goes on only
    when the operator accepted inconclusive results; a failure never does."""
    if judgement is not None and judgement.verdict is Verdict.PASS:
        return StepCall(True)
    if judgement is not None and judgement.verdict is Verdict.FAIL:
        return StepCall(False, f"{color} traffic failed: {judgement.evidence}")
    evidence = judgement.evidence if judgement is not None else "no load balancer metrics for the step"
    if accept_inconclusive:
        return StepCall(True, f"{color} traffic not judged, accepted by --accept-inconclusive: {evidence}", True)
    return StepCall(False, f"{color} traffic not judged by the end of the bake: {evidence}")


def production_rate(peak: float | None, factor: float, color: str, lookback_minutes: int) -> Judgement:
    """`rps: production`: the live color's peak request rate x factor; no data is inconclusive."""
    if peak is None:
        return Judgement(Verdict.INCONCLUSIVE, f"rps: production, but {color} has no RequestCount in the last "
                                               f"{lookback_minutes} min: nothing to size the load on")
    rate = peak * factor
    return Judgement(Verdict.PASS, f"{rate:.1f}/s = {color}'s peak {peak:.1f}/s over {lookback_minutes} min "
                                   f"x {factor:g}", {"rate": rate, "peak": peak})

"""CloudWatch metric alarm evaluation, as CloudWatch documents it, for the embedded AWS (moto never evaluates).

Pure: an alarm definition (as DescribeAlarms returns it) and the datapoints of its evaluation range
go in, a state and a reason come out. The rules follow "How alarm state is evaluated when data is
missing" in the CloudWatch user guide:

- the evaluation range is the last N + 2 periods (N = EvaluationPeriods; the guide's examples use 5
  for N = 3), complete periods only, so a period still filling never decides;
- with at least N real datapoints in the range, the N most recent real ones decide and the
  missing-data treatment is not consulted: ALARM when at least M (DatapointsToAlarm, default N)
  breach, else OK;
- with fewer, only the shortfall is filled: `breaching` and `notBreaching` fill it as such; `missing`
  goes to INSUFFICIENT_DATA when nothing is real and `ignore` keeps the current state; otherwise both
  judge the real datapoints, and when every real one breaches and the oldest is at least M periods
  old (the guide's "premature alarm" rule) `missing` goes to ALARM and `ignore` keeps the state.

The unit tests replay the guide's two example tables row by row.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from bgtool.embedded.metrics import Sample, statistic

OK, ALARM, INSUFFICIENT = "OK", "ALARM", "INSUFFICIENT_DATA"
TREATMENTS = ("missing", "ignore", "breaching", "notBreaching")
EXTRA_PERIODS = 2  # evaluation range = EvaluationPeriods + this

COMPARISONS: dict[str, tuple[Callable[[float, float], bool], str]] = {
    "GreaterThanThreshold": (operator.gt, "greater than"),
    "GreaterThanOrEqualToThreshold": (operator.ge, "greater than or equal to"),
    "LessThanThreshold": (operator.lt, "less than"),
    "LessThanOrEqualToThreshold": (operator.le, "less than or equal to"),
}
STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")


class UnsupportedAlarm(ValueError):
    """An alarm this evaluator cannot judge (metric math, anomaly bands, an unknown statistic)."""


@dataclass(frozen=True)
class AlarmDefinition:
    name: str
    namespace: str
    metric_name: str
    dimensions: tuple[tuple[str, str], ...]
    statistic: str  # Statistic, or the ExtendedStatistic such as p99
    period: float
    evaluation_periods: int
    datapoints_to_alarm: int
    threshold: float
    comparison: str
    treat_missing_data: str = "missing"
    low_sample_percentiles: str = "evaluate"
    state: str = INSUFFICIENT

    @classmethod
    def from_api(cls, alarm: Mapping[str, Any]) -> AlarmDefinition:
        """From one MetricAlarms entry of DescribeAlarms."""
        name = alarm.get("AlarmName", "?")
        if alarm.get("Metrics"):
            raise UnsupportedAlarm(f"alarm {name}: metric math alarms are not evaluated locally")
        comparison = alarm.get("ComparisonOperator", "")
        if comparison not in COMPARISONS:
            raise UnsupportedAlarm(f"alarm {name}: comparison {comparison!r} is not evaluated locally")
        stat = alarm.get("Statistic") or alarm.get("ExtendedStatistic") or ""
        if stat not in STATISTICS and not _is_percentile(stat):
            raise UnsupportedAlarm(f"alarm {name}: statistic {stat!r} is not evaluated locally")
        if alarm.get("Threshold") is None or not alarm.get("Period") or not alarm.get("EvaluationPeriods"):
            raise UnsupportedAlarm(f"alarm {name}: no threshold, period or evaluation periods")
        periods = int(alarm["EvaluationPeriods"])
        treatment = alarm.get("TreatMissingData") or "missing"
        return cls(
            name=name,
            namespace=alarm.get("Namespace", ""),
            metric_name=alarm.get("MetricName", ""),
            dimensions=tuple(sorted((d["Name"], d["Value"]) for d in alarm.get("Dimensions", []))),
            statistic=stat,
            period=float(alarm["Period"]),
            evaluation_periods=periods,
            datapoints_to_alarm=int(alarm.get("DatapointsToAlarm") or periods),
            threshold=float(alarm["Threshold"]),
            comparison=comparison,
            treat_missing_data=treatment if treatment in TREATMENTS else "missing",
            low_sample_percentiles=alarm.get("EvaluateLowSampleCountPercentile") or "evaluate",
            state=alarm.get("StateValue") or INSUFFICIENT,
        )

    def with_period(self, period: float | None) -> AlarmDefinition:
        return self if not period else replace(self, period=float(period))

    @property
    def evaluation_range(self) -> int:
        return self.evaluation_periods + EXTRA_PERIODS

    def breaches(self, value: float) -> bool:
        return COMPARISONS[self.comparison][0](value, self.threshold)


def _is_percentile(stat: str) -> bool:
    try:
        return stat.startswith("p") and 0 < float(stat[1:]) <= 100
    except ValueError:
        return False


@dataclass(frozen=True)
class Datapoint:
    start: float  # epoch seconds at which the period starts
    value: float | None  # None: missing


@dataclass(frozen=True)
class Verdict:
    state: str | None  # None: keep the current state
    reason: str
    data: dict[str, Any]


def period_datapoints(alarm: AlarmDefinition, samples: Iterable[Sample], now: float) -> list[Datapoint]:
    """The alarm's evaluation range, oldest first: one datapoint per complete period, periods aligned to
    multiples of the period as CloudWatch aligns them; a period without samples is missing."""
    period = alarm.period
    end = math.floor(now / period) * period
    starts = [end - period * (alarm.evaluation_range - i) for i in range(alarm.evaluation_range)]
    buckets: dict[int, list[Sample]] = {}
    for s in samples:
        if starts[0] <= s.t < end:
            buckets.setdefault(int((s.t - starts[0]) // period), []).append(s)
    return [Datapoint(start, _value(alarm, buckets.get(i, []))) for i, start in enumerate(starts)]


def _value(alarm: AlarmDefinition, samples: list[Sample]) -> float | None:
    if not samples:
        return None
    low = alarm.low_sample_percentiles == "ignore" and _is_percentile(alarm.statistic)
    if low and sum(s.count for s in samples) < _enough_samples(float(alarm.statistic[1:]) / 100):
        return None
    return statistic(samples, alarm.statistic)


def _enough_samples(p: float) -> float:
    """The guide: fewer than 10/(1-p) samples (p >= 0.5), or 10/p, is a low sample count."""
    return 10 / (1 - p) if p >= 0.5 else 10 / p if p < 1 else math.inf


def evaluate(alarm: AlarmDefinition, datapoints: Sequence[Datapoint], now: float | None = None) -> Verdict:
    """Judge the evaluation range (oldest first) as CloudWatch does; see the module's docstring."""
    n, m = alarm.evaluation_periods, alarm.datapoints_to_alarm
    real = [d for d in datapoints if d.value is not None]
    data = _reason_data(alarm, datapoints, now)
    if len(real) >= n:
        used = real[-n:]
        return _judged(alarm, used, _breaching(alarm, used), data, filled=0)
    shortfall = n - len(real)
    breaching = _breaching(alarm, real)
    treatment = alarm.treat_missing_data
    if treatment in ("breaching", "notBreaching"):
        extra = shortfall if treatment == "breaching" else 0
        return _judged(alarm, real, breaching + extra, data, filled=shortfall)
    if not real:
        if treatment == "ignore":
            return Verdict(None, f"no datapoints were received for {len(datapoints)} periods; "
                                 "missing data is ignored, so the state is kept", data)
        return Verdict(INSUFFICIENT, f"Insufficient Data: {len(datapoints)} datapoints were unknown.", data)
    if breaching >= m:
        return _judged(alarm, real, breaching, data, filled=0)
    oldest_age = len(datapoints) - datapoints.index(real[0])
    if breaching == len(real) and oldest_age >= m:
        if treatment == "ignore":
            return Verdict(None, f"{_crossed(alarm, real, breaching)}, the rest missing; missing data is "
                                 "ignored, so the state is kept", data)
        return Verdict(ALARM, f"{_crossed(alarm, real, breaching)} and the more recent ones are missing "
                              f"(minimum {m} datapoints for OK -> ALARM transition).", data)
    return _judged(alarm, real, breaching, data, filled=0)


def _breaching(alarm: AlarmDefinition, points: Iterable[Datapoint]) -> int:
    return sum(1 for d in points if d.value is not None and alarm.breaches(d.value))


def _judged(alarm: AlarmDefinition, used: Sequence[Datapoint], breaching: int, data: dict[str, Any],
            filled: int) -> Verdict:
    """`breaching` counts the filled datapoints too when they are treated as breaching."""
    m = alarm.datapoints_to_alarm
    state = ALARM if breaching >= m else OK
    kind = "Breaching" if alarm.treat_missing_data == "breaching" else "NonBreaching"
    if not used:
        reason = (f"Threshold Crossed: no datapoints were received for {alarm.evaluation_range} periods and "
                  f"{filled} missing datapoints were treated as [{kind}].")
        return Verdict(state, reason, data)
    head = _crossed(alarm, used, breaching, len(used) + filled)
    if filled:
        head += f" ({_plural(filled, 'missing datapoint')} {'was' if filled == 1 else 'were'} treated as [{kind}])"
    return Verdict(state, f"{head} (minimum {_plural(m, 'datapoint')} for OK -> ALARM transition).", data)


def _crossed(alarm: AlarmDefinition, used: Sequence[Datapoint], breaching: int, total: int | None = None) -> str:
    """Says how many breached, for OK as for ALARM: the state and the minimum then explain the verdict."""
    words = COMPARISONS[alarm.comparison][1]
    verb = "was" if breaching == 1 else "were"
    return (f"Threshold Crossed: {breaching} out of the last {total or len(used)} datapoints {_listing(used)} {verb} "
            f"{words} the threshold ({alarm.threshold})")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _listing(points: Sequence[Datapoint]) -> str:
    """Newest first, as CloudWatch writes them: [12.0 (26/11/26 16:30:00), ...]."""
    return "[" + ", ".join(f"{_shown(d.value)} ({_stamp(d.start, '%d/%m/%y %H:%M:%S')})"
                           for d in reversed(points)) + "]"


def _shown(value: float | None) -> str:
    return repr(round(float(value), 6)) if value is not None else "missing"


def _stamp(t: float, fmt: str) -> str:
    return datetime.fromtimestamp(t, UTC).strftime(fmt)


def _reason_data(alarm: AlarmDefinition, points: Sequence[Datapoint], now: float | None) -> dict[str, Any]:
    iso = "%Y-%m-%dT%H:%M:%S.000+0000"
    real = [d for d in points if d.value is not None]
    data: dict[str, Any] = {
        "version": "1.0",
        "statistic": alarm.statistic,
        "period": int(alarm.period) if float(alarm.period).is_integer() else alarm.period,
        "recentDatapoints": [d.value for d in real[-alarm.evaluation_periods:]],
        "threshold": alarm.threshold,
        "evaluatedDatapoints": [{"timestamp": _stamp(d.start, iso), "value": d.value} for d in reversed(real)],
    }
    if points:
        data["startDate"] = _stamp(points[0].start, iso)
    if now is not None:
        data["queryDate"] = _stamp(now, iso)
    return data


def reason_data_json(verdict: Verdict) -> str:
    return json.dumps(verdict.data, sort_keys=True)

"""What a target group served, read from CloudWatch's load balancer metrics for a window of time.

The same calls on AWS and on the embedded AWS (whose data plane publishes the ALB metrics from real
traffic): RequestCount and HTTPCode_Target_5XX_Count as Sum, TargetResponseTime as the extended
statistic p99 (GetMetricStatistics takes Statistics or ExtendedStatistics, not both, so one call
each). The window is read as a single period when CloudWatch allows it, so p99 is the p99 of every
request in it; when it spans several datapoints the worst one is kept, which can only err towards
caution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bgtool.aws.session import Aws
from bgtool.config.schema import Environment

NAMESPACE = "AWS/ApplicationELB"
REQUESTS = "RequestCount"
ERRORS = "HTTPCode_Target_5XX_Count"
LATENCY = "TargetResponseTime"
HIGH_RESOLUTION_PERIODS = (1, 5, 10, 30)


@dataclass(frozen=True)
class TrafficStats:
    """Requests, target 5xx answers and p99 response time one target group served in a window."""

    requests: int
    errors: int
    p99_ms: float | None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    def to_dict(self) -> dict[str, Any]:
        rate = self.error_rate
        return {"requests": self.requests, "errors": self.errors,
                "error_rate": None if rate is None else round(rate, 5),
                "p99_ms": None if self.p99_ms is None else round(self.p99_ms, 1)}

    def describe(self) -> str:
        rate = self.error_rate
        p99 = "no p99" if self.p99_ms is None else f"p99 {self.p99_ms:.0f} ms"
        share = "" if rate is None else f" ({rate:.1%})"
        return f"{self.requests} requests, {self.errors} 5xx{share}, {p99}"


@dataclass(frozen=True)
class SeriesPoint:
    """What a target group served in one period starting at `start` (a point of a report's chart)."""

    start: datetime
    requests: int
    errors: int
    p99_ms: float | None


def arn_suffix(arn: str) -> str:
    """The CloudWatch dimension value of a load balancer (`app/NAME/ID`) or target group
    (`targetgroup/NAME/ID`) ARN."""
    if ":loadbalancer/" in arn:
        return arn.split(":loadbalancer/", 1)[1]
    return arn.split(":", 5)[-1]


def query_period(seconds: float, resolution: int) -> int:
    """A period CloudWatch accepts that covers SECONDS in one datapoint: 1, 5, 10 or 30 for
    high-resolution metrics, else a multiple of 60 (and never finer than the data's resolution)."""
    wanted = max(1, math.ceil(seconds), resolution)
    if resolution < 60:
        for period in HIGH_RESOLUTION_PERIODS:
            if period >= wanted:
                return period
    return 60 * math.ceil(wanted / 60)


def window_bounds(start: datetime, end: datetime, resolution: int) -> tuple[datetime, datetime, int]:
    """Start aligned down and end up to the resolution, and the period that covers them."""
    step = max(1, resolution)
    lo = math.floor(start.timestamp() / step) * step
    hi = max(math.ceil(end.timestamp() / step) * step, lo + step)
    period = query_period(hi - lo, resolution)
    return datetime.fromtimestamp(lo, UTC), datetime.fromtimestamp(max(hi, lo + period), UTC), period


class MetricsReader:
    """CloudWatch reads of one load balancer's target groups."""

    def __init__(self, aws: Aws, lb_arn: str, resolution: int = 60) -> None:
        """`resolution`: the finest period the metrics have (60 on AWS; the data plane's publishing
        period on the embedded AWS)."""
        self.cloudwatch = aws.client("cloudwatch")
        self.lb = arn_suffix(lb_arn)
        self.resolution = resolution

    def _dimensions(self, tg_arn: str) -> list[dict[str, str]]:
        return [{"Name": "LoadBalancer", "Value": self.lb}, {"Name": "TargetGroup", "Value": arn_suffix(tg_arn)}]

    def _points(self, tg_arn: str, metric: str, start: datetime, end: datetime, period: int,
                **stat: list[str]) -> list[dict[str, Any]]:
        answer = self.cloudwatch.get_metric_statistics(
            Namespace=NAMESPACE, MetricName=metric, Dimensions=self._dimensions(tg_arn),
            StartTime=start, EndTime=end, Period=period, **stat)
        return list(answer.get("Datapoints", []))

    def window(self, tg_arn: str, start: datetime, end: datetime) -> TrafficStats:
        """What the target group served between START and END (widened to whole periods)."""
        lo, hi, period = window_bounds(start, end, self.resolution)
        requests = sum(p.get("Sum", 0.0) for p in self._points(tg_arn, REQUESTS, lo, hi, period, Statistics=["Sum"]))
        errors = sum(p.get("Sum", 0.0) for p in self._points(tg_arn, ERRORS, lo, hi, period, Statistics=["Sum"]))
        p99s = [p["ExtendedStatistics"]["p99"] for p in
                self._points(tg_arn, LATENCY, lo, hi, period, ExtendedStatistics=["p99"])
                if "p99" in p.get("ExtendedStatistics", {})]
        return TrafficStats(round(requests), round(errors), max(p99s) * 1000.0 if p99s else None)

    def series(self, tg_arn: str, start: datetime, end: datetime) -> list[SeriesPoint]:
        """Period by period between START and END (widened to whole periods of the metrics' resolution),
        oldest first: a report draws how a release went over time, not one number for the window.
        Periods without a datapoint are left out (no request was counted in them)."""
        period = query_period(self.resolution, self.resolution)
        lo = datetime.fromtimestamp(math.floor(start.timestamp() / period) * period, UTC)
        hi = datetime.fromtimestamp(max(math.ceil(end.timestamp() / period) * period, lo.timestamp() + period), UTC)
        sums = {name: _by_start(self._points(tg_arn, name, lo, hi, period, Statistics=["Sum"]), period,
                                lambda p: p.get("Sum", 0.0)) for name in (REQUESTS, ERRORS)}
        p99s = _by_start(self._points(tg_arn, LATENCY, lo, hi, period, ExtendedStatistics=["p99"]), period,
                         lambda p: p.get("ExtendedStatistics", {}).get("p99"))
        starts = sorted(set(sums[REQUESTS]) | set(sums[ERRORS]) | set(p99s))
        return [SeriesPoint(at, round(sums[REQUESTS].get(at) or 0), round(sums[ERRORS].get(at) or 0),
                            None if p99s.get(at) is None else p99s[at] * 1000.0) for at in starts]

    def peak_rate(self, tg_arn: str, lookback_minutes: int, now: datetime | None = None) -> float | None:
        """The highest per-second request rate of any minute in the lookback; None without data."""
        end = now or datetime.now(UTC)
        points = self._points(tg_arn, REQUESTS, end - timedelta(minutes=lookback_minutes), end, 60,
                              Statistics=["Sum"])
        sums = [p.get("Sum", 0.0) for p in points]
        return max(sums) / 60.0 if sums and max(sums) > 0 else None


def _by_start(points: list[dict[str, Any]], period: int, value: Any) -> dict[datetime, Any]:
    """Datapoints keyed by their period's start in UTC: CloudWatch answers in no particular order, and
    the embedded AWS stamps a datapoint with its first sample's time rather than the period's start."""
    out = {}
    for point in points:
        stamp = point["Timestamp"]
        stamp = stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp
        out[datetime.fromtimestamp(math.floor(stamp.timestamp() / period) * period, UTC)] = value(point)
    return out


def metrics_resolution(config: Environment) -> int:
    """The finest period the load balancer metrics have: a minute on AWS; the data plane's publishing
    period on the embedded AWS."""
    period = config.local.metrics_period_seconds if config.embedded else None
    return max(1, math.ceil(period)) if period else 60

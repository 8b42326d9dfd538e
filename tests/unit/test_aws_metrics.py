"""CloudWatch reads of a target group's load balancer metrics, against moto with the embedded AWS's
percentile support (ExtendedStatistics computed from values published with Values/Counts)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from bgtool.aws.metrics import MetricsReader, arn_suffix, query_period, window_bounds
from bgtool.embedded import mototap
from bgtool.embedded.monitor import Monitor, ServerInfo
from tests.unit.test_embedded_monitor import show_stat

LB_ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/50dc6c495c0c9188"
TG_ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-green/2453ed029918f21f"
DIMS = [{"Name": "LoadBalancer", "Value": "app/web/50dc6c495c0c9188"},
        {"Name": "TargetGroup", "Value": "targetgroup/web-green/2453ed029918f21f"}]


class FakeAws:
    def __init__(self, client: Any) -> None:
        self._client = client

    def client(self, service: str) -> Any:
        assert service == "cloudwatch"
        return self._client


@pytest.fixture
def cloudwatch() -> Iterator[Any]:
    mototap.install_percentiles()
    with mock_aws():
        yield boto3.client("cloudwatch", region_name="us-east-1")


def put(client: Any, metric: str, at: datetime, **data: Any) -> None:
    client.put_metric_data(Namespace="AWS/ApplicationELB", MetricData=[
        {"MetricName": metric, "Dimensions": DIMS, "Timestamp": at, **data}])


def test_dimension_values_are_the_arn_suffixes() -> None:
    assert arn_suffix(LB_ARN) == "app/web/50dc6c495c0c9188"
    assert arn_suffix(TG_ARN) == "targetgroup/web-green/2453ed029918f21f"


def test_periods_are_ones_cloudwatch_accepts() -> None:
    assert query_period(4, 10) == 10 and query_period(25, 10) == 30 and query_period(31, 10) == 60
    assert query_period(4, 60) == 60 and query_period(61, 60) == 120 and query_period(600, 1) == 600
    lo, hi, period = window_bounds(datetime(2026, 1, 1, 0, 0, 7, tzinfo=UTC),
                                   datetime(2026, 1, 1, 0, 0, 12, tzinfo=UTC), 10)
    assert (lo.second, period) == (0, 30) and hi - lo >= timedelta(seconds=20)


def test_percentiles_come_from_values_and_counts(cloudwatch: Any) -> None:
    now = datetime.now(UTC)
    put(cloudwatch, "TargetResponseTime", now, Values=[0.01, 0.5, 2.0], Counts=[97, 2, 1])
    points = cloudwatch.get_metric_statistics(
        Namespace="AWS/ApplicationELB", MetricName="TargetResponseTime", Dimensions=DIMS, Period=120,
        StartTime=now - timedelta(minutes=1), EndTime=now + timedelta(minutes=1),
        ExtendedStatistics=["p99", "p50", "p100"])["Datapoints"]
    assert points[0]["ExtendedStatistics"] == {"p99": 0.5, "p50": 0.01, "p100": 2.0}


def test_a_window_sums_requests_and_errors_and_reads_p99(cloudwatch: Any) -> None:
    start = datetime.fromtimestamp(math.floor(time.time() / 60) * 60 - 120, UTC)
    for minute, (requests, errors) in enumerate([(300, 3), (200, 0)]):
        at = start + timedelta(seconds=60 * minute + 5)
        put(cloudwatch, "RequestCount", at, StatisticValues={"SampleCount": 1, "Sum": requests, "Minimum": 1,
                                                              "Maximum": requests})
        if errors:
            put(cloudwatch, "HTTPCode_Target_5XX_Count", at, Value=errors)
        put(cloudwatch, "TargetResponseTime", at, Values=[0.02, 0.4], Counts=[requests - 4, 4])
    reader = MetricsReader(FakeAws(cloudwatch), LB_ARN)  # type: ignore[arg-type]
    stats = reader.window(TG_ARN, start, start + timedelta(seconds=119))
    assert (stats.requests, stats.errors) == (500, 3)
    assert stats.p99_ms == pytest.approx(400.0)  # 4 of 200 (2%) took 0.4 s in the second minute
    assert stats.error_rate == pytest.approx(0.006)
    assert reader.peak_rate(TG_ARN, 10) == pytest.approx(5.0)  # 300 in the busiest minute
    empty = MetricsReader(FakeAws(cloudwatch), LB_ARN.replace("web/", "other/"))  # type: ignore[arg-type]
    assert empty.peak_rate(TG_ARN, 10) is None
    assert empty.window(TG_ARN, start, start + timedelta(minutes=2)).requests == 0


def test_a_series_has_one_point_per_period_oldest_first(cloudwatch: Any) -> None:
    start = datetime.fromtimestamp(math.floor(time.time() / 60) * 60 - 180, UTC)
    for minute, (requests, errors) in reversed(list(enumerate([(300, 3), (0, 0), (200, 0)]))):
        at = start + timedelta(seconds=60 * minute + 5)
        if requests:
            put(cloudwatch, "RequestCount", at, StatisticValues={"SampleCount": 1, "Sum": requests, "Minimum": 1,
                                                                  "Maximum": requests})
            put(cloudwatch, "TargetResponseTime", at, Values=[0.02, 0.4], Counts=[requests - 4, 4])
        if errors:
            put(cloudwatch, "HTTPCode_Target_5XX_Count", at, Value=errors)
    reader = MetricsReader(FakeAws(cloudwatch), LB_ARN)  # type: ignore[arg-type]
    points = reader.series(TG_ARN, start + timedelta(seconds=10), start + timedelta(seconds=170))
    assert [(p.start - start).total_seconds() for p in points] == [0, 120]  # the quiet minute has no point
    assert [(p.requests, p.errors) for p in points] == [(300, 3), (200, 0)]
    assert points[0].p99_ms == pytest.approx(400.0) and points[1].p99_ms == pytest.approx(400.0)
    assert all(p.start.tzinfo is not None for p in points)


def test_the_monitor_publishes_response_times_that_percentiles_can_be_read_from(cloudwatch: Any) -> None:
    lb, tg = "app/web/50dc6c495c0c9188", "targetgroup/web-green/2453ed029918f21f"
    servers = {"prod/i-g1": ServerInfo(lb, tg, "local", "green", "i-g1"),
               "prod/i-b1": ServerInfo(lb, "targetgroup/web-blue/1", "local", "blue", "i-b1")}
    monitor, t0 = Monitor(cloudwatch, period_override=2), float(math.floor(time.time() / 60) * 60)
    for s in range(5):  # 10 requests a second at 100 ms
        monitor.tick(t0 + s + 0.05, show_stat({"req_tot": 10 * s, "rtime": 100, "rtime_max": 100}), servers)
    reader = MetricsReader(FakeAws(cloudwatch), LB_ARN, resolution=2)  # type: ignore[arg-type]
    stats = reader.window(TG_ARN, datetime.fromtimestamp(t0, UTC), datetime.fromtimestamp(t0 + 4, UTC))
    assert stats.requests == 30 and stats.errors == 0
    assert stats.p99_ms == pytest.approx(99.5, abs=1)

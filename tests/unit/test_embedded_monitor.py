"""The monitor against an in-process moto CloudWatch: alarms Terraform would create move from traffic."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from moto import mock_aws

from bgtool.embedded.monitor import AlarmChange, Monitor, ServerInfo

HEADER = (Path(__file__).resolve().parents[1] / "data" / "haproxy" / "show-stat-errors.csv").read_text().splitlines()[0]
FIELDS = HEADER[2:].split(",")
LB, GREEN, BLUE = "app/web/50dc6c495c0c9188", "targetgroup/web-green/2453ed029918f21f", "targetgroup/web-blue/1"
SERVERS = {
    "prod/i-g1": ServerInfo(LB, GREEN, "local", "green", "i-g1"),
    "prod/i-b1": ServerInfo(LB, BLUE, "local", "blue", "i-b1"),
}
DIMS = [{"Name": "LoadBalancer", "Value": LB}, {"Name": "TargetGroup", "Value": GREEN}]


def show_stat(green: dict[str, object], blue: dict[str, object] | None = None) -> str:
    """`show stat` CSV in HAProxy 2.6's column layout with two server rows."""
    rows = [HEADER]
    for name, values in (("i-g1", green), ("i-b1", blue or {})):
        row = {"pxname": "prod", "svname": name, "type": "2", "status": "UP", "check_status": "L7OK",
               "req_tot": 0, "hrsp_5xx": 0, "rtime": 0, "rtime_max": 0, **values}
        rows.append(",".join(str(row.get(f, "")) for f in FIELDS))
    return "\n".join(rows) + "\n"


@pytest.fixture
def cloudwatch() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("cloudwatch", region_name="us-east-1")
        for key, metric, stat, threshold in (("5xx", "HTTPCode_Target_5XX_Count", "Sum", 10),
                                             ("latency", "TargetResponseTime", "Average", 1.0),
                                             ("unhealthy-hosts", "UnHealthyHostCount", "Maximum", 0)):
            client.put_metric_alarm(  # as modules/color creates them
                AlarmName=f"web-green-{key}", Namespace="AWS/ApplicationELB", MetricName=metric, Statistic=stat,
                ComparisonOperator="GreaterThanThreshold", Threshold=threshold, Period=60, EvaluationPeriods=2,
                TreatMissingData="notBreaching", Dimensions=DIMS)
        yield client


def state(client: Any, name: str) -> dict[str, Any]:
    return client.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]


def start() -> float:
    return float(math.floor(time.time() / 60) * 60)


def run(monitor: Monitor, t0: float, seconds: range, green: Any, blue: Any = None) -> None:
    for s in seconds:
        monitor.tick(t0 + s + 0.05, show_stat(green(s), blue(s) if blue else None), SERVERS)


def test_errors_fire_the_5xx_alarm_and_it_clears_when_they_stop(cloudwatch: Any) -> None:
    changes: list[AlarmChange] = []
    monitor, t0 = Monitor(cloudwatch, period_override=2, on_change=changes.append), start()
    # 10 requests a second, 6 of them 500s: 12 per 2 s period > 10.
    run(monitor, t0, range(0, 7), lambda s: {"req_tot": 10 * s, "hrsp_5xx": 6 * s})
    alarm = state(cloudwatch, "web-green-5xx")
    assert alarm["StateValue"] == "ALARM"
    assert "2 out of the last 2 datapoints [12.0 " in alarm["StateReason"]
    assert "greater than the threshold (10.0)" in alarm["StateReason"]
    assert state(cloudwatch, "web-green-latency")["StateValue"] == "OK"
    assert [(c.old, c.new) for c in changes if c.name == "web-green-5xx"] == [("OK", "ALARM")]
    # The errors stop; missing 5xx datapoints are not breaching, so it returns to OK.
    run(monitor, t0, range(7, 14), lambda s: {"req_tot": 10 * s, "hrsp_5xx": 36})
    assert state(cloudwatch, "web-green-5xx")["StateValue"] == "OK"


def test_metrics_reach_cloudwatch_once_per_period_with_alb_dimensions(cloudwatch: Any) -> None:
    monitor, t0 = Monitor(cloudwatch, period_override=2), start()
    run(monitor, t0, range(0, 5), lambda s: {"req_tot": 10 * s, "hrsp_5xx": s, "rtime": 100, "rtime_max": 100})
    got = cloudwatch.get_metric_statistics(
        Namespace="AWS/ApplicationELB", MetricName="RequestCount", Dimensions=DIMS, Period=2,
        StartTime=datetime.fromtimestamp(t0 - 10, UTC), EndTime=datetime.fromtimestamp(t0 + 10, UTC),
        Statistics=["Sum"])["Datapoints"]
    # The first tick only sees the counters; periods [t0, t0+2) and [t0+2, t0+4) are complete.
    assert sorted((d["Timestamp"].timestamp() - t0, d["Sum"]) for d in got) == [(0, 10.0), (2, 20.0)]
    latency = cloudwatch.get_metric_statistics(
        Namespace="AWS/ApplicationELB", MetricName="TargetResponseTime", Dimensions=DIMS, Period=2,
        StartTime=datetime.fromtimestamp(t0, UTC), EndTime=datetime.fromtimestamp(t0 + 4, UTC),
        Statistics=["Average", "SampleCount"])["Datapoints"]
    assert {d["SampleCount"] for d in latency} == {10.0, 20.0}
    assert all(d["Average"] == pytest.approx(0.0995, abs=0.001) for d in latency)


def test_latency_and_unhealthy_hosts_fire_their_alarms(cloudwatch: Any) -> None:
    monitor, t0 = Monitor(cloudwatch, period_override=2), start()
    slow = {"req_tot": 0, "rtime": 0}

    def green(s: int) -> dict[str, object]:
        # 5 requests a second at 1.5 s each, and the health checks fail from second 3 on.
        n = 5 * s
        slow.update(req_tot=n, rtime=1500 if n else 0, rtime_max=1500)
        return {**slow, "status": "DOWN" if s >= 3 else "UP", "check_status": "L4CON" if s >= 3 else "L7OK"}

    run(monitor, t0, range(0, 8), green)
    assert state(cloudwatch, "web-green-latency")["StateValue"] == "ALARM"
    assert state(cloudwatch, "web-green-unhealthy-hosts")["StateValue"] == "ALARM"


def test_set_alarm_state_holds_until_the_next_period_as_on_aws(cloudwatch: Any) -> None:
    monitor, t0 = Monitor(cloudwatch, period_override=2), start()
    run(monitor, t0, range(0, 3), lambda s: {"req_tot": s})
    assert state(cloudwatch, "web-green-5xx")["StateValue"] == "OK"
    cloudwatch.set_alarm_state(AlarmName="web-green-5xx", StateValue="ALARM", StateReason="drill")
    run(monitor, t0, range(3, 4), lambda s: {"req_tot": s})  # same period as second 2: not evaluated again
    assert state(cloudwatch, "web-green-5xx")["StateValue"] == "ALARM"
    run(monitor, t0, range(4, 5), lambda s: {"req_tot": s})
    assert state(cloudwatch, "web-green-5xx")["StateValue"] == "OK"


def test_unsupported_alarms_and_other_namespaces_are_left_alone(cloudwatch: Any) -> None:
    cloudwatch.put_metric_alarm(
        AlarmName="math", ComparisonOperator="GreaterThanThreshold", Threshold=1, EvaluationPeriods=1,
        Metrics=[{"Id": "m1", "MetricStat": {"Metric": {"Namespace": "AWS/ApplicationELB", "MetricName": "RequestCount",
                                                         "Dimensions": DIMS}, "Period": 60, "Stat": "Sum"}}])
    cloudwatch.put_metric_alarm(AlarmName="cpu", Namespace="AWS/EC2", MetricName="CPUUtilization", Statistic="Average",
                                ComparisonOperator="GreaterThanThreshold", Threshold=1, Period=60, EvaluationPeriods=1)
    monitor, t0 = Monitor(cloudwatch, period_override=2), start()
    run(monitor, t0, range(0, 4), lambda s: {"req_tot": 50 * s})
    for untouched in ("math", "cpu"):  # moto creates alarms in OK, "Unchecked"; nothing evaluated them since
        assert state(cloudwatch, untouched)["StateReason"] == "Unchecked: Initial alarm creation"
    assert state(cloudwatch, "web-green-5xx")["StateValue"] == "OK"


class Unreachable:
    """A CloudWatch that is restarting: every call fails to connect."""

    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
        return fail


def test_an_unreachable_cloudwatch_loses_nothing(cloudwatch: Any, caplog: pytest.LogCaptureFixture) -> None:
    monitor, t0 = Monitor(Unreachable(), period_override=2), start()
    run(monitor, t0, range(0, 5), lambda s: {"req_tot": 10 * s, "hrsp_5xx": 6 * s})  # no exception
    assert sum("cannot publish" in r.message for r in caplog.records) == 1  # said once, not every tick
    monitor.cloudwatch = cloudwatch  # it is back
    run(monitor, t0, range(5, 7), lambda s: {"req_tot": 10 * s, "hrsp_5xx": 6 * s})
    got = cloudwatch.get_metric_statistics(
        Namespace="AWS/ApplicationELB", MetricName="HTTPCode_Target_5XX_Count", Dimensions=DIMS, Period=2,
        StartTime=datetime.fromtimestamp(t0, UTC), EndTime=datetime.fromtimestamp(t0, UTC) + timedelta(seconds=6),
        Statistics=["Sum"])["Datapoints"]
    assert sum(d["Sum"] for d in got) == 30.0  # seconds 1..5, the first two periods published late
    assert state(cloudwatch, "web-green-5xx")["StateValue"] == "ALARM"  # from the samples kept in memory

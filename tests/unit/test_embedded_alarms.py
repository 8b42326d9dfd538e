"""Alarm evaluation against CloudWatch's documented semantics (user guide, "How alarm state is evaluated
when data is missing": the two example tables, premature-alarm rule, percentiles with low samples)."""

from __future__ import annotations

import json

import pytest

from bgtool.embedded.alarms import (
    ALARM,
    INSUFFICIENT,
    OK,
    AlarmDefinition,
    Datapoint,
    UnsupportedAlarm,
    evaluate,
    period_datapoints,
    reason_data_json,
)
from bgtool.embedded.metrics import Sample

KEEP = None  # the guide's "Retain current state"
T0 = 1_764_000_000.0  # a multiple of 60


def alarm(n: int = 3, m: int | None = None, treat: str = "missing", **over: object) -> AlarmDefinition:
    api = {
        "AlarmName": "web-green-5xx", "Namespace": "AWS/ApplicationELB", "MetricName": "HTTPCode_Target_5XX_Count",
        "Dimensions": [{"Name": "TargetGroup", "Value": "targetgroup/g/1"},
                       {"Name": "LoadBalancer", "Value": "app/web/2"}],
        "Statistic": "Sum", "Period": 60, "EvaluationPeriods": n, "Threshold": 10.0,
        "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": treat, "StateValue": "OK",
    }
    if m is not None:
        api["DatapointsToAlarm"] = m
    api.update(over)
    return AlarmDefinition.from_api(api)


def points(pattern: str) -> list[Datapoint]:
    """The guide's notation, oldest first: 0 not breaching, X breaching, - missing."""
    value = {"0": 1.0, "X": 50.0, "-": None}
    return [Datapoint(T0 + 60 * i, value[c]) for i, c in enumerate(pattern.split())]


# The guide's first table: Datapoints to Alarm = Evaluation Periods = 3, evaluation range 5.
TABLE_3_OF_3 = [
    ("0 - X - X", {"missing": OK, "ignore": OK, "breaching": OK, "notBreaching": OK}),
    ("0 - - - -", {"missing": OK, "ignore": OK, "breaching": OK, "notBreaching": OK}),
    ("- - - - -", {"missing": INSUFFICIENT, "ignore": KEEP, "breaching": ALARM, "notBreaching": OK}),
    ("0 X X - X", {"missing": ALARM, "ignore": ALARM, "breaching": ALARM, "notBreaching": ALARM}),
    ("- - X - -", {"missing": ALARM, "ignore": KEEP, "breaching": ALARM, "notBreaching": OK}),
]
# The second table: 2 out of 3.
TABLE_2_OF_3 = [
    ("0 - X - X", {"missing": ALARM, "ignore": ALARM, "breaching": ALARM, "notBreaching": ALARM}),
    ("0 0 X 0 X", {"missing": ALARM, "ignore": ALARM, "breaching": ALARM, "notBreaching": ALARM}),
    ("0 - X - -", {"missing": OK, "ignore": OK, "breaching": ALARM, "notBreaching": OK}),
    ("- - - - 0", {"missing": OK, "ignore": OK, "breaching": ALARM, "notBreaching": OK}),
    ("- - - X -", {"missing": ALARM, "ignore": KEEP, "breaching": ALARM, "notBreaching": OK}),
]


@pytest.mark.parametrize(("pattern", "expected"), TABLE_3_OF_3)
@pytest.mark.parametrize("treat", ["missing", "ignore", "breaching", "notBreaching"])
def test_guide_table_three_out_of_three(pattern: str, expected: dict[str, str | None], treat: str) -> None:
    assert evaluate(alarm(3, 3, treat), points(pattern)).state == expected[treat]


@pytest.mark.parametrize(("pattern", "expected"), TABLE_2_OF_3)
@pytest.mark.parametrize("treat", ["missing", "ignore", "breaching", "notBreaching"])
def test_guide_table_two_out_of_three(pattern: str, expected: dict[str, str | None], treat: str) -> None:
    assert evaluate(alarm(3, 2, treat), points(pattern)).state == expected[treat]


@pytest.mark.parametrize("pattern", ["- - - - X", "- - - X -"])
def test_a_fresh_breach_does_not_alarm_prematurely(pattern: str) -> None:
    # The guide: with 3 of 3 and missing data, these do not go to ALARM at once.
    assert evaluate(alarm(3, 3, "missing"), points(pattern)).state != ALARM


def test_real_datapoints_decide_and_the_oldest_extra_ones_are_dropped() -> None:
    # Five real points, the last three fine: OK although two older ones breached.
    assert evaluate(alarm(3, 3), points("X X 0 0 0")).state == OK
    assert evaluate(alarm(3, 3), points("0 0 X X X")).state == ALARM


def test_reason_names_the_datapoints_newest_first_and_the_threshold() -> None:
    verdict = evaluate(alarm(2, treat="notBreaching"),
                       [Datapoint(T0, 12.0), Datapoint(T0 + 60, 30.0), Datapoint(T0 + 120, 15.0)], now=T0 + 185)
    assert verdict.state == ALARM
    assert verdict.reason == (
        "Threshold Crossed: 2 out of the last 2 datapoints [15.0 (24/11/25 16:02:00), 30.0 (24/11/25 16:01:00)] "
        "were greater than the threshold (10.0) (minimum 2 datapoints for OK -> ALARM transition).")
    data = json.loads(reason_data_json(verdict))
    assert data["recentDatapoints"] == [30.0, 15.0]
    assert data["period"] == 60 and data["threshold"] == 10.0


def test_ok_reason_says_how_many_did_not_breach_and_what_was_filled() -> None:
    verdict = evaluate(alarm(3, treat="notBreaching"), points("- - - 0 -"))
    assert verdict.state == OK
    assert verdict.reason == ("Threshold Crossed: 0 out of the last 3 datapoints [1.0 (24/11/25 16:03:00)] were "
                              "greater than the threshold (10.0) (2 missing datapoints were treated as [NonBreaching]) "
                              "(minimum 3 datapoints for OK -> ALARM transition).")
    # One real breaching datapoint and one filled as not breaching: OK, and the reason does not deny the breach.
    short = evaluate(alarm(2, treat="notBreaching", Threshold=1.0),
                     [Datapoint(T0, None), Datapoint(T0 + 60, 1.5074999999999998)])
    assert short.state == OK
    assert short.reason.startswith("Threshold Crossed: 1 out of the last 2 datapoints [1.5075 (24/11/25 16:01:00)] "
                                   "was greater than the threshold (1.0) (1 missing datapoint was treated")
    filled = evaluate(alarm(3, treat="breaching"), points("- - - X -"))
    assert filled.state == ALARM
    assert "3 out of the last 3 datapoints [50.0 " in filled.reason
    assert "(2 missing datapoints were treated as [Breaching])" in filled.reason
    empty = evaluate(alarm(2, treat="breaching"), points("- - - -"))
    assert empty.state == ALARM
    assert empty.reason.startswith("Threshold Crossed: no datapoints were received for 4 periods")
    assert evaluate(alarm(2), points("- - - -")).reason == "Insufficient Data: 4 datapoints were unknown."


@pytest.mark.parametrize(("operator", "value", "breaches"), [
    ("GreaterThanThreshold", 10.0, False), ("GreaterThanOrEqualToThreshold", 10.0, True),
    ("LessThanThreshold", 9.0, True), ("LessThanOrEqualToThreshold", 10.0, True), ("LessThanThreshold", 10.0, False),
])
def test_comparison_operators(operator: str, value: float, breaches: bool) -> None:
    definition = alarm(1, ComparisonOperator=operator)
    assert definition.breaches(value) is breaches
    assert evaluate(definition, [Datapoint(T0, value)]).state == (ALARM if breaches else OK)


def test_datapoints_are_complete_periods_aligned_to_the_period() -> None:
    definition = alarm(2).with_period(2)
    now = T0 + 10.5  # periods [T0+6, T0+8) and [T0+8, T0+10) are the last complete ones
    samples = [Sample(T0 + 8.2, 7), Sample(T0 + 9.9, 5), Sample(T0 + 6.0, 1), Sample(T0 + 10.1, 100)]
    got = period_datapoints(definition, samples, now)
    assert [d.start - T0 for d in got] == [2, 4, 6, 8]
    assert [d.value for d in got] == [None, None, 1.0, 12.0]  # the filling period (T0+10) is left out


def test_statistics_over_a_period() -> None:
    samples = [Sample(T0 + 1, 0.2, 9), Sample(T0 + 2, 3.0, 1)]
    by_stat = {stat: period_datapoints(alarm(1, Statistic=stat).with_period(60), samples, T0 + 60)[-1].value
               for stat in ("Average", "Maximum", "Minimum", "SampleCount", "Sum")}
    assert by_stat == pytest.approx({"Average": 0.48, "Maximum": 3.0, "Minimum": 0.2, "SampleCount": 10.0,
                                     "Sum": 4.8})


def test_percentile_alarm_and_low_sample_counts() -> None:
    api = {"Statistic": None, "ExtendedStatistic": "p90"}
    samples = [Sample(T0 + 1, 0.1, 9), Sample(T0 + 2, 2.0, 1)]  # nearest rank: the 9th of 10 is fast
    evaluated = alarm(1, **api)
    assert period_datapoints(evaluated, samples, T0 + 60)[-1].value == pytest.approx(0.1)
    samples.append(Sample(T0 + 3, 2.0, 2))  # the 11th of 12 is slow
    assert period_datapoints(evaluated, samples, T0 + 60)[-1].value == pytest.approx(2.0)
    ignored = alarm(1, EvaluateLowSampleCountPercentile="ignore", **api)  # p90 needs 100 samples
    assert period_datapoints(ignored, samples, T0 + 60)[-1].value is None


@pytest.mark.parametrize("over", [
    {"Metrics": [{"Id": "m1"}]}, {"ComparisonOperator": "LessThanLowerOrGreaterThanUpperThreshold"},
    {"Statistic": "Median"},
])
def test_unsupported_alarms_are_named(over: dict[str, object]) -> None:
    with pytest.raises(UnsupportedAlarm, match="web-green-5xx"):
        alarm(1, **over)


def test_definition_from_describe_alarms_defaults() -> None:
    definition = alarm(2, treat="")
    assert definition.treat_missing_data == "missing"  # CloudWatch's default
    assert definition.datapoints_to_alarm == 2
    assert dict(definition.dimensions) == {"LoadBalancer": "app/web/2", "TargetGroup": "targetgroup/g/1"}
    assert definition.evaluation_range == 4

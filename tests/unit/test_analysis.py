"""Verdicts from traffic: load runs, the pre-promotion analysis and a canary step's judgement."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from bgtool.aws.metrics import TrafficStats
from bgtool.config.schema import AnalysisSettings, LoadSettings
from bgtool.release.analysis import Judgement, Verdict, judge_load, judge_traffic, production_rate
from bgtool.release.load import LoadResult

ANALYSIS = AnalysisSettings(max_error_rate=0.01, max_p99_ms=500, max_regression=0.2, min_requests=50)
LOAD = LoadSettings(rps=20, seconds=5, max_error_rate=0.01, max_p99_ms=500)


def load_result(statuses: dict[str, int], latency_ms: float = 20, *, rate: float = 20,
                elapsed: float = 5) -> LoadResult:
    now = datetime.now(UTC)
    result = LoadResult(planned=100, rate=rate, seconds=5, concurrency=4, started_at=now, ended_at=now)
    result.statuses = Counter(statuses)
    result.sent = sum(statuses.values())
    answered = sum(n for s, n in statuses.items() if s.isdigit())
    result.latencies_ms = [latency_ms] * answered
    result.by_path = Counter({f"/ {s}": n for s, n in statuses.items()})
    result.elapsed = elapsed
    return result


def judge(new: TrafficStats, old: TrafficStats | None, need_baseline: bool = False) -> tuple[Verdict, str]:
    j = judge_traffic(new, old, ANALYSIS, new_color="green", old_color="blue", need_baseline=need_baseline)
    return j.verdict, j.evidence


def test_a_clean_load_passes_with_its_numbers() -> None:
    j = judge_load(load_result({"200": 100}), LOAD)
    assert j.verdict is Verdict.PASS
    assert "100 requests at 20/s" in j.evidence and "0 failed" in j.evidence and "p99 20 ms" in j.evidence
    assert j.numbers["p99_ms"] == 20


def test_connection_errors_and_timeouts_fail_the_load_not_only_statuses() -> None:
    j = judge_load(load_result({"200": 97, "connection error": 2, "timeout": 1}), LOAD)
    assert j.verdict is Verdict.FAIL
    assert "failure rate 3.0%" in j.evidence and "connection error x2" in j.evidence and "timeout x1" in j.evidence


def test_paths_that_404_fail_the_load_naming_them() -> None:
    j = judge_load(load_result({"200": 50, "404": 50}), LOAD)
    assert j.verdict is Verdict.FAIL and "/ 404" in j.evidence and "HTTP 4xx x50" in j.evidence


def test_a_rate_the_concurrency_cannot_carry_fails_with_evidence() -> None:
    j = judge_load(load_result({"200": 40}, latency_ms=400, rate=20, elapsed=5), LOAD)
    assert j.verdict is Verdict.FAIL and "answered 8.0/s of the planned 20/s" in j.evidence
    assert "concurrency 4" in j.evidence


def test_a_slow_p99_fails_the_load() -> None:
    j = judge_load(load_result({"200": 100}, latency_ms=900), LOAD)
    assert j.verdict is Verdict.FAIL and "p99 900 ms > max_p99_ms 500" in j.evidence


def test_too_little_data_is_inconclusive_not_a_pass() -> None:
    verdict, evidence = judge(TrafficStats(12, 0, 10.0), TrafficStats(500, 0, 10.0))
    assert verdict is Verdict.INCONCLUSIVE and "12 requests" in evidence and "min_requests 50" in evidence
    assert judge(TrafficStats(200, 0, None), None)[0] is Verdict.INCONCLUSIVE  # no p99 at all


def test_two_percent_errors_fail_the_absolute_threshold() -> None:
    verdict, evidence = judge(TrafficStats(500, 10, 15.0), TrafficStats(500, 0, 15.0))
    assert verdict is Verdict.FAIL and "5xx rate 2.00% > max_error_rate 1.00%" in evidence


def test_regressions_against_the_old_color_fail_beyond_max_regression_and_tolerance() -> None:
    lenient = AnalysisSettings(max_error_rate=0.5, max_p99_ms=10_000, max_regression=0.2, min_requests=50)
    slower = judge_traffic(TrafficStats(500, 0, 300.0), TrafficStats(500, 0, 100.0), lenient,
                           new_color="green", old_color="blue", need_baseline=False)
    assert slower.verdict is Verdict.FAIL and "p99 300 ms vs 100 ms on the old color" in slower.evidence
    within = judge_traffic(TrafficStats(500, 0, 115.0), TrafficStats(500, 0, 100.0), lenient,
                           new_color="green", old_color="blue", need_baseline=False)
    assert within.verdict is Verdict.PASS
    tiny = judge_traffic(TrafficStats(500, 0, 3.0), TrafficStats(500, 0, 1.0), lenient,  # 3 ms vs 1 ms: noise
                         new_color="green", old_color="blue", need_baseline=False)
    assert tiny.verdict is Verdict.PASS
    errors = judge_traffic(TrafficStats(1000, 40, 10.0), TrafficStats(1000, 10, 10.0), lenient,
                           new_color="green", old_color="blue", need_baseline=False)
    assert errors.verdict is Verdict.FAIL and "5xx rate 4.00% vs 1.00%" in errors.evidence


def test_without_a_baseline_absolute_thresholds_decide_unless_one_is_required() -> None:
    verdict, evidence = judge(TrafficStats(200, 0, 10.0), TrafficStats(3, 0, 5.0))
    assert verdict is Verdict.PASS and "nothing to compare with" in evidence
    assert judge(TrafficStats(200, 0, 10.0), None, need_baseline=True)[0] is Verdict.INCONCLUSIVE


def test_production_rate_without_metrics_is_inconclusive_with_the_reason() -> None:
    j = production_rate(None, 2.0, "blue", 60)
    assert j.verdict is Verdict.INCONCLUSIVE and "no RequestCount" in j.evidence and "60 min" in j.evidence
    sized = production_rate(12.5, 2.0, "blue", 60)
    assert sized.passed and sized.numbers["rate"] == 25.0


def test_gate_rows_carry_the_verdict_and_only_inconclusive_rows_may_be_accepted() -> None:
    from bgtool.release.gate import Check, GateReport

    unsure = Check.of("analysis", Judgement(Verdict.INCONCLUSIVE, "too little data", {"green": {"requests": 3}}))
    assert unsure.to_dict() == {"name": "analysis", "passed": False, "verdict": "inconclusive",
                                "evidence": "too little data", "details": {"green": {"requests": 3}}}
    ok = Check("targets healthy", True, "2/2")
    assert GateReport("green", [ok, unsure]).only_inconclusive
    assert not GateReport("green", [ok, unsure, Check("load", False, "2 failed")]).only_inconclusive
    assert not GateReport("green", [ok]).only_inconclusive

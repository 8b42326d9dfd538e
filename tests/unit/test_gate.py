"""Verdicts of the health gate, from facts given directly (no AWS, no network)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bgtool.aws.live import ColorLive, TargetHealth
from bgtool.config.schema import Color, Environment, GateSettings, HostChecks, SmokeCheck, load_environment
from bgtool.release.gate import Check, GateReport, _host_verdict, _junit_results, evaluate, smoke_verdict

ALARMS = ["app-green-5xx", "app-green-latency", "app-green-unhealthy-hosts"]


@pytest.fixture
def config(shipped: Path) -> Environment:
    base = load_environment(shipped, "local").config
    return base.model_copy(update={"name": "app", "gate": GateSettings(min_healthy=2)})


def healthy(**changes: object) -> ColorLive:
    live = ColorLive(
        color="green", asg_names=["app-green-1"], versions=["1.1.0"], desired=2, in_service=2,
        instance_ids=["i-1", "i-2"], targets=[TargetHealth("i-1", "healthy"), TargetHealth("i-2", "healthy")],
        alarms=list(ALARMS), alarms_firing=[],
    )
    for key, value in changes.items():
        setattr(live, key, value)
    return live


def verdicts(config: Environment, live: ColorLive, smoke: list[Check] | None = None) -> dict[str, Check]:
    return {c.name: c for c in evaluate(config, Color.GREEN, live, smoke or [], [])}


def test_all_pass(config: Environment) -> None:
    checks = evaluate(config, Color.GREEN, healthy(), [], [])
    report = GateReport("green", checks)
    assert report.passed and report.failures() == []
    by_name = {c.name: c for c in checks}
    assert by_name["in service == desired"].evidence == "2/2 instances InService in app-green-1"
    assert "2/2 registered targets healthy" in by_name["targets healthy"].evidence
    assert by_name["smoke"].passed and "none configured" in by_name["smoke"].evidence
    assert by_name["host checks"].passed and "none configured" in by_name["host checks"].evidence
    assert report.to_dict()["passed"] is True and len(report.to_dict()["checks"]) == len(checks)


def test_not_all_in_service(config: Environment) -> None:
    check = verdicts(config, healthy(in_service=1))["in service == desired"]
    assert not check.passed and check.evidence.startswith("1/2")


def test_an_ecs_rollout_the_circuit_breaker_failed_fails_the_gate(config: Environment) -> None:
    ecs = {"task_definition": "app-green:3", "image": "repo/app:1.1.0", "group_label": "ECS service"}
    failed = verdicts(config, healthy(rollout="FAILED", rollout_reason="tasks failed to start", **ecs))["deployment"]
    assert not failed.passed
    assert failed.evidence == "primary deployment of app-green:3 (repo/app:1.1.0): FAILED (tasks failed to start)"
    done = verdicts(config, healthy(rollout="COMPLETED", **ecs))["deployment"]
    assert done.passed and done.evidence.endswith(": COMPLETED")
    assert "deployment" not in verdicts(config, healthy())  # an Auto Scaling color has no ECS deployment


def test_desired_zero_fails(config: Environment) -> None:
    check = verdicts(config, healthy(desired=0, in_service=0))["in service == desired"]
    assert not check.passed and "desired capacity is 0" in check.evidence


def test_no_group_fails(config: Environment) -> None:
    check = verdicts(config, healthy(asg_names=[], desired=0, in_service=0))["in service == desired"]
    assert not check.passed and "no Auto Scaling group" in check.evidence


def test_unhealthy_target_is_named(config: Environment) -> None:
    targets = [TargetHealth("i-1", "healthy"), TargetHealth("i-2", "unused", "Target.InvalidState")]
    check = verdicts(config, healthy(targets=targets))["targets healthy"]
    assert not check.passed and "i-2 unused (Target.InvalidState)" in check.evidence and "i-1 " not in check.evidence


def test_below_min_healthy(config: Environment) -> None:
    live = healthy(desired=1, in_service=1, instance_ids=["i-1"], targets=[TargetHealth("i-1", "healthy")])
    checks = verdicts(config, live)
    assert checks["in service == desired"].passed
    assert not checks["targets healthy"].passed and "below min_healthy" in checks["targets healthy"].evidence


def test_no_targets_registered(config: Environment) -> None:
    check = verdicts(config, healthy(targets=[]))["targets healthy"]
    assert not check.passed and "none registered" in check.evidence


def test_alarm_firing_is_named(config: Environment) -> None:
    check = verdicts(config, healthy(alarms_firing=["app-green-5xx"]))["alarms"]
    assert not check.passed and check.evidence == "in ALARM: app-green-5xx"


def test_missing_alarms_fail(config: Environment) -> None:
    check = verdicts(config, healthy(alarms=[]))["alarms"]
    assert not check.passed and "nothing watches" in check.evidence


def test_smoke_failed(config: Environment) -> None:
    smoke = [Check("smoke /health", True, "GET ...: 200"), Check("smoke /version", False, "status 503")]
    report = GateReport("green", evaluate(config, Color.GREEN, healthy(), smoke, []))
    assert not report.passed
    assert [c.name for c in report.failures()] == ["smoke /version"]
    assert "smoke" not in {c.name for c in report.checks}  # no "none configured" when there are checks


def test_host_checks_configured_but_not_run_fail(config: Environment) -> None:
    gated = config.model_copy(update={"gate": GateSettings(host_checks=HostChecks(module="m.py"))})
    checks = verdicts(gated, healthy())
    assert not checks["host checks"].passed


def test_host_check_results_are_reported(config: Environment) -> None:
    hosts = [Check("host checks m.py", False, "failed on ssh://u@10.0.0.1: test_x[ssh://u@10.0.0.1]")]
    report = GateReport("green", evaluate(config, Color.GREEN, healthy(), [], hosts))
    assert report.failures() == hosts


def test_empty_report_does_not_pass() -> None:
    assert not GateReport("green", []).passed


@pytest.mark.parametrize(
    ("check", "status", "body", "ok", "words"),
    [
        (SmokeCheck(path="/health"), 200, "ok", True, "200"),
        (SmokeCheck(path="/health"), 503, "down", False, "status 503, expected 200"),
        (SmokeCheck(path="/", expect_body="Welcome"), 200, "<h1>hi</h1>", False, "body lacks 'Welcome'"),
        (SmokeCheck(path="/version", expect_version=True), 200, "1.1.0\n", True, "1.1.0"),
        (SmokeCheck(path="/version", expect_version=True), 200, "1.0.0\n", False, "lacks version '1.1.0'"),
        (SmokeCheck(path="/missing", expect_status=404), 404, "", True, "404"),
    ],
)
def test_smoke_verdicts(check: SmokeCheck, status: int, body: str, ok: bool, words: str) -> None:
    verdict = smoke_verdict(check, "http://alb:8080" + check.path, status, body, "", "1.1.0")
    assert verdict.passed is ok and words in verdict.evidence and verdict.name == f"smoke {check.path}"


def test_smoke_without_response() -> None:
    verdict = smoke_verdict(SmokeCheck(), "http://alb:8080/", None, "", "no response (timed out)", "1")
    assert not verdict.passed and "timed out" in verdict.evidence


JUNIT = """<?xml version="1.0"?><testsuites><testsuite>
<testcase classname="test_app_host" name="test_listens[ssh://u@10.0.0.1]"/>
<testcase classname="test_app_host" name="test_health[ssh://u@10.0.0.1]"><failure message="x"/></testcase>
<testcase classname="test_app_host" name="test_version[ssh://u@10.0.0.1]"><skipped/></testcase>
</testsuite></testsuites>"""


def test_failing_host_tests_are_named(tmp_path: Path) -> None:
    report = tmp_path / "r.xml"
    report.write_text(JUNIT)
    passed, failed = _junit_results(report)
    assert (passed, failed) == (1, ["test_health[ssh://u@10.0.0.1]"])
    done = subprocess.CompletedProcess([], 1, "", "")
    check = _host_verdict("host checks", done, ["ssh://u@10.0.0.1"], passed, failed)
    assert not check.passed and "test_health[ssh://u@10.0.0.1]" in check.evidence


def test_host_run_without_results_fails(tmp_path: Path) -> None:
    passed, failed = _junit_results(tmp_path / "absent.xml")
    done = subprocess.CompletedProcess([], 4, "", "ERROR: file or directory not found")
    check = _host_verdict("host checks", done, ["local://"], passed, failed)
    assert not check.passed and "exited 4" in check.evidence and "not found" in check.evidence

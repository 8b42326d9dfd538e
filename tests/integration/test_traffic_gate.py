"""The gate's load and analysis, and every canary step judged by its traffic, through the real local
data plane (HAProxy, one sample-app process per instance, metrics published to the embedded
CloudWatch) and the real terraform binary, in an environment of its own (`trf`).

In order: the gate shows its load and analysis rows and passes; a release answering 2% errors is
refused by the gate with nothing moved; a switch nobody sends production traffic to is not judged
and restores; a release that starts erroring once it has 50% is restored,
with each step's report naming what both colors served; retire refuses the color that still
received requests.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import BGTOOL, Project
from tests.integration.traffic import Traffic

ENV = "local"


def status(project: Project) -> dict[str, Any]:
    return json.loads(project.ok("local", "status", "--env", ENV, "--json").stdout)


def fault(project: Project, *args: str) -> None:
    project.ok("local", "fault", "green", "--env", ENV, *args)


@pytest.fixture(scope="module")
def trf(applied: Project) -> Iterator[Project]:
    applied.ok("deploy", ENV, "1.1.0", "--yes", timeout=900)
    yield applied
    applied.run("local", "fault", "green", "--env", ENV, "--clear")


def rows(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in doc["checks"]}


def test_verify_shows_the_load_and_analysis_rows(trf: Project) -> None:
    done = trf.run("verify", ENV, "--json")
    checks = rows(json.loads(done.stdout))
    assert done.returncode == 0, checks
    load, analysis = checks["load"], checks["analysis"]
    assert load["verdict"] == "pass" and load["details"]["sent"] == 100 and load["details"]["failures"] == 0
    assert load["details"]["p99_ms"] is not None and "p50" in load["evidence"]
    # the metrics periods that overlap the load's window hold most of its requests, at least min_requests
    assert analysis["verdict"] == "pass" and analysis["details"]["green"]["requests"] >= 40, analysis
    assert analysis["details"]["green"]["p99_ms"] is not None


def test_a_release_answering_two_percent_errors_is_refused_by_the_gate(trf: Project) -> None:
    fault(trf, "--errors", "2")
    try:
        done = trf.run("switch", ENV, "--yes", "--json")
    finally:
        fault(trf, "--clear")
    doc = json.loads(done.stdout)
    assert done.returncode == 1 and doc["result"] == "failed" and doc["steps"] == [], doc["reason"]
    checks = rows(doc["gate"])
    assert checks["load"]["verdict"] == "fail" and "HTTP 5xx x2" in checks["load"]["evidence"]
    assert checks["analysis"]["verdict"] == "fail" and "max_error_rate" in checks["analysis"]["evidence"]
    assert "blue 100, green 0" in doc["live_weights"]


def test_a_step_without_production_traffic_is_not_judged_and_restores(trf: Project) -> None:
    """Nobody uses production here: the step's traffic is never judged, so it did not pass. The
    monitor asked for 0 s lasts until a whole metrics period could have been judged (2 x 10 s + 2 s)."""
    done = trf.run("switch", ENV, "--steps", "100", "--bake", "0", "--monitor", "0", "--yes", "--json")
    doc = json.loads(done.stdout)
    assert done.returncode == 1 and doc["result"] == "rolled-back", doc["reason"]
    assert doc["reason"].startswith("monitor: green traffic not judged by the end of the bake"), doc["reason"]
    assert "--accept-inconclusive" in doc["reason"]
    assert doc["steps"][0]["traffic"]["verdict"] == "inconclusive", doc["steps"]
    assert "monitor 22s instead of 0s" in done.stderr, done.stderr
    assert "blue 100, green 0" in doc["live_weights"]


def test_errors_starting_at_fifty_percent_are_restored_with_both_colors_numbers(trf: Project) -> None:
    url = status(trf)["listeners"]["80"]
    with Traffic(url, workers=2, pause=0.02) as traffic:
        switch = subprocess.Popen([BGTOOL, "switch", ENV, "--steps", "10,50,100", "--bake", "40", "--monitor", "15",
                                   "--yes", "--json"], cwd=trf.root, env=trf.env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        injected = False
        while switch.poll() is None:
            if not injected and traffic.share("1.1.0") > 0.35:  # the 50% step serves
                fault(trf, "--errors", "20")
                injected = True
            time.sleep(0.5)
        out, err = switch.communicate()
    fault(trf, "--clear")
    assert injected, err
    doc = json.loads(out)
    assert switch.returncode == 1 and doc["result"] == "rolled-back", err
    # Caught by the step's traffic judgement ("5xx rate ... vs ... on the old color") or, when the
    # metrics period ends after the bake, by the 5xx alarm in the monitor window: either restores.
    reason = doc["reason"]
    assert ("5xx rate" in reason or "green-5xx" in reason) and not reason.startswith(("gate", "bake 1/3")), reason
    first = doc["steps"][0]["traffic"]
    assert first["verdict"] == "pass" and first["green"]["requests"] > 0 and first["blue"]["requests"] > 0
    later = [s["traffic"] for s in doc["steps"][1:] if "green" in s.get("traffic", {})]
    assert any(t["green"]["errors"] > 0 for t in later), later
    assert all(t["blue"]["errors"] == 0 and "requests" in t["blue"] for t in later), later
    assert 0 < doc["restore"]["flip_seconds"] <= doc["restore"]["reconcile_seconds"], doc["restore"]
    assert "bake 2 traffic: green" in err and "| blue" in err
    records = json.loads(trf.ok("history", ENV, "--json").stdout)["records"]
    last = max((r for r in records if r["operation"] == "switch"), key=lambda r: r["at"])
    assert last["result"] == "rolled-back" and last["details"]["applied"][1]["traffic"]["green"]["requests"] > 0


def test_retire_refuses_a_color_that_still_received_requests(trf: Project) -> None:
    done = trf.run("retire", ENV, "--yes")
    assert done.returncode == 1
    assert "still received" in done.stderr and "retire.quiet_minutes" in done.stderr, done.stderr

"""The GitHub Actions workflows load, have the expected shape, and call only real bgtool commands."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from bgtool.cli.app import main
from tests.helpers import REPO

WORKFLOWS = REPO / ".github" / "workflows"
# `bgtool` in command position: line start, after ; && || ( or then/do/else (not inside an echo).
BGTOOL_CALL = re.compile(r"(?:^[ \t]*|[;&|(][ \t]*|\b(?:then|do|else)[ \t]+)bgtool[ \t]+([^;&|\n)]*)", re.M)


def load(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as the boolean True
    return doc


def steps(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in doc["jobs"].values() for step in job.get("steps", [])]


def bgtool_calls(doc: dict[str, Any]) -> list[list[str]]:
    """Every `bgtool VERB ARGS` in run scripts, split like a shell (quoted expressions kept whole)."""
    calls = []
    for step in steps(doc):
        for match in BGTOOL_CALL.finditer(step.get("run", "")):
            calls.append(shlex.split(match.group(1).split(">")[0], comments=True))
    return calls


def uses(doc: dict[str, Any]) -> list[str]:
    return [step["uses"].split("@")[0] for step in steps(doc) if "uses" in step]


@pytest.mark.parametrize("name", ["pr.yml", "apply.yml", "drift.yml"])
def test_workflow_is_thin_and_uses_oidc(name: str) -> None:
    doc = load(name)
    assert doc["permissions"]["id-token"] == "write" and doc["permissions"]["contents"] == "read"
    assert "aws-actions/configure-aws-credentials" in uses(doc)
    for step in steps(doc):
        if step.get("uses", "").startswith("aws-actions/configure-aws-credentials"):
            assert step["with"]["role-to-assume"].startswith("${{ vars."), "role from a repository variable"
            assert "aws-access-key-id" not in step["with"], "no long-lived keys"
    text = (WORKFLOWS / name).read_text()
    assert "BGTOOL_PROVIDER_MIRROR" not in text and "AWS_SECRET_ACCESS_KEY" not in text


@pytest.mark.parametrize("name", ["pr.yml", "apply.yml", "drift.yml"])
def test_every_bgtool_command_and_option_exists(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    calls = bgtool_calls(load(name))
    assert calls, f"{name} runs no bgtool command"
    for call in calls:
        verb, options = call[0], [a.split("=")[0] for a in call[1:] if a.startswith("--")]
        assert main([verb, "--help"]) == 0, f"bgtool {verb} does not exist"
        helptext = capsys.readouterr().out
        for option in options:
            assert option in helptext, f"bgtool {verb} has no option {option}"


def test_pull_request_workflow() -> None:
    doc = load("pr.yml")
    assert "pull_request" in doc["on"]
    assert doc["permissions"]["pull-requests"] == "write"
    assert {"actions/checkout", "actions/setup-python", "hashicorp/setup-terraform"} <= set(uses(doc))
    verbs = [c[0] for c in bgtool_calls(doc)]
    assert verbs == ["changed", "render", "plan"]
    changed = bgtool_calls(doc)[0]
    assert changed[1:] == ["--base", "origin/${{ github.base_ref }}"]
    assert "--markdown" in bgtool_calls(doc)[2]
    checkout = next(s for s in steps(doc) if s.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0


def test_apply_workflow_one_at_a_time_prod_last_with_approval() -> None:
    doc = load("apply.yml")
    assert doc["on"]["push"]["branches"] == ["main"]
    assert doc["concurrency"]["cancel-in-progress"] is False
    jobs = doc["jobs"]
    assert jobs["apply"]["strategy"]["max-parallel"] == 1
    assert jobs["apply-prod"]["environment"] == "production"
    assert set(jobs["apply-prod"]["needs"]) == {"changes", "apply"}
    calls = bgtool_calls(doc)
    assert ["apply", "prod", "--yes"] in calls and ["apply", "${{ matrix.env }}", "--yes"] in calls


def test_drift_workflow_nightly_reports_and_fails_on_drift() -> None:
    doc = load("drift.yml")
    assert doc["on"]["schedule"][0]["cron"] and "workflow_dispatch" in doc["on"]
    assert doc["permissions"]["issues"] == "write"
    assert ["drift", "--all", "--markdown", "drift.md", "--json"] in bgtool_calls(doc)
    text = (WORKFLOWS / "drift.yml").read_text()
    assert "GITHUB_STEP_SUMMARY" in text and "gh issue" in text
    fail = next(s for s in steps(doc) if s.get("name") == "Fail on drift or error")
    assert fail["if"] == "steps.drift.outputs.code != '0'"


def test_no_stray_workflows() -> None:
    assert sorted(p.name for p in Path(WORKFLOWS).glob("*.yml")) == ["apply.yml", "drift.yml", "pr.yml"]

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
    assert doc["permissions"] == {}, "nothing by default: each job asks for what it needs"
    assert "aws-actions/configure-aws-credentials" in uses(doc)
    for job in doc["jobs"].values():
        assumes = any(s.get("uses", "").startswith("aws-actions/configure-aws-credentials")
                      for s in job.get("steps", []))
        granted = job.get("permissions", {})
        assert (granted.get("id-token") == "write") == assumes, "an OIDC token only where a role is assumed"
        assert set(granted.values()) <= {"read", "write"} and granted.get("contents") in ("read", None)
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
    assert doc["jobs"]["plan"]["permissions"]["pull-requests"] == "write"
    assert doc["jobs"]["plan"]["needs"] == "checks" and doc["jobs"]["checks"]["uses"] == "./.github/workflows/ci.yml"
    assert "head.repo.full_name == github.repository" in doc["jobs"]["plan"]["if"], "no plan for a fork"
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
    # live-color changes are released blue/green, never applied in place
    assert ["apply", "prod", "--yes", "--release"] in calls
    assert ["apply", "${{ matrix.env }}", "--yes", "--release"] in calls
    assert not any("--allow-replace" in call for call in calls), "routing is never replaced unattended"


def test_drift_workflow_nightly_reports_and_fails_on_drift() -> None:
    doc = load("drift.yml")
    assert doc["on"]["schedule"][0]["cron"] and "workflow_dispatch" in doc["on"]
    jobs = doc["jobs"]
    assert jobs["report"]["permissions"]["issues"] == "write" and "issues" not in jobs["drift"]["permissions"]
    # one job per environment, merged into one report and one issue
    assert jobs["drift"]["strategy"]["matrix"]["env"] == "${{ fromJSON(needs.environments.outputs.envs) }}"
    assert jobs["drift"]["strategy"]["fail-fast"] is False
    assert jobs["report"]["needs"] == "drift" and jobs["report"]["if"] == "always()"
    assert ["drift", "$ENV_NAME", "--markdown", "drift-$ENV_NAME.md", "--json"] in bgtool_calls(doc)
    text = (WORKFLOWS / "drift.yml").read_text()
    assert "GITHUB_STEP_SUMMARY" in text and "gh issue" in text
    fail = next(s for s in steps(doc) if s.get("name") == "Fail on drift or error")
    assert fail["if"] == "steps.drift.outputs.code != '0'"


def test_no_stray_workflows() -> None:
    assert sorted(p.name for p in Path(WORKFLOWS).glob("*.yml")) == ["apply.yml", "ci.yml", "drift.yml", "pr.yml"]


@pytest.mark.parametrize("name", ["pr.yml", "apply.yml", "drift.yml", "ci.yml"])
def test_actions_are_pinned_to_full_commit_shas(name: str) -> None:
    doc = load(name)
    pinned = [s["uses"] for s in steps(doc) if "uses" in s]
    assert pinned
    for ref in pinned:
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", ref), f"{ref} is not pinned to a commit SHA"
    for line in (WORKFLOWS / name).read_text().splitlines():
        if "uses:" in line and "@" in line:
            assert re.search(r"@[0-9a-f]{40} # v\d", line), f"say which version the SHA is: {line.strip()}"


def test_apply_workflow_refuses_forks() -> None:
    doc = load("apply.yml")
    assert "!github.event.repository.fork" in doc["jobs"]["changes"]["if"]
    assert "pull_request" not in doc["on"] and "pull_request_target" not in doc["on"]
    assert all("changes" in ([j["needs"]] if isinstance(j["needs"], str) else j["needs"])
               for name, j in doc["jobs"].items() if name != "changes")


def test_checks_workflow_runs_lint_tests_validate() -> None:
    doc = load("ci.yml")
    assert "workflow_call" in doc["on"] and doc["permissions"] == {}
    runs = "\n".join(s.get("run", "") for s in steps(doc))
    assert "make lint" in runs and "make unit" in runs and "scripts/validate-examples" in runs
    for job in doc["jobs"].values():
        assert job["permissions"] == {"contents": "read"}, "checks need no AWS and no write access"
    makefile = (REPO / "Makefile").read_text()
    lint = makefile[makefile.index("\nlint:"):makefile.index("\ncheckov:")]
    assert "actionlint" in lint and "checkov" in lint and "terraform fmt" in lint

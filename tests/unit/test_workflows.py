"""The GitHub Actions workflows load, have the expected shape, and call only real bgtool commands."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bgtool.cli.app import main
from tests.helpers import REPO, copy_project, edit_yaml

WORKFLOWS = REPO / ".github" / "workflows"
# `bgtool` in command position: line start, after ; && || ( or then/do/else/exec (not inside an echo).
BGTOOL_CALL = re.compile(r"(?:^[ \t]*|[;&|(][ \t]*|\b(?:then|do|else|exec)[ \t]+)bgtool[ \t]+([^;&|\n)]*)", re.M)


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
        assert set(granted.values()) <= {"read", "write"}
        if granted.get("contents") == "write":  # apply.yml's write-back: the repository, no cloud, no bgtool
            assert not assumes and not any(BGTOOL_CALL.search(s.get("run", "")) for s in job["steps"])
        else:
            assert granted.get("contents") in ("read", None)
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
    assert changed[1:] == ["--base", "origin/${{ github.base_ref }}", "--json"]
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
    assert ["changed", "--since-applied", "--json"] in calls, "per environment, since its last apply"
    assert "github.event.before" not in (WORKFLOWS / "apply.yml").read_text(), "never since the previous push"
    assert not any("--allow-replace" in call for call in calls), "routing is never replaced unattended"


def test_drift_workflow_nightly_reports_and_fails_on_drift() -> None:
    doc = load("drift.yml")
    assert doc["on"]["schedule"][0]["cron"] and "workflow_dispatch" in doc["on"]
    jobs = doc["jobs"]
    assert jobs["report"]["permissions"]["issues"] == "write" and "issues" not in jobs["drift"]["permissions"]
    # one job per environment, merged into one report and one issue
    assert jobs["drift"]["strategy"]["matrix"]["env"] == "${{ fromJSON(needs.environments.outputs.envs) }}"
    assert jobs["drift"]["strategy"]["fail-fast"] is False
    assert jobs["report"]["needs"] == ["environments", "drift"]
    assert jobs["report"]["if"] == "always() && needs.environments.outputs.envs != '[]'"
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


# --------------------------------------------------------------------------------------------
# Embedded environments never reach a real matrix; a cancellation reaches bgtool and is cleaned up
# --------------------------------------------------------------------------------------------

MOVES_TRAFFIC = ("apply", "switch", "rollback", "deploy", "retire")


def runs(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(name, step) for name, job in doc["jobs"].items() for step in job.get("steps", []) if "run" in step]


@pytest.mark.parametrize("name", ["pr.yml", "apply.yml", "drift.yml"])
def test_every_traffic_moving_bgtool_runs_with_exec_as_the_step_itself(name: str) -> None:
    """A cancelled run signals only the step's process; a shell does not pass the signal on."""
    found = 0
    for _, step in runs(load(name)):
        for match in BGTOOL_CALL.finditer(step["run"]):
            if match.group(1).split()[0] in MOVES_TRAFFIC:
                found += 1
                assert step["run"].strip() == match.group(0).strip() and match.group(0).strip().startswith(
                    "exec bgtool "), f"{step.get('name')}: the step must be `exec bgtool ...` alone"
    assert found == (2 if name == "apply.yml" else 0)


def test_a_traffic_moving_step_tells_bgtool_that_a_kill_follows_the_signal() -> None:
    """So a cancelled switch flips back, records and unlocks inside the runner's ~10 s (bgtool.interrupts)."""
    for _, step in runs(load("apply.yml")):
        if step["run"].startswith("exec bgtool "):
            assert step["env"]["BGTOOL_KILL_AFTER_SIGNAL_SECONDS"] == "10", step.get("name")


def test_a_cancelled_apply_is_followed_by_the_clean_up_step() -> None:
    for job in ("apply", "apply-prod"):
        steps_ = load("apply.yml")["jobs"][job]["steps"]
        index = next(i for i, s in enumerate(steps_) if s.get("id") == "apply")
        after = steps_[index + 1]
        assert after["if"].startswith("cancelled() && ") and "steps.apply.outcome" in after["if"]
        assert after["run"].startswith("scripts/after-cancel ")
        assert (REPO / "scripts/after-cancel").stat().st_mode & 0o111, "executable"


@pytest.mark.parametrize(("name", "job"), [("apply.yml", "apply"), ("drift.yml", "drift")])
def test_a_matrix_of_environments_never_fails_fast(name: str, job: str) -> None:
    assert load(name)["jobs"][job]["strategy"]["fail-fast"] is False


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A git checkout of the example environments, the real ones' history as files (no AWS)."""
    root = copy_project(tmp_path / "project")
    for env in ("prod", "staging"):
        edit_yaml(root / f"environments/{env}.yaml", "backend: s3", "backend: local")
    (root / ".gitignore").write_text(".bgtool/\n")
    for args in (("init", "-q", "-b", "main"), ("add", "-A"), ("commit", "-qm", "first")):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root, check=True,
                       capture_output=True)
    return root


def run_step(root: Path, name: str, step_name: str) -> tuple[dict[str, str], str]:
    """The workflow's own `run:` script, as the runner runs it (bash -e), with bgtool and jq on PATH;
    returns its GITHUB_OUTPUT and its stdout (workflow commands such as ::notice::)."""
    step = next(s for _, s in runs(load(name)) if s.get("name", "").startswith(step_name))
    output = root / "github-output"
    output.write_text("")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "BGTOOL_ROOT": str(root),
           "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(root / "summary.md")}
    done = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=root, env=env, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines())
    return outputs, done.stdout


def test_drift_matrix_leaves_embedded_environments_out_with_a_notice(project: Path) -> None:
    outputs, stdout = run_step(project, "drift.yml", "One job per environment file")
    assert json.loads(outputs["envs"]) == ["staging", "prod"]
    assert "::notice title=bgtool drift::local targets the embedded AWS" in stdout
    assert "::notice title=bgtool drift::local-dns targets the embedded AWS" in stdout


def test_apply_matrix_leaves_embedded_environments_out_and_catches_up(project: Path) -> None:
    outputs, stdout = run_step(project, "apply.yml", "Changed environments since each was last applied")
    assert json.loads(outputs["envs"]) == ["staging"] and outputs["prod"] == "true", "never applied: both"
    assert "::notice title=bgtool apply::local targets the embedded AWS" in stdout
    assert "local-dns" in stdout


def test_pr_plans_leave_embedded_environments_out_with_a_notice(project: Path) -> None:
    subprocess.run(["git", "update-ref", "refs/remotes/origin/main", "HEAD"], cwd=project, check=True)
    template = next((project / "templates").rglob("*.j2"))
    template.write_text(template.read_text() + "\n")
    step = next(s for _, s in runs(load("pr.yml")) if s.get("name", "").startswith("Changed environments"))
    step["run"] = step["run"].replace("${{ github.base_ref }}", "main")
    output = project / "github-output"
    done = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=project, capture_output=True, text=True,
                          env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
                               "BGTOOL_ROOT": str(project), "GITHUB_OUTPUT": str(output)}, check=False)
    assert done.returncode == 0, done.stderr
    assert (project / "changed.txt").read_text() == "staging\nprod\n"
    assert (project / "embedded.txt").read_text() == "local\nlocal-dns\nlocal-ecs\n"
    assert "::notice title=bgtool plan::local targets the embedded AWS" in done.stdout


# --------------------------------------------------------------------------------------------
# What a release rewrote in a runner goes back to the repository (scripts/write-back: test_write_back)
# --------------------------------------------------------------------------------------------


def test_apply_jobs_keep_a_rewritten_file_and_the_write_back_job_proposes_it() -> None:
    jobs = load("apply.yml")["jobs"]
    for job in ("apply", "apply-prod"):
        steps_ = jobs[job]["steps"]
        keep = next(s for s in steps_ if s.get("id") == "rewritten")
        upload = steps_[steps_.index(keep) + 1]
        assert keep["if"].startswith("always()"), "also after a failure: a release may have moved the color"
        assert upload["uses"].startswith("actions/upload-artifact@")
        assert upload["with"]["name"].startswith("environment-") and upload["with"]["path"] == "rewritten/"
    write_back = jobs["write-back"]
    assert set(write_back["needs"]) == {"changes", "apply", "apply-prod"} and write_back["if"].startswith("always()")
    assert write_back["permissions"] == {"contents": "write", "pull-requests": "write"}, "no cloud, least repo"
    download = next(s for s in write_back["steps"] if s.get("uses", "").startswith("actions/download-artifact@"))
    assert download["with"] == {"pattern": "environment-*", "path": "rewritten", "merge-multiple": True}
    last = write_back["steps"][-1]
    assert last["run"] == "scripts/write-back rewritten" and last["env"]["GH_TOKEN"] == "${{ github.token }}"
    assert (REPO / "scripts/write-back").stat().st_mode & 0o111, "executable"


@pytest.mark.parametrize("released", [True, False])
def test_the_keep_step_copies_only_a_rewritten_file(project: Path, released: bool) -> None:
    """The step's own script, read from the workflow, in a checkout after `bgtool apply` ran."""
    keep = next(s for s in load("apply.yml")["jobs"]["apply"]["steps"] if s.get("id") == "rewritten")
    if released:
        edit_yaml(project / "environments/staging.yaml", "active_color: blue", "active_color: green")
    output = project / "github-output"
    done = subprocess.run(["bash", "-e", "-c", keep["run"]], cwd=project, capture_output=True, text=True, check=False,
                          env={**os.environ, "ENV_NAME": "staging", "GITHUB_OUTPUT": str(output)})
    assert done.returncode == 0, done.stderr
    assert output.read_text() == f"changed={'true' if released else 'false'}\n"
    kept = project / "rewritten/staging.yaml"
    assert kept.exists() == released
    if released:
        assert kept.read_text() == (project / "environments/staging.yaml").read_text()


# --------------------------------------------------------------------------------------------
# scripts/after-cancel with a stand-in bgtool: frees dead holders' locks, never moves traffic
# --------------------------------------------------------------------------------------------

FAKE_BGTOOL = """#!/usr/bin/env bash
echo "$*" >> "$CALLS"
case "$1" in
  unlock) exit "${UNLOCK_EXIT:-0}" ;;
  status) cat "$STATUS" ;;
  *) exit 99 ;;
esac
"""


def after_cancel(tmp_path: Path, live: str | None, weights: dict[str, int], unlock_exit: int = 0
                 ) -> tuple[int, str, list[str], str]:
    fake = tmp_path / "bgtool"
    fake.write_text(FAKE_BGTOOL)
    fake.chmod(0o755)
    status = tmp_path / "status.json"
    status.write_text(json.dumps({"alb_found": True, "live_color": live, "active_color_in_file": "green",
                                  "lock": {"held": False}, "listeners": [{"weights": weights}]}))
    summary = tmp_path / "summary.md"
    env = {**os.environ, "BGTOOL": str(fake), "CALLS": str(tmp_path / "calls"), "STATUS": str(status),
           "UNLOCK_EXIT": str(unlock_exit), "GITHUB_STEP_SUMMARY": str(summary)}
    done = subprocess.run([str(REPO / "scripts/after-cancel"), "prod"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, check=False)
    return done.returncode, done.stdout, (tmp_path / "calls").read_text().splitlines(), summary.read_text()


def test_after_cancel_frees_locks_and_reports(tmp_path: Path) -> None:
    code, out, calls, summary = after_cancel(tmp_path, "blue", {"blue": 100, "green": 0})
    assert code == 0, out
    assert calls == ["unlock prod --yes", "status prod --json"], "reads and unlocks; never moves traffic"
    assert "production: blue (the file says green)" in summary and "operation lock: free" in summary


def test_after_cancel_fails_on_split_traffic_naming_the_way_out(tmp_path: Path) -> None:
    code, out, calls, _ = after_cancel(tmp_path, None, {"blue": 50, "green": 50}, unlock_exit=1)
    assert code == 1
    assert calls == ["unlock prod --yes", "status prod --json"], "a split is a person's call: nothing moved"
    assert "::error title=bgtool::prod: production traffic is split" in out and "bgtool switch prod --to" in out
    assert "a lock was left in place" in out


# --------------------------------------------------------------------------------------------
# The release report: scripts/release-report with a stand-in bgtool, and the steps that attach it
# --------------------------------------------------------------------------------------------

FAKE_REPORTING_BGTOOL = """#!/usr/bin/env bash
echo "$*" >> "$CALLS"
case "$1" in
  history) cat "$HISTORY" ;;
  report) [ "${REPORT_EXIT:-0}" = 0 ] || exit "$REPORT_EXIT"; echo "<html>report of $2</html>" > "$4" ;;
  *) exit 99 ;;
esac
"""
SINCE = "2026-12-07T15:00:00+00:00"


def release_report(tmp_path: Path, records: list[tuple[str, str]], report_exit: int = 0
                   ) -> tuple[int, str, list[str], str]:
    """scripts/release-report web SINCE out, with a history of (operation, at) records."""
    fake = tmp_path / "bgtool"
    fake.write_text(FAKE_REPORTING_BGTOOL)
    fake.chmod(0o755)
    history = tmp_path / "history.json"
    history.write_text(json.dumps({"env": "web", "records": [{"operation": op, "result": "succeeded", "at": at}
                                                             for op, at in records]}))
    output = tmp_path / "github-output"
    env = {**os.environ, "BGTOOL": str(fake), "CALLS": str(tmp_path / "calls"), "HISTORY": str(history),
           "REPORT_EXIT": str(report_exit), "GITHUB_OUTPUT": str(output)}
    done = subprocess.run([str(REPO / "scripts/release-report"), "web", SINCE, "out"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, check=False)
    return done.returncode, done.stdout + done.stderr, (tmp_path / "calls").read_text().splitlines(), \
        output.read_text()


def test_a_run_that_switched_writes_the_report_of_that_switch(tmp_path: Path) -> None:
    code, out, calls, output = release_report(tmp_path, [("switch", "2026-12-07T14:00:00+00:00"),
                                                         ("deploy", "2026-12-07T15:00:30+00:00"),
                                                         ("switch", "2026-12-07T15:02:00+00:00")])
    assert code == 0, out
    assert calls == ["history web --json", "report web --out out/web-release-report.html"]
    assert output == "written=true\n"
    assert (tmp_path / "out/web-release-report.html").read_text() == "<html>report of web</html>\n"


@pytest.mark.parametrize("records", [[], [("switch", "2026-12-07T14:59:59+00:00"), ("apply", SINCE)]],
                         ids=["no history", "an earlier run's switch"])
def test_a_plain_apply_writes_no_report_and_does_not_fail(tmp_path: Path, records: list[tuple[str, str]]) -> None:
    code, out, calls, output = release_report(tmp_path, records)
    assert code == 0 and output == "written=false\n", out
    assert calls == ["history web --json"], "an earlier release is not attached as this run's"
    assert "made no switch, rollback or release" in out and not (tmp_path / "out").exists()


def test_a_report_that_cannot_be_written_is_a_warning_not_the_jobs_failure(tmp_path: Path) -> None:
    code, out, calls, output = release_report(tmp_path, [("release", SINCE)], report_exit=1)
    assert code == 0 and output == "written=false\n"
    assert calls[-1] == "report web --out out/web-release-report.html"
    assert "::warning title=bgtool report::web: the report of the release at " + SINCE in out
    assert not (tmp_path / "out/web-release-report.html").exists()


def test_apply_jobs_upload_the_release_report_and_link_it_from_the_summary() -> None:
    for job in ("apply", "apply-prod"):
        steps_ = load("apply.yml")["jobs"][job]["steps"]
        started = next(i for i, s in enumerate(steps_) if s.get("id") == "started")
        assert steps_[started + 1]["id"] == "apply", "the time is taken right before the apply"
        report = next(i for i, s in enumerate(steps_) if s.get("id") == "report")
        upload, link = steps_[report + 1], steps_[report + 2]
        assert steps_[report]["if"].startswith("always()"), "a failed switch's report is the one most read"
        assert steps_[report]["env"]["SINCE"] == "${{ steps.started.outputs.at }}"
        assert steps_[report]["run"].startswith("scripts/release-report ")
        assert upload["uses"].startswith("actions/upload-artifact@") and upload["id"] == "upload-report"
        assert upload["if"] == "always() && steps.report.outputs.written == 'true'"
        assert upload["with"]["name"].startswith("release-report-") and upload["with"]["path"] == "release-report/"
        assert link["env"]["REPORT_URL"] == "${{ steps.upload-report.outputs.artifact-url }}"
        assert "$REPORT_URL" in link["run"] and "$GITHUB_STEP_SUMMARY" in link["run"]
    assert (REPO / "scripts/release-report").stat().st_mode & 0o111, "executable"


def test_the_apply_start_is_noted_as_bgtool_writes_record_times_so_they_compare_as_text(tmp_path: Path) -> None:
    """scripts/release-report compares the two as strings: same layout, same zone."""
    from bgtool.records.history import now

    step = next(s for s in load("apply.yml")["jobs"]["apply"]["steps"] if s.get("id") == "started")
    output = tmp_path / "github-output"
    before = now()
    done = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "GITHUB_OUTPUT": str(output)}, check=False)
    after = now()
    assert done.returncode == 0, done.stderr
    noted = output.read_text().removeprefix("at=").strip()
    assert len(noted) == len(before) and noted[-6:] == before[-6:] == "+00:00"
    assert before <= noted <= after

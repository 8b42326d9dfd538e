"""scripts/write-back, as apply.yml's write-back job runs it: real git against a local bare remote.

GitHub's API is the one part that cannot run here: `gh` is a stand-in on PATH that records each call
and answers `pr list` with the pull request it opened before, as GitHub would.
"""

from __future__ import annotations

import base64
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import REPO, git

SCRIPT = REPO / "scripts" / "write-back"
BRANCH = "bgtool/write-back/prod"
FILE = "environments/prod.yaml"
ORIGINAL = "name: bgtool-prod\nactive_color: blue\ncolors:\n  blue: {version: 1.0.0}\n  green: {version: 1.0.0}\n"
RELEASED = ORIGINAL.replace("active_color: blue", "active_color: green")
RETIRED = RELEASED.replace("blue: {version: 1.0.0}", "blue: {retired: true, version: 1.0.0}")

STAND_IN_GH = """#!/usr/bin/env bash
# records every call; `pr list` answers with the pull request `pr create` opened
printf '%s\\0' "$@" >> "$GH_CALLS"; printf '\\n' >> "$GH_CALLS"
case "$1 $2" in
  "pr list") cat "$GH_OPEN" 2>/dev/null || true ;;
  "pr create") echo "https://github.example/acme/infra/pull/7" | tee "$GH_OPEN" ;;
esac
"""


@dataclass
class Repo:
    remote: Path
    checkout: Path
    applied: str
    tmp: Path

    def run(self, files: dict[str, str], mode: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
        """The job's step: the apply jobs' rewritten files in a folder, the script run from the checkout."""
        rewritten = self.tmp / "rewritten"
        rewritten.mkdir(exist_ok=True)
        for old in rewritten.iterdir():
            old.unlink()
        for name, text in files.items():
            (rewritten / name).write_text(text)
        environ = {**os.environ, "GH": str(self.tmp / "gh"), "GH_CALLS": str(self.tmp / "gh-calls"),
                   "GH_OPEN": str(self.tmp / "gh-open"), "GITHUB_REF_NAME": "main", "GITHUB_RUN_ID": "42",
                   "GITHUB_REPOSITORY": "acme/infra", "GITHUB_STEP_SUMMARY": str(self.tmp / "summary.md"), **env}
        environ.pop("BGTOOL_WRITE_BACK", None)
        if mode is not None:
            environ["BGTOOL_WRITE_BACK"] = mode
        return subprocess.run([str(SCRIPT), str(rewritten)], cwd=self.checkout, env=environ, capture_output=True,
                              text=True, check=False)

    def gh_calls(self) -> list[list[str]]:
        """Each call's arguments (the stand-in ends each with NUL and a call with NUL, newline)."""
        calls = self.tmp / "gh-calls"
        text = calls.read_text() if calls.exists() else ""
        return [part.split("\0") for part in text.split("\0\n") if part]

    def branches(self) -> list[str]:
        return git(self.remote, "branch", "--list", "--format=%(refname:short)").split()

    def remote_file(self, ref: str) -> str:
        return git(self.remote, "show", f"{ref}:{FILE}") + "\n"


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    remote, seed, checkout = tmp_path / "remote.git", tmp_path / "seed", tmp_path / "checkout"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(tmp_path, "init", "-q", "-b", "main", str(seed))
    (seed / "environments").mkdir()
    (seed / FILE).write_text(ORIGINAL)
    (seed / "environments/staging.yaml").write_text(ORIGINAL.replace("prod", "staging"))
    git(seed, "add", "-A")
    git(seed, "commit", "-qm", "first")
    git(seed, "push", "-q", str(remote), "main")
    git(tmp_path, "clone", "-q", str(remote), str(checkout))  # actions/checkout of the applied commit
    gh = tmp_path / "gh"
    gh.write_text(STAND_IN_GH)
    gh.chmod(0o755)
    return Repo(remote, checkout, git(checkout, "rev-parse", "HEAD"), tmp_path)


def test_a_release_is_proposed_as_one_commit_on_a_bot_branch_and_one_pull_request(repo: Repo) -> None:
    done = repo.run({"prod.yaml": RELEASED})
    assert done.returncode == 0, done.stderr
    assert repo.remote_file(BRANCH) == RELEASED
    assert repo.remote_file("main") == ORIGINAL, "the applied branch itself is left to the pull request"
    assert git(repo.remote, "rev-parse", f"{BRANCH}~1") == repo.applied
    assert git(repo.remote, "diff", "--name-only", "main", BRANCH).splitlines() == [FILE]
    subject, author = git(repo.remote, "log", "-1", "--format=%s%n%an <%ae>", BRANCH).splitlines()
    assert subject == "prod: what production now runs (active_color: blue → green)"
    assert author == "github-actions[bot] <41898282+github-actions[bot]@users.noreply.github.com>"
    [listed, created] = repo.gh_calls()
    assert listed[:2] == ["pr", "list"] and created[:2] == ["pr", "create"]
    options = dict(zip(created[2::2], created[3::2], strict=True))
    assert (options["--head"], options["--base"], options["--title"]) == (BRANCH, "main", subject)
    assert "+active_color: green" in options["--body"] and "refused as stale" in options["--body"]
    assert "::notice title=bgtool write-back::prod: https://github.example/acme/infra/pull/7" in done.stdout
    assert "https://github.example/acme/infra/pull/7" in (repo.tmp / "summary.md").read_text()


def test_a_newer_release_updates_the_open_pull_request(repo: Repo) -> None:
    assert repo.run({"prod.yaml": RELEASED}).returncode == 0
    done = repo.run({"prod.yaml": RETIRED})
    assert done.returncode == 0, done.stderr
    assert repo.remote_file(BRANCH) == RETIRED
    assert git(repo.remote, "rev-parse", f"{BRANCH}~1") == repo.applied, "still one commit on the applied one"
    assert [c[:2] for c in repo.gh_calls()] == [["pr", "list"], ["pr", "create"], ["pr", "list"]]


def test_nothing_rewritten_changes_nothing(repo: Repo) -> None:
    for files in ({}, {"prod.yaml": ORIGINAL}):
        done = repo.run(files)
        assert done.returncode == 0, done.stderr
        assert "nothing to write back" in done.stdout
    assert repo.branches() == ["main"] and repo.gh_calls() == []


def test_push_mode_lands_on_the_newest_main(repo: Repo) -> None:
    """A merge landed while the pipeline ran: the commit goes on top of it, nothing else of it changed."""
    other = repo.tmp / "other"
    git(repo.tmp, "clone", "-q", str(repo.remote), str(other))
    (other / "environments/staging.yaml").write_text("name: changed-meanwhile\n")
    git(other, "commit", "-qam", "meanwhile")
    git(other, "push", "-q", "origin", "main")
    done = repo.run({"prod.yaml": RELEASED}, mode="push")
    assert done.returncode == 0, done.stderr
    assert repo.remote_file("main") == RELEASED
    assert git(repo.remote, "log", "-2", "--format=%s", "main").splitlines() == [
        "prod: what production now runs (active_color: blue → green)", "meanwhile"]
    assert git(repo.remote, "show", "main:environments/staging.yaml") == "name: changed-meanwhile"
    assert repo.gh_calls() == [] and "pushed to main" in done.stdout


def test_a_refused_push_falls_back_to_the_pull_request(repo: Repo) -> None:
    hook = repo.remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\nwhile read old new ref; do [ \"$ref\" = refs/heads/main ] && exit 1; done\nexit 0\n")
    hook.chmod(0o755)
    done = repo.run({"prod.yaml": RELEASED}, mode="push")
    assert done.returncode == 0, done.stderr
    assert "the push to main was refused; proposing a pull request instead" in done.stdout
    assert repo.remote_file("main") == ORIGINAL and repo.remote_file(BRANCH) == RELEASED
    assert git(repo.remote, "rev-parse", f"{BRANCH}~1") == repo.applied
    assert [c[:2] for c in repo.gh_calls()] == [["pr", "list"], ["pr", "create"]]


def test_an_unknown_mode_is_refused_naming_the_allowed_ones(repo: Repo) -> None:
    done = repo.run({"prod.yaml": RELEASED}, mode="merge")
    assert done.returncode == 2
    assert "BGTOOL_WRITE_BACK is 'merge'; allowed: pull-request, push" in done.stderr
    assert repo.branches() == ["main"] and repo.gh_calls() == []


def test_a_file_for_no_environment_is_refused(repo: Repo) -> None:
    done = repo.run({"qa.yaml": RELEASED})
    assert done.returncode == 1 and "names no file in environments/" in done.stderr
    assert repo.gh_calls() == []


def test_the_token_is_never_written_to_git_config_nor_a_command_line(repo: Repo) -> None:
    """The job's token authenticates the push as an extra header (as actions/checkout sets it), passed
    in the environment of the script's git commands: not in .git/config, where a later step could read
    it, and not on a command line, where any process could."""
    token = "ghs_example"
    encoded = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    trace = repo.tmp / "trace"
    done = repo.run({"prod.yaml": RELEASED}, GH_TOKEN=token, GIT_TRACE=str(trace))
    assert done.returncode == 0, done.stderr
    for where in ((repo.checkout / ".git/config").read_text(), trace.read_text(), done.stdout, done.stderr):
        assert token not in where and encoded not in where
    assert "git push" in trace.read_text()

"""Is the environment file older than the last release that wrote it? Verdicts from facts, and from real git."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bgtool.config.schema import Color, load_environment
from bgtool.errors import BgtoolError
from bgtool.records import provenance as pv
from bgtool.records.history import Record
from tests.helpers import copy_project, edit_yaml

BLUE_LIVE = {"active_color": "blue", "versions": {"blue": "1.0.0", "green": "1.0.0"},
             "retired": {"blue": False, "green": False}}
GREEN_LIVE = {**BLUE_LIVE, "active_color": "green", "versions": {"blue": "1.0.0", "green": "1.1.0"}}
AT = "2026-03-01T12:00:00+00:00"


def switched(source: dict[str, object] | None = None, at: str = AT) -> Record:
    return Record("switch", "succeeded", "blue", "green", versions={"blue": "1.0.0", "green": "1.1.0"},
                  at=at, actor="ann", wrote=GREEN_LIVE, source=source or {})


def never(*_: object) -> pv.Origin:
    raise AssertionError("the origin must not be looked up when the file agrees")


# --------------------------------------------------------------------------------------------
# Pure verdicts
# --------------------------------------------------------------------------------------------


def test_file_that_agrees_with_the_last_release_is_used_without_looking_at_its_age() -> None:
    assert pv.stale_file_error("prod", GREEN_LIVE, [switched()], never, lambda a, b: True, action="x") is None
    assert pv.stale_file_error("prod", BLUE_LIVE, [], never, lambda a, b: True, action="x") is None


def test_only_records_that_wrote_the_file_count() -> None:
    first = switched()
    rolled_back = Record("switch", "rolled-back", "green", "blue", at="2026-03-02T00:00:00+00:00")
    assert pv.last_change([first, rolled_back]) is first
    assert pv.last_change([rolled_back]) is None


def test_stale_file_is_refused_naming_who_when_what_and_both_ways_forward() -> None:
    old = pv.Origin("a" * 40, datetime(2026, 2, 1, tzinfo=UTC))
    error = pv.stale_file_error("prod", BLUE_LIVE, [switched({"commit": "b" * 40})], lambda: old,
                                lambda a, b: True, action="move production traffic")
    assert error is not None
    text = str(error)
    assert "refusing to move production traffic" in text and "environments/prod.yaml predates" in text
    assert "ann ran switch (succeeded) at 2026-03-01T12:00:00+00:00" in text
    assert "active_color green" in text and "green 1.1.0" in text and "from commit bbbbbbbbbbbb" in text
    assert "the file says blue, production was set to green" in text
    assert "merge the file change" in text and "bgtool switch prod --to COLOR" in text


def test_file_changed_after_the_release_is_applied() -> None:
    newer = pv.Origin("a" * 40, datetime(2026, 2, 1, tzinfo=UTC))
    assert pv.stale_file_error("prod", BLUE_LIVE, [switched({"commit": "b" * 40})], lambda: newer,
                               lambda a, b: False, action="x") is None


def test_unknown_start_commit_falls_back_to_times() -> None:
    record = switched({"commit": "b" * 40})
    before = pv.Origin("a" * 40, datetime(2026, 3, 1, 11, 59, tzinfo=UTC))
    after = pv.Origin("a" * 40, datetime(2026, 3, 1, 12, 1, tzinfo=UTC))
    unknown = lambda a, b: None  # noqa: E731
    assert pv.file_is_newer(before, record, unknown) is False
    assert pv.file_is_newer(after, record, unknown) is True
    assert pv.file_is_newer(pv.Origin(None, before.time), switched(), unknown) is False


def test_shallow_history_cannot_decide_and_is_refused_with_the_fetch_hint() -> None:
    cut = pv.Origin("a" * 40, datetime(2026, 4, 1, tzinfo=UTC), unknown=True)
    error = pv.stale_file_error("prod", BLUE_LIVE, [switched()], lambda: cut, lambda a, b: None, action="deploy")
    assert error is not None and "fetch-depth: 0" in (error.hint or "")


def test_differences_name_each_release_owned_value() -> None:
    file = {**GREEN_LIVE, "versions": {"blue": "1.0.0", "green": "1.0.0"}, "retired": {"blue": True, "green": False}}
    assert pv.differences(file, GREEN_LIVE) == ["green version: the file says 1.0.0, the release wrote 1.1.0",
                                               "blue retired: the file says True, the release wrote False"]


def test_release_values_of_text_ignore_everything_else() -> None:
    text = "# comment\nactive_color: green  # live\ncolors:\n  blue: {version: 1.0.0, desired: 2}\n" \
           "  green:\n    version: 1.1.0\n    retired: false\nother: x\n"
    assert pv.release_values_of_text(text) == GREEN_LIVE
    assert pv.release_values_of_text("[not, a, mapping]") is None
    assert pv.release_values_of_text("a: [unclosed") is None


def test_records_ignore_keys_of_a_newer_writer() -> None:
    record = Record.from_dict({"operation": "switch", "result": "succeeded", "wrote": GREEN_LIVE, "future": 1})
    assert record.wrote == GREEN_LIVE and record.source == {}


# --------------------------------------------------------------------------------------------
# Against a real git repository
# --------------------------------------------------------------------------------------------


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = copy_project(tmp_path / "repo")
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "config", "user.name", "Ann Operator")
    git(root, "config", "user.email", "ann@example.com")
    git(root, "add", "environments")
    git(root, "commit", "--quiet", "-m", "environments")
    return root


def commit(repo: Path, message: str, *, when: datetime | None = None) -> str:
    env = {**os.environ}
    if when is not None:
        env["GIT_COMMITTER_DATE"] = env["GIT_AUTHOR_DATE"] = when.isoformat()
    subprocess.run(["git", "-C", str(repo), "commit", "--quiet", "-am", message], check=True, env=env,
                   capture_output=True)
    return git(repo, "rev-parse", "HEAD")


def verdict(repo: Path, record: Record) -> BgtoolError | None:
    path = repo / "environments/local.yaml"
    values = pv.release_values(load_environment(repo, "local").config)
    return pv.stale_file_error("local", values, [record], lambda: pv.origin(path), pv.is_ancestor(repo),
                               action="move production traffic")


def green_record(repo: Path) -> Record:
    """A switch to green run from the repository's HEAD, whose file change was never committed."""
    return switched({"commit": git(repo, "rev-parse", "HEAD"), "dirty": False}, at=pv.parse_time(AT).isoformat())


def test_a_later_commit_elsewhere_or_of_a_comment_does_not_make_the_file_newer(repo: Path) -> None:
    record = green_record(repo)
    (repo / "README").write_text("x\n")
    git(repo, "add", "README")
    commit(repo, "docs")
    assert verdict(repo, record) is not None
    edit_yaml(repo / "environments/local.yaml", "active_color: blue", "active_color: blue  # see runbook")
    commit(repo, "comment")
    assert verdict(repo, record) is not None
    edit_yaml(repo / "environments/local.yaml", "desired: 2", "desired: 3")  # capacity is not release-owned
    commit(repo, "capacity")
    error = verdict(repo, record)
    assert error is not None and "before that switch" in error.message


def test_a_merged_change_of_release_values_is_newer(repo: Path) -> None:
    record = green_record(repo)
    edit_yaml(repo / "environments/local.yaml", "active_color: blue", "active_color: green")
    commit(repo, "switch to green by pull request")  # agrees: nothing to decide
    assert verdict(repo, record) is None
    edit_yaml(repo / "environments/local.yaml", "active_color: green", "active_color: blue")
    commit(repo, "back to blue by pull request")
    assert verdict(repo, record) is None


def test_an_uncommitted_edit_is_judged_by_its_mtime(repo: Path) -> None:
    path = repo / "environments/local.yaml"
    edit_yaml(path, "active_color: blue", "active_color: green")
    later = switched({"commit": git(repo, "rev-parse", "HEAD")},
                     at=(datetime.now(UTC) + timedelta(hours=1)).isoformat(timespec="seconds"))
    assert pv.origin(path).commit is None
    earlier = {**later.__dict__, "at": "2020-01-01T00:00:00+00:00", "wrote": BLUE_LIVE}
    assert verdict(repo, Record(**earlier)) is None  # edited after the record: newer
    back = {**later.__dict__, "wrote": BLUE_LIVE}
    assert verdict(repo, Record(**back)) is not None  # the record is newer than the edit


def test_a_record_from_another_clone_is_compared_by_time(repo: Path) -> None:
    elsewhere = switched({"commit": "f" * 40}, at="2030-01-01T00:00:00+00:00")
    assert verdict(repo, elsewhere) is not None
    long_ago = switched({"commit": "f" * 40}, at="2001-01-01T00:00:00+00:00")
    assert verdict(repo, long_ago) is None


def test_shallow_clone_cannot_tell(repo: Path, tmp_path: Path) -> None:
    (repo / "README").write_text("x\n")
    git(repo, "add", "README")
    commit(repo, "docs")
    record = switched({"commit": "f" * 40}, at="2001-01-01T00:00:00+00:00")
    shallow = tmp_path / "shallow"
    subprocess.run(["git", "clone", "--quiet", "--depth", "1", f"file://{repo}", str(shallow)], check=True,
                   capture_output=True)
    assert pv.origin(shallow / "environments/local.yaml").unknown
    error = verdict(shallow, record)
    assert error is not None and "shallow clone" in error.message


def test_outside_git_the_mtime_decides(tmp_path: Path) -> None:
    root = copy_project(tmp_path)
    path = root / "environments/local.yaml"
    assert pv.git_root(path) is None and pv.source(path) == {} and pv.file_diff(path) is None
    assert verdict(root, switched(at="2001-01-01T00:00:00+00:00")) is None
    assert verdict(root, switched(at="2099-01-01T00:00:00+00:00")) is not None
    with pytest.raises(BgtoolError, match="not in a git checkout"):
        pv.require_git(path)


def test_one_line_diff_and_commit_of_that_file_only(repo: Path) -> None:
    path = repo / "environments/local.yaml"
    other = repo / "environments/staging.yaml"
    edit_yaml(other, "# ", "#  ")
    before = load_environment(repo, "local")
    edit_yaml(path, "active_color: blue", "active_color: green")
    assert pv.source(path) == {"commit": git(repo, "rev-parse", "HEAD"), "dirty": True}
    assert pv.file_diff(path) == ["-active_color: blue", "+active_color: green"]
    after = load_environment(repo, "local")
    message = pv.commit_message("local", "switch", before.config, after.config)
    v = after.config.colors
    assert message == f"local: switch blue → green (blue {v.blue.version}, green {v.green.version})"
    sha = pv.commit_file(path, message)
    assert git(repo, "log", "-1", "--format=%H %s") == f"{sha} {message}"
    assert git(repo, "show", "--name-only", "--format=", sha) == "environments/local.yaml"
    assert git(repo, "status", "--porcelain", "--", "environments") == "M environments/staging.yaml"
    assert pv.file_diff(path) == []


def test_deploy_message_names_the_version_change(repo: Path) -> None:
    before = load_environment(repo, "local").config
    after = before.model_copy(update={"colors": before.colors.model_copy(
        update={"green": before.colors.green.model_copy(update={"version": "9.9.9"})})})
    assert pv.commit_message("local", "deploy", before, after) == (
        f"local: deploy green {before.colors.green.version} → 9.9.9 (live {before.active_color.value})")
    assert after.colors.of(Color.GREEN).version == "9.9.9"


def test_a_record_says_what_was_written_and_where_from(repo: Path) -> None:
    config = load_environment(repo, "local").config
    start = {"commit": "c", "dirty": False}
    assert pv.stamp(config, start, wrote=False) == {"wrote": {}, "source": {"commit": "c", "dirty": False}}
    assert pv.stamp(config, start, wrote=True)["wrote"] == pv.release_values(config)  # same values, still written
    moved = config.model_copy(update={"active_color": Color.GREEN})
    assert pv.stamp(moved, start, wrote=True)["wrote"]["active_color"] == "green"


def test_a_file_git_does_not_track_yet_has_no_diff_but_can_be_committed(repo: Path) -> None:
    path = repo / "environments/qa.yaml"
    path.write_text((repo / "environments/local.yaml").read_text())
    assert pv.file_diff(path) == [] and pv.source(path)["dirty"] is True
    assert pv.origin(path).commit is None  # judged by its mtime
    sha = pv.commit_file(path, "qa: new environment")
    assert git(repo, "show", "--name-only", "--format=", sha) == "environments/qa.yaml"

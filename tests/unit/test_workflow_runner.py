"""The rehearsal's runner (tests/integration/workflows.py) reads expressions and runner files as GitHub does."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.integration.workflows import WORKFLOWS, Expression, order, parse_env_file

CONTEXT: dict[str, Any] = {
    "github": {"event_name": "push", "event": {"repository": {"fork": False}}},
    "needs": {"changes": {"result": "success", "outputs": {"envs": '["web"]', "prod": "false"}},
              "apply": {"result": "cancelled"}, "apply-prod": {"result": "skipped"}},
    "steps": {"apply": {"outcome": "cancelled"}},
    "vars": {},
}


def value(text: str, cancelled: bool = False) -> Any:
    status = {"always": True, "cancelled": cancelled, "success": not cancelled, "failure": False}
    return Expression(text, CONTEXT, status.__getitem__).value()


@pytest.mark.parametrize(("text", "expected"), [
    ("!github.event.repository.fork && github.event_name == 'push'", True),
    ("github.event_name == 'PUSH'", True),  # strings compare case-insensitively
    ("fromJSON(needs.changes.outputs.envs)", ["web"]),
    ("needs.changes.outputs.envs != '[]'", True),
    ("needs.apply-prod.result != 'skipped' || needs.apply.result", "cancelled"),  # || yields the value
    ("needs.nothing.outputs.x", None),
    ("vars.BGTOOL_WRITE_BACK || 'pull-request'", "pull-request"),
    ("always() && (needs.apply.result != 'skipped' || needs.apply-prod.result != 'skipped')", True),
    ("contains(fromJSON(needs.changes.outputs.envs), 'web') && !startsWith('abc', 'A')", False),
])
def test_expressions(text: str, expected: Any) -> None:
    assert value(text) == expected


def test_status_functions_follow_the_run() -> None:
    condition = "cancelled() && (steps.apply.outcome == 'cancelled' || steps.apply.outcome == 'failure')"
    assert value(condition, cancelled=True) is True and value(condition) is False


def test_a_malformed_expression_is_an_error() -> None:
    with pytest.raises(ValueError, match="cannot read"):
        value("needs.apply.result == \"double quotes\"")


def test_runner_files_hold_lines_and_blocks() -> None:
    text = "a=1\nb=x=y\nbody<<EOF\nline one\nline two\nEOF\nc=\n"
    assert parse_env_file(text) == {"a": "1", "b": "x=y", "body": "line one\nline two", "c": ""}


def test_jobs_run_after_what_they_need() -> None:
    jobs = yaml.safe_load((WORKFLOWS / "apply.yml").read_text())["jobs"]
    ran = order(jobs)
    for name, job in jobs.items():
        needs = job.get("needs", [])
        for need in [needs] if isinstance(needs, str) else needs:
            assert ran.index(need) < ran.index(name)

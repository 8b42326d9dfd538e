"""The longest test modules start first, so the suite ends when its longest path does, not later.

`--dist loadfile` hands whole modules to the workers in collection order. Ordered by how long each took
last time (tests/durations.json, measured by `make test` itself and written to build/test-durations.json
at the end of every run), the long integration modules start at once and the short ones fill the gaps,
instead of a long module starting last and running alone. Unknown modules keep their place after the
known ones; the tests of a module keep their file order (some rely on it).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from tests.helpers import REPO

DURATIONS = REPO / "tests" / "durations.json"
MEASURED = REPO / "build" / "test-durations.json"


def module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def known_durations(path: Path = DURATIONS) -> dict[str, float]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {k: float(v) for k, v in data.items() if isinstance(v, int | float)} if isinstance(data, dict) else {}


def longest_first(nodeids: list[str], durations: dict[str, float]) -> list[int]:
    """The order (indexes into NODEIDS) that puts the longest modules first; a stable sort, so the tests of
    one module stay together and in file order."""
    return sorted(range(len(nodeids)), key=lambda i: -durations.get(module_of(nodeids[i]), 0.0))


def reorder(items: list[pytest.Item]) -> None:
    order = longest_first([item.nodeid for item in items], known_durations())
    items[:] = [items[i] for i in order]


class Recorder:
    """Sums each module's setup, call and teardown seconds as the reports arrive (on the xdist controller)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds[module_of(report.nodeid)] += report.duration

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if not self.seconds or hasattr(session.config, "workerinput"):
            return
        MEASURED.parent.mkdir(parents=True, exist_ok=True)
        ordered = dict(sorted(((m, round(s, 1)) for m, s in self.seconds.items()), key=lambda kv: -kv[1]))
        MEASURED.write_text(json.dumps(ordered, indent=1) + "\n")

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        top = sorted(self.seconds.items(), key=lambda kv: -kv[1])[:8]
        if top:
            terminalreporter.write_line("longest modules: " + ", ".join(f"{Path(m).stem} {s:.0f}s" for m, s in top)
                                        + f" (all in {MEASURED.relative_to(REPO)})")

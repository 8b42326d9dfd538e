"""The schedule of the suite: longest modules first, a module's tests together and in file order."""

from __future__ import annotations

import json
from pathlib import Path

from tests.schedule import known_durations, longest_first


def test_longest_modules_first_and_each_module_in_file_order() -> None:
    ids = ["tests/unit/a.py::t1", "tests/unit/a.py::t2", "tests/integration/b.py::t1",
           "tests/integration/c.py::t1", "tests/integration/c.py::t2", "tests/unit/d.py::t1"]
    order = [ids[i] for i in longest_first(ids, {"tests/integration/c.py": 300.0, "tests/integration/b.py": 90.0})]
    assert order == ["tests/integration/c.py::t1", "tests/integration/c.py::t2", "tests/integration/b.py::t1",
                     "tests/unit/a.py::t1", "tests/unit/a.py::t2", "tests/unit/d.py::t1"]


def test_a_missing_or_broken_table_keeps_the_collection_order(tmp_path: Path) -> None:
    assert known_durations(tmp_path / "absent.json") == {}
    (tmp_path / "broken.json").write_text("{not json")
    assert known_durations(tmp_path / "broken.json") == {}
    (tmp_path / "odd.json").write_text(json.dumps({"a.py": 3, "b.py": "slow", "c.py": 1.5}))
    assert known_durations(tmp_path / "odd.json") == {"a.py": 3.0, "c.py": 1.5}

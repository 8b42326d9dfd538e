"""Tests run against copies that carry the committed release values, whatever a demo did to the checkout."""

from __future__ import annotations

from pathlib import Path

from bgtool.config import envfile
from bgtool.config.schema import Color, load_environment
from bgtool.records.provenance import release_values, release_values_of_text
from tests.conftest import environments_digest
from tests.helpers import _as_committed, _committed_text, basic_gate, copy_project, edit_yaml


def test_copies_get_the_committed_release_values_and_keep_other_edits(tmp_path: Path) -> None:
    root = copy_project(tmp_path)
    committed = release_values_of_text(_committed_text("local.yaml") or "")
    assert committed is not None, "environments/local.yaml is committed"
    loaded = load_environment(root, "local")
    assert release_values(loaded.config) == committed
    # what `make demo` leaves in the checkout: a deploy and a switch, plus a deliberate edit of another key
    envfile.set_version(loaded, Color.GREEN, "7.7.7")
    envfile.set_active_color(loaded, Color.GREEN)
    envfile.set_retired(loaded, Color.BLUE, True)
    edit_yaml(root / "environments/local.yaml", "retention_hours: 24", "retention_hours: 12")
    _as_committed(root, root / "environments/local.yaml")
    config = load_environment(root, "local").config
    assert release_values(config) == committed
    assert config.retention_hours == 12


def test_the_digest_sees_any_change_under_environments(tmp_path: Path) -> None:
    root = copy_project(tmp_path)
    before = environments_digest(root)
    assert set(before) >= {"local.yaml", "staging.yaml", "prod.yaml"}
    edit_yaml(root / "environments/local.yaml", "active_color: blue", "active_color: green")
    (root / "environments/new.yaml").write_text("x: 1\n")
    after = environments_digest(root)
    assert {n for n in before.keys() | after.keys() if before.get(n) != after.get(n)} == {"local.yaml", "new.yaml"}


def test_basic_gate_keeps_the_rest_of_the_file(tmp_path: Path) -> None:
    root = copy_project(tmp_path)
    before = load_environment(root, "local").config
    basic_gate(root / "environments/local.yaml")
    after = load_environment(root, "local").config
    assert after.gate.smoke == [] and after.gate.host_checks is None and after.gate.min_healthy == 1
    assert after.model_copy(update={"gate": before.gate}) == before

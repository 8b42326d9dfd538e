"""The verdict: contract migrations wait until no version that may serve predates them."""

from __future__ import annotations

from pathlib import Path

import pytest

from bgtool.database.check import predating
from bgtool.database.guard import check_contract_versions, judge, serving_versions
from bgtool.database.ledger import Applied
from bgtool.database.migrations import Migration, MigrationError, discover


def migrations(tmp_path: Path, files: dict[str, str]) -> list[Migration]:
    directory = tmp_path / "m"
    directory.mkdir()
    for name, text in files.items():
        (directory / name).write_text(text)
    return discover(directory, "db/m", "postgres")


DROP = "-- bgtool:contract-after 1.1.0\nALTER TABLE users DROP COLUMN nickname;\n"
ADD = "ALTER TABLE users ADD COLUMN display_name text;\n"


def test_expand_migrations_pass_whatever_serves(tmp_path: Path) -> None:
    verdict = judge(migrations(tmp_path, {"V1__add.sql": ADD}), serving_versions("blue", "0.1", "green", "0.2"))
    assert verdict.ok


def test_contract_is_refused_while_the_live_color_predates_it(tmp_path: Path) -> None:
    verdict = judge(migrations(tmp_path, {"V2__drop.sql": DROP}), serving_versions("blue", "1.0.0", "green", "1.2.0"))
    [blocker] = verdict.blockers
    assert blocker.migration == "db/m/V2__drop.sql" and blocker.line == 2
    assert blocker.statement == "ALTER TABLE users DROP COLUMN nickname"
    assert blocker.needs_old_shape == "live blue 1.0.0 (predates 1.1.0)"
    assert "old code still reads or writes this column" in blocker.why
    assert "contract-after" in blocker.steps
    assert "still needs the old shape: live blue 1.0.0" in blocker.explain()


def test_contract_is_refused_when_the_new_idle_version_predates_it(tmp_path: Path) -> None:
    verdict = judge(migrations(tmp_path, {"V2__drop.sql": DROP}), serving_versions("blue", "1.1.0", "green", "1.0.5"))
    assert [b.needs_old_shape for b in verdict.blockers] == ["idle and rollback target green 1.0.5 (predates 1.1.0)"]


def test_contract_runs_once_every_serving_version_is_at_or_past_it(tmp_path: Path) -> None:
    verdict = judge(migrations(tmp_path, {"V2__drop.sql": DROP}), serving_versions("blue", "1.1.0", "green", "1.10.0"))
    assert verdict.ok


def test_contract_without_header_is_refused_for_everyone(tmp_path: Path) -> None:
    verdict = judge(migrations(tmp_path, {"V2__drop.sql": "ALTER TABLE users DROP COLUMN nickname;"}),
                    serving_versions("blue", "9.0", "green", "9.1"))
    [blocker] = verdict.blockers
    assert "declares no '-- bgtool:contract-after VERSION'" in blocker.needs_old_shape


def test_a_version_that_is_not_comparable_blocks(tmp_path: Path) -> None:
    serving = serving_versions("blue", "main-abc123", "green", "2.0")
    verdict = judge(migrations(tmp_path, {"V2__drop.sql": DROP}), serving)
    assert not verdict.ok
    assert "cannot be compared with 1.1.0" in verdict.blockers[0].needs_old_shape


def test_contract_after_must_name_a_known_version(tmp_path: Path) -> None:
    ms = migrations(tmp_path, {"V2__drop.sql": DROP})
    check_contract_versions(ms, {"1.0.0", "1.1.0"})
    check_contract_versions(ms, {"1.1"})  # the same version, written differently
    with pytest.raises(MigrationError) as err:
        check_contract_versions(ms, {"1.0.0", "1.2.0"})
    assert err.value.where == "db/m/V2__drop.sql:1"
    assert "known: 1.0.0, 1.2.0" in err.value.message


def ran(contract_after: str | None) -> Applied:
    return Applied("3", "db/m/V3__drop.sql", "x", "contract" if contract_after else "expand", contract_after,
                   "1.2.0", "2026-01-01T00:00:00+00:00")


def test_predating_lists_contracts_that_ran_after_a_version() -> None:
    applied = [ran("1.1.0"), ran(None)]
    assert [a.contract_after for a in predating(applied, "1.0.9")] == ["1.1.0"]
    assert predating(applied, "1.1.0") == []
    assert len(predating(applied, "not-a-version")) == 1

"""Migration files: names, order, the contract-after header, and which ones are pending."""

from __future__ import annotations

from pathlib import Path

import pytest

from bgtool.database.ledger import Applied, pending
from bgtool.database.migrations import MigrationError, discover, parse_version
from tests.helpers import REPO


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def found(tmp_path: Path, files: dict[str, str], dialect: str = "postgres") -> list[str]:
    return [m.label for m in discover(write(tmp_path / "m", files), "db/m", dialect)]


def test_versions_compare_as_numbers_not_as_names(tmp_path: Path) -> None:
    files = {"V10__c.sql": "CREATE TABLE c (a int);", "V9__b.sql": "CREATE TABLE b (a int);",
             "V1.2__a.sql": "CREATE TABLE a (a int);", "V1_10__z.sql": "CREATE TABLE z (a int);"}
    assert found(tmp_path, files) == ["1.2", "1.10", "9", "10"]


def test_golang_migrate_and_plain_names_down_and_undo_files_skipped(tmp_path: Path) -> None:
    files = {"0002_b.up.sql": "CREATE TABLE b (a int);", "0002_b.down.sql": "DROP TABLE b;",
             "0003_c.sql": "CREATE TABLE c (a int);", "U3__undo.sql": "DROP TABLE c;", "README.md": "notes"}
    assert found(tmp_path, files) == ["2", "3"]


def test_a_file_without_version_prefix_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match=r"db/m/add_column\.sql: file name has no version prefix"):
        found(tmp_path, {"add_column.sql": "CREATE TABLE a (a int);"})


@pytest.mark.parametrize("twin", ["0003_again.sql", "V3.0__again.sql"])
def test_a_duplicated_version_is_an_error(tmp_path: Path, twin: str) -> None:
    with pytest.raises(MigrationError, match="version 3 is also used by"):
        found(tmp_path, {"V3__first.sql": "CREATE TABLE a (a int);", twin: "CREATE TABLE b (a int);"})


def test_a_statement_that_does_not_parse_is_reported_with_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(MigrationError) as err:
        found(tmp_path, {"V1__x.sql": "CREATE TABLE a (a int);\nALTER TABLE a ADD COLUMN (;\n"})
    assert err.value.message.startswith("db/m/V1__x.sql:2: does not parse as postgres SQL")
    assert "Nothing was run" in (err.value.hint or "")


def test_contract_after_header_is_read_with_its_line(tmp_path: Path) -> None:
    directory = write(tmp_path / "m", {"V2__drop.sql": "-- drop the old column\n-- bgtool:contract-after 1.4.0\n"
                                                       "ALTER TABLE t DROP COLUMN old;\n"})
    [migration] = discover(directory, "db/m", "postgres")
    assert (migration.contract_after, migration.contract_after_line, migration.kind) == ("1.4.0", 2, "contract")


@pytest.mark.parametrize(("header", "message"), [
    ("-- bgtool:contract_after 1.4.0", "unknown directive 'bgtool:contract_after'"),
    ("-- bgtool:contract-after", "needs one application version"),
    ("-- bgtool:contract-after 1.4.0 and later", "needs one application version"),
])
def test_bad_headers_are_reported_with_their_line(tmp_path: Path, header: str, message: str) -> None:
    with pytest.raises(MigrationError, match=message) as err:
        found(tmp_path, {"V2__x.sql": f"-- intro\n{header}\nALTER TABLE t DROP COLUMN old;\n"})
    assert err.value.where == "db/m/V2__x.sql:2"


def test_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match="does not exist"):
        discover(tmp_path / "nope", "nope", "postgres")


def test_empty_migration_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match="no SQL statement"):
        found(tmp_path, {"V1__x.sql": "-- nothing yet\n"})


def applied(migration_version: str, checksum: str) -> Applied:
    return Applied(migration_version, "f", checksum, "expand", None, "1.0.0", "2026-01-01T00:00:00+00:00")


def test_pending_is_what_did_not_run(tmp_path: Path) -> None:
    ms = discover(write(tmp_path / "m", {"V1__a.sql": "CREATE TABLE a (a int);",
                                         "V2__b.sql": "CREATE TABLE b (a int);"}), "m", "postgres")
    assert [m.label for m in pending(ms, [applied("1", ms[0].checksum)])] == ["2"]


def test_a_new_migration_older_than_one_that_ran_is_out_of_order(tmp_path: Path) -> None:
    ms = discover(write(tmp_path / "m", {"V1__a.sql": "CREATE TABLE a (a int);",
                                         "V2__b.sql": "CREATE TABLE b (a int);"}), "m", "postgres")
    with pytest.raises(MigrationError, match="version 1 is older than version 2, which already ran"):
        pending(ms, [applied("2", ms[1].checksum)])


def test_a_migration_edited_after_it_ran_is_an_error(tmp_path: Path) -> None:
    ms = discover(write(tmp_path / "m", {"V1__a.sql": "CREATE TABLE a (a int);"}), "m", "postgres")
    with pytest.raises(MigrationError, match="checksum changed"):
        pending(ms, [applied("1", "0" * 64)])


def test_parse_version_ignores_zero_padding_and_trailing_zeros() -> None:
    assert parse_version("0003") == parse_version("3") == parse_version("3.0") == (3,)
    assert parse_version("1_2") == (1, 2)


def test_the_example_migrations_classify() -> None:
    ms = discover(REPO / "db/migrations", "db/migrations", "sqlite")
    assert [(m.label, m.kind, m.contract_after) for m in ms] == [
        ("1", "expand", None), ("2", "expand", None), ("3", "contract", "1.0.0")]

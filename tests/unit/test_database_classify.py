"""Expand or contract, from sqlglot's syntax tree, in the configured dialect."""

from __future__ import annotations

import pytest

from bgtool.database.classify import CONTRACT, EXPAND, SqlError, known_dialect, parse_statements


def one(sql: str, dialect: str = "postgres") -> tuple[str, str]:
    [statement] = parse_statements(sql, dialect)
    return statement.kind, statement.rule


@pytest.mark.parametrize(("sql", "kind", "rule"), [
    ("CREATE TABLE t (id int primary key, name text not null)", EXPAND, "create-table"),
    ("ALTER TABLE t ADD COLUMN c text", EXPAND, "add-column"),
    ("ALTER TABLE t ADD COLUMN c text NULL", EXPAND, "add-column"),
    ("ALTER TABLE t ADD COLUMN c text NOT NULL DEFAULT 'x'", EXPAND, "add-column"),
    ("ALTER TABLE t ADD COLUMN c text NOT NULL", CONTRACT, "add-not-null-column"),
    ("ALTER TABLE t DROP COLUMN c", CONTRACT, "drop-column"),
    ("ALTER TABLE t RENAME COLUMN a TO b", CONTRACT, "rename-column"),
    ("ALTER TABLE t RENAME TO u", CONTRACT, "rename-table"),
    ("ALTER TABLE t ALTER COLUMN c TYPE varchar(10)", CONTRACT, "change-type"),
    ("ALTER TABLE t ALTER COLUMN c SET NOT NULL", CONTRACT, "set-not-null"),
    ("ALTER TABLE t ALTER COLUMN c DROP NOT NULL", EXPAND, "drop-not-null"),
    ("ALTER TABLE t ALTER COLUMN c DROP DEFAULT", CONTRACT, "drop-default"),
    ("ALTER TABLE t ALTER COLUMN c SET DEFAULT 1", EXPAND, "set-default"),
    ("CREATE INDEX CONCURRENTLY i ON t (c)", EXPAND, "create-index-concurrently"),
    ("CREATE INDEX i ON t (c)", EXPAND, "create-index"),
    ("CREATE UNIQUE INDEX i ON t (c)", CONTRACT, "add-constraint"),
    ("ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0)", CONTRACT, "add-constraint"),
    ("DROP INDEX i", CONTRACT, "drop-object"),
    ("DROP TABLE t", CONTRACT, "drop-table"),
    ("ALTER TYPE mood ADD VALUE 'happy'", EXPAND, "add-enum-value"),
    ("CREATE TYPE mood AS ENUM ('a', 'b')", EXPAND, "create-object"),
    ("CREATE OR REPLACE VIEW v AS SELECT 1", CONTRACT, "replace-object"),
    ("UPDATE t SET a = 1 WHERE a IS NULL", EXPAND, "backfill"),
    ("DELETE FROM t", CONTRACT, "delete-data"),
    ("TRUNCATE t", CONTRACT, "delete-data"),
    ("VACUUM t", CONTRACT, "unrecognised"),
    ("ALTER TYPE mood RENAME VALUE 'a' TO 'b'", CONTRACT, "unrecognised"),
])
def test_postgres_statements_are_classified(sql: str, kind: str, rule: str) -> None:
    assert one(sql) == (kind, rule)


@pytest.mark.parametrize(("sql", "dialect", "kind", "rule"), [
    ("ALTER TABLE t MODIFY COLUMN c varchar(10)", "mysql", CONTRACT, "change-type"),
    ("ALTER TABLE t CHANGE a b int", "mysql", CONTRACT, "change-type"),
    ("ALTER TABLE t ADD INDEX i (c)", "mysql", EXPAND, "create-index"),
    ("ALTER TABLE t ADD COLUMN c TEXT DEFAULT 'en'", "sqlite", EXPAND, "add-column"),
    ("ALTER TABLE t DROP COLUMN c", "sqlite", CONTRACT, "drop-column"),
])
def test_other_dialects(sql: str, dialect: str, kind: str, rule: str) -> None:
    assert one(sql, dialect) == (kind, rule)


def test_the_least_safe_action_of_one_alter_wins() -> None:
    assert one("ALTER TABLE t ADD COLUMN c text, DROP COLUMN d") == (CONTRACT, "drop-column")


def test_statements_keep_their_line_and_exact_text() -> None:
    text = ("-- header\nCREATE TABLE t (a int);\n\nINSERT INTO t VALUES ('two  spaces');\n"
            "ALTER TABLE t\n  DROP COLUMN a;\n")
    statements = parse_statements(text, "postgres")
    assert [s.line for s in statements] == [2, 4, 5]
    assert statements[1].raw == "INSERT INTO t VALUES ('two  spaces')"  # literals are executed as written
    assert statements[2].sql == "ALTER TABLE t DROP COLUMN a"
    assert statements[2].subject == "column t.a"


def test_a_statement_that_does_not_parse_names_its_line() -> None:
    with pytest.raises(SqlError) as err:
        parse_statements("CREATE TABLE t (a int);\n\nALTR TABLE t ADD b int;\n", "postgres")
    assert err.value.line == 3


def test_an_unterminated_string_does_not_tokenize() -> None:
    with pytest.raises(SqlError, match="does not tokenize"):
        parse_statements("INSERT INTO t VALUES ('oops);", "postgres")


def test_dialect_names_come_from_sqlglot() -> None:
    assert known_dialect("postgres") and known_dialect("sqlite") and not known_dialect("postgress")

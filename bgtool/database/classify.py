"""Expand or contract: what one SQL statement does to the code that is already running.

Statements are parsed with sqlglot in the configured dialect (no pattern matching over SQL), and
classified from the syntax tree. The rule of the field is expand/contract: adding is safe while old
code serves, removing or reshaping is not. Whatever the parser cannot place with certainty is a
contract with the reason "unrecognised", because a false "safe" costs an outage and a false
"unsafe" costs one header line.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ErrorLevel, ParseError, TokenError
from sqlglot.tokens import Token, TokenType

EXPAND = "expand"
CONTRACT = "contract"


@dataclass(frozen=True)
class Rule:
    kind: str
    why: str
    steps: str = ""


RULES: dict[str, Rule] = {
    "create-table": Rule(EXPAND, "a new table: running code does not know it exists"),
    "create-object": Rule(EXPAND, "a new object (view, type, sequence, function): running code does not use it"),
    "add-column": Rule(EXPAND, "a nullable column, or one with a default: old code's inserts still succeed"),
    "create-index-concurrently": Rule(EXPAND, "an index built without blocking writes"),
    "create-index": Rule(EXPAND, "a new index: old code's queries still work (on PostgreSQL prefer "
                                 "CREATE INDEX CONCURRENTLY, which does not block writes while it builds)"),
    "add-enum-value": Rule(EXPAND, "a new enum value: every value old code writes is still valid"),
    "set-default": Rule(EXPAND, "a new default only fills values old code does not write"),
    "drop-not-null": Rule(EXPAND, "relaxing NOT NULL accepts everything old code writes"),
    "backfill": Rule(EXPAND, "data added or backfilled; the shape old code reads is unchanged"),
    "no-schema-change": Rule(EXPAND, "changes no table shape (transaction control, comment, grant)"),
    "drop-column": Rule(
        CONTRACT, "old code still reads or writes this column; its queries fail once it is gone",
        "1) release code that no longer reads or writes the column; 2) once no serving or rollback version "
        "predates that release, drop it in a migration headed '-- bgtool:contract-after <that version>'."),
    "rename-column": Rule(
        CONTRACT, "old code still uses the old name; a rename is a drop for every running version",
        "expand: add the new column (nullable), write both, backfill; release code that reads the new one; "
        "contract: drop the old column in a migration headed '-- bgtool:contract-after <that version>'."),
    "change-type": Rule(
        CONTRACT, "the type changes, and whether it narrows cannot be told from the statement; old code may "
                  "write values the new type rejects or read values it cannot handle",
        "expand: add a column of the new type, write both, backfill; release code that reads it; contract: "
        "drop the old column in a migration headed '-- bgtool:contract-after <that version>'."),
    "add-not-null-column": Rule(
        CONTRACT, "a NOT NULL column without a default: old code's inserts do not set it and fail",
        "expand: add the column nullable or WITH a DEFAULT, backfill, release code that always writes it; "
        "contract: SET NOT NULL in a migration headed '-- bgtool:contract-after <that version>'."),
    "set-not-null": Rule(
        CONTRACT, "NOT NULL now: old code that leaves the column empty fails on insert or update",
        "release code that always writes the column, backfill the NULLs, then SET NOT NULL in a migration "
        "headed '-- bgtool:contract-after <that version>'."),
    "drop-default": Rule(
        CONTRACT, "old code relies on the default when it omits the column",
        "release code that always writes the column, then drop the default in a migration headed "
        "'-- bgtool:contract-after <that version>'."),
    "drop-table": Rule(
        CONTRACT, "old code still queries this table",
        "release code that no longer uses it, then drop it in a migration headed "
        "'-- bgtool:contract-after <that version>'."),
    "rename-table": Rule(
        CONTRACT, "old code still uses the old table name",
        "expand: create the new table (or a view with the new name), write both, backfill, release code "
        "that reads the new one; contract: drop the old table with '-- bgtool:contract-after <that version>'."),
    "drop-object": Rule(
        CONTRACT, "old code may still use what is dropped (index for ON CONFLICT, view, type, constraint)",
        "release code that no longer needs it, then drop it in a migration headed "
        "'-- bgtool:contract-after <that version>'."),
    "add-constraint": Rule(
        CONTRACT, "a new constraint or unique index narrows what may be written; old code's writes may be "
                  "rejected",
        "release code that never writes violating rows, clean the data up, then add the constraint in a "
        "migration headed '-- bgtool:contract-after <that version>' (on PostgreSQL: NOT VALID, then VALIDATE)."),
    "replace-object": Rule(
        CONTRACT, "replacing a view or object changes the shape old code reads",
        "create the new shape under a new name, release code that uses it, then replace or drop the old "
        "one with '-- bgtool:contract-after <that version>'."),
    "delete-data": Rule(
        CONTRACT, "rows old code may still read are removed",
        "release code that no longer needs those rows, then delete them in a migration headed "
        "'-- bgtool:contract-after <that version>'."),
    "unrecognised": Rule(
        CONTRACT, "unrecognised: bgtool cannot tell whether running code survives this statement",
        "split it into statements bgtool recognises, or, if it is safe for every version from some release "
        "on, head the file with '-- bgtool:contract-after <that version>'."),
}


@dataclass(frozen=True)
class Statement:
    """One parsed statement of a migration file and its verdict."""

    line: int
    sql: str  # one line, for people
    rule: str
    subject: str
    raw: str = field(default="", repr=False, compare=False)  # exactly as written, to execute

    @property
    def kind(self) -> str:
        return RULES[self.rule].kind

    @property
    def transaction_control(self) -> bool:
        """BEGIN/COMMIT written in the file: the runner wraps each migration in its own transaction."""
        return self.rule == "no-schema-change" and self.subject in ("transaction", "commit")

    @property
    def why(self) -> str:
        return RULES[self.rule].why

    @property
    def steps(self) -> str:
        return RULES[self.rule].steps

    def to_dict(self) -> dict[str, object]:
        return {"line": self.line, "sql": self.sql, "kind": self.kind, "rule": self.rule,
                "subject": self.subject, "why": self.why}


class SqlError(Exception):
    """The text does not tokenize or parse in the dialect; line is 1-based within the text."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def known_dialect(name: str) -> bool:
    try:
        Dialect.get_or_raise(name)
    except ValueError:
        return False
    return True


def parse_statements(text: str, dialect: str) -> list[Statement]:
    """Parse every statement of TEXT and classify it; SqlError names the line that does not parse."""
    d = Dialect.get_or_raise(dialect)
    try:
        tokens = d.tokenize(text)
    except TokenError as exc:
        raise SqlError(None, f"does not tokenize as {dialect} SQL: {exc}") from None
    out = []
    for chunk in _chunks(tokens):
        with _quiet_fallback():
            try:
                trees = d.parser(error_level=ErrorLevel.RAISE).parse(chunk, text)
            except ParseError as exc:
                first = exc.errors[0] if exc.errors else {}
                line = first.get("line") or chunk[0].line
                raise SqlError(line, f"does not parse as {dialect} SQL: {first.get('description', exc)}") from None
        tree = trees[0] if trees else None
        if tree is None:
            continue
        sql = text[chunk[0].start:chunk[-1].end + 1]
        rule, subject = classify(tree, chunk)
        out.append(Statement(chunk[0].line, " ".join(sql.split()), rule, subject, sql))
    return out


def _chunks(tokens: list[Token]) -> Iterator[list[Token]]:
    chunk: list[Token] = []
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            if chunk:
                yield chunk
            chunk = []
        else:
            chunk.append(token)
    if chunk:
        yield chunk


@contextmanager
def _quiet_fallback() -> Iterator[None]:
    """sqlglot logs a warning when it falls back to an opaque Command; that case is reported as data."""
    logger = logging.getLogger("sqlglot")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def classify(tree: exp.Expression, tokens: list[Token]) -> tuple[str, str]:
    """(rule, subject) of one statement; the least safe action of a multi-action ALTER wins."""
    if isinstance(tree, exp.Alter):
        return _alter(tree)
    if isinstance(tree, exp.Create):
        return _create(tree)
    if isinstance(tree, exp.Drop):
        kind = str(tree.args.get("kind") or "").upper()
        names = ", ".join(t.sql() for t in tree.args.get("tables") or []) or tree.sql()
        return ("drop-table" if kind == "TABLE" else "drop-object"), f"{kind.lower() or 'object'} {names}"
    if isinstance(tree, exp.Insert | exp.Update):
        return "backfill", _table_name(tree)
    if isinstance(tree, exp.Delete | exp.TruncateTable):
        return "delete-data", _table_name(tree)
    if isinstance(tree, exp.Transaction | exp.Commit | exp.Comment | exp.Grant | exp.Select):
        return "no-schema-change", type(tree).__name__.lower()
    if isinstance(tree, exp.Command) and _is_add_enum_value(tokens):
        return "add-enum-value", f"type {tokens[2].text}"
    return "unrecognised", type(tree).__name__.lower()


def _is_add_enum_value(tokens: list[Token]) -> bool:
    """PostgreSQL's ALTER TYPE name ADD VALUE ..., which sqlglot keeps as an opaque command."""
    words = [t.text.upper() for t in tokens]
    return len(words) >= 6 and words[:2] == ["ALTER", "TYPE"] and words[3:5] == ["ADD", "VALUE"]


def _table_name(tree: exp.Expression) -> str:
    table = tree.find(exp.Table)
    return f"table {table.sql()}" if table is not None else type(tree).__name__.lower()


_SEVERITY = {name: (rule.kind == CONTRACT, i) for i, (name, rule) in enumerate(RULES.items())}


def _alter(tree: exp.Alter) -> tuple[str, str]:
    if str(tree.args.get("kind") or "").upper() != "TABLE":
        return "unrecognised", f"alter {str(tree.args.get('kind') or '').lower()}"
    table = tree.this.sql() if tree.this is not None else "?"
    verdicts = [_alter_action(action, table) for action in tree.args.get("actions") or []]
    if not verdicts:
        return "unrecognised", f"alter table {table}"
    return max(verdicts, key=lambda v: _SEVERITY[v[0]])


def _alter_action(action: exp.Expression, table: str) -> tuple[str, str]:
    if isinstance(action, exp.ColumnDef):
        return _added_column(action), f"column {table}.{action.name}"
    if isinstance(action, exp.Drop):
        kind = str(action.args.get("kind") or "").upper()
        names = ", ".join(t.sql() for t in action.args.get("tables") or [])
        return ("drop-column" if kind == "COLUMN" else "drop-object"), f"{kind.lower()} {table}.{names}"
    if isinstance(action, exp.RenameColumn):
        return "rename-column", f"column {table}.{action.this.sql()} -> {action.args['to'].sql()}"
    if isinstance(action, exp.AlterRename):
        return "rename-table", f"table {table} -> {action.this.sql()}"
    if isinstance(action, exp.AlterColumn):
        return _altered_column(action), f"column {table}.{action.name}"
    if isinstance(action, exp.ModifyColumn):
        return "change-type", f"column {table}.{action.this.name}"
    if isinstance(action, exp.AddConstraint):
        plain_index = all(isinstance(c, exp.IndexColumnConstraint) and not c.args.get("index_type")
                          for c in action.expressions)
        return ("create-index" if plain_index else "add-constraint"), f"table {table}"
    return "unrecognised", f"alter table {table}"


def _added_column(column: exp.ColumnDef) -> str:
    kinds = [c.args.get("kind") for c in column.constraints]
    has_default = any(isinstance(k, exp.DefaultColumnConstraint) for k in kinds)
    required = any((isinstance(k, exp.NotNullColumnConstraint) and not k.args.get("allow_null"))
                   or isinstance(k, exp.PrimaryKeyColumnConstraint) for k in kinds)
    return "add-not-null-column" if required and not has_default else "add-column"


def _altered_column(action: exp.AlterColumn) -> str:
    args = action.args
    if args.get("dtype") is not None:
        return "change-type"
    if args.get("allow_null") is False:
        return "set-not-null"
    if args.get("drop") and args.get("allow_null") is True:
        return "drop-not-null"
    if args.get("drop"):
        return "drop-default"
    if args.get("default") is not None:
        return "set-default"
    return "unrecognised"


def _create(tree: exp.Create) -> tuple[str, str]:
    kind = str(tree.args.get("kind") or "").upper()
    if tree.args.get("replace"):
        return "replace-object", f"{kind.lower()} {tree.this.sql() if tree.this else ''}".strip()
    if kind == "TABLE":
        return "create-table", f"table {tree.find(exp.Table).sql() if tree.find(exp.Table) else '?'}"
    if kind == "INDEX":
        index = tree.this
        table = index.args.get("table").sql() if isinstance(index, exp.Index) and index.args.get("table") else "?"
        subject = f"index {index.name if index is not None else '?'} on {table}"
        if tree.args.get("unique"):
            return "add-constraint", subject
        return ("create-index-concurrently" if tree.args.get("concurrently") else "create-index"), subject
    if kind in {"VIEW", "TYPE", "SEQUENCE", "FUNCTION", "SCHEMA", "PROCEDURE", "MATERIALIZED VIEW"}:
        return "create-object", f"{kind.lower()} {tree.this.sql() if tree.this else ''}".strip()
    return "unrecognised", f"create {kind.lower()}"

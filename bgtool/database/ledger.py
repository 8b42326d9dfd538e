"""Which migrations have run: the record that makes "pending" and "contracted after" answerable.

- The embedded default keeps a real SQLite database under `.bgtool/db/ENV.sqlite`; its
  `schema_migrations` table is written in the same transaction as the migration itself, so the
  record can never disagree with the schema.
- With a `migrate_command` (Flyway, golang-migrate, ...) the tool keeps its own table; bgtool's
  record is the `migrate` entries of the environment's history, stored beside the Terraform state.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bgtool.database.migrations import Migration, MigrationError

TABLE = "schema_migrations"
CREATE = (f"CREATE TABLE IF NOT EXISTS {TABLE} (version TEXT PRIMARY KEY, file TEXT NOT NULL, "
          "checksum TEXT NOT NULL, kind TEXT NOT NULL, contract_after TEXT, release TEXT, applied_at TEXT NOT NULL)")


class StatementFailed(Exception):
    """The database rejected a statement; the migration was rolled back."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


@dataclass(frozen=True)
class Applied:
    version: str
    file: str
    checksum: str
    kind: str
    contract_after: str | None
    release: str | None  # the application version deployed with it
    applied_at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def applied_record(migration: Migration, release: str | None) -> Applied:
    return Applied(migration.label, migration.file, migration.checksum, migration.kind, migration.contract_after,
                   release, datetime.now(UTC).isoformat(timespec="seconds"))


def pending(migrations: list[Migration], applied: Iterable[Applied]) -> list[Migration]:
    """Migrations not yet run, after checking the run ones were not edited and nothing is out of order."""
    done = {a.version: a for a in applied}
    for m in migrations:
        a = done.get(m.label)
        if a is not None and a.checksum != m.checksum:
            raise MigrationError(m.file, f"version {m.label} ran on {a.applied_at} from a different file content "
                                 "(checksum changed); a migration that ran must not be edited",
                                 hint="Restore the file and put the change in a new migration. Nothing was run.")
    todo = [m for m in migrations if m.label not in done]
    newest = max((m.version for m in migrations if m.label in done), default=None)
    for m in todo:
        if newest is not None and m.version < newest:
            raise MigrationError(m.file, f"version {m.label} is older than version {'.'.join(map(str, newest))}, "
                                 "which already ran: out-of-order migrations are not run",
                                 hint="Give it a version after the newest one that ran. Nothing was run.")
    return todo


def applied_from_history(records: Iterable[Mapping[str, Any]]) -> list[Applied]:
    """The `migrate` records of the history, oldest first (successful migrations of failed runs included)."""
    out: list[Applied] = []
    for record in records:
        if record.get("operation") != "migrate":
            continue
        for item in (record.get("details") or {}).get("ran", []):
            out.append(Applied(**item))
    return out


class SqliteDatabase:
    """The embedded default's database: a file, Python's sqlite3, one transaction per migration."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def applied(self) -> list[Applied]:
        if not self.path.exists():
            return []
        with sqlite3.connect(f"file:{self.path}?mode=ro", uri=True) as conn:
            exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,)).fetchone()
            if not exists:
                return []
            rows = conn.execute(f"SELECT version, file, checksum, kind, contract_after, release, applied_at "
                                f"FROM {TABLE} ORDER BY applied_at, rowid").fetchall()
        return [Applied(*row) for row in rows]

    def apply(self, migration: Migration, release: str | None) -> Applied:
        """Run MIGRATION and record it atomically; on error nothing of it stays."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = applied_record(migration, release)
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute(CREATE)
            conn.execute("BEGIN")
            for statement in migration.statements:
                if statement.transaction_control:
                    continue
                try:
                    conn.execute(statement.raw)
                except sqlite3.Error as exc:
                    raise StatementFailed(f"{migration.file}:{statement.line}", str(exc)) from exc
            conn.execute(f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (record.version, record.file, record.checksum, record.kind, record.contract_after,
                          record.release, record.applied_at))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()
        return record

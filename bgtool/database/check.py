"""One environment's database: its migrations, what ran, the guard's verdict, and running the rest.

The history records are passed in as plain data (the release stage owns the history), so this
package depends only on the configuration and AWS access.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bgtool.aws.session import Aws
from bgtool.config.project import state_dir
from bgtool.config.schema import DatabaseSettings, Environment
from bgtool.database.guard import Serving, Verdict, check_contract_versions, compare, judge, serving_versions
from bgtool.database.ledger import Applied, SqliteDatabase, StatementFailed, applied_from_history, applied_record
from bgtool.database.ledger import pending as pending_of
from bgtool.database.migrations import Migration, discover
from bgtool.database.run import command_argv, connection_environment, run_command
from bgtool.errors import BgtoolError

SQLITE_PREFIX = "sqlite:///"


@dataclass
class DatabaseReport:
    env: str
    dialect: str
    ledger: str
    migrations: list[Migration]
    applied: list[Applied]
    verdict: Verdict
    notes: list[str] = field(default_factory=list)

    @property
    def pending(self) -> list[Migration]:
        return self.verdict.pending

    def to_dict(self) -> dict[str, Any]:
        ran = {a.version for a in self.applied}
        return {"ok": self.verdict.ok, "env": self.env, "dialect": self.dialect, "ledger": self.ledger,
                "migrations": [{**m.to_dict(), "state": "applied" if m.label in ran else "pending"}
                               for m in self.migrations],
                "verdict": self.verdict.to_dict(), "notes": self.notes}


class MigrationRunFailed(BgtoolError):
    """A migration failed; RAN lists those that completed before it."""

    def __init__(self, message: str, ran: list[Applied], failed: str) -> None:
        super().__init__(message)
        self.ran = ran
        self.failed = failed


def predating(applied: Iterable[Applied], version: str) -> list[Applied]:
    """Contract migrations that ran and whose contract-after VERSION does not reach (pure)."""
    return [a for a in applied if a.contract_after and compare(version, a.contract_after) is not True]


class Database:
    """The `database` section of one environment, with where its record of applied migrations lives."""

    def __init__(self, root: Path, env: str, config: Environment, aws: Aws) -> None:
        if config.database is None:
            raise BgtoolError(f"environments/{env}.yaml has no 'database' section",
                              hint="Add database.migrations (and dialect, migrate_command) to guard migrations.")
        self.root, self.env, self.config, self.aws = root, env, config, aws
        self.settings: DatabaseSettings = config.database
        self.shown = f"environments/{env}.yaml"
        self._check_runner()

    @property
    def builtin(self) -> bool:
        """The embedded default applies migrations itself, to SQLite."""
        return self.settings.migrate_command is None

    def _check_runner(self) -> None:
        if not self.builtin:
            return
        if not self.config.embedded:
            raise BgtoolError(f"{self.shown}: database.migrate_command is required on a real AWS account "
                              "(for example 'flyway migrate')", hint="Nothing was run.")
        if self.settings.dialect != "sqlite":
            raise BgtoolError(f"{self.shown}: database.dialect is {self.settings.dialect!r}, but without a "
                              "migrate_command the embedded default applies migrations to SQLite",
                              hint="Use dialect: sqlite, or set database.migrate_command. Nothing was run.")

    @property
    def sqlite_path(self) -> Path:
        name = self.settings.connection_env
        value = os.environ.get(name, "") if name else ""
        if value:
            return Path(value.removeprefix(SQLITE_PREFIX))
        return state_dir(self.root) / "db" / f"{self.env}.sqlite"

    def ledger_name(self) -> str:
        if self.builtin:
            return f"{self._shown_path(self.sqlite_path)} (schema_migrations table)"
        return "the environment's history (migrate records)"

    def _shown_path(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    def migrations(self) -> list[Migration]:
        directory = self.root / self.settings.migrations
        return discover(directory, self.settings.migrations.rstrip("/"), self.settings.dialect)

    def applied(self, records: Iterable[Mapping[str, Any]]) -> list[Applied]:
        return SqliteDatabase(self.sqlite_path).applied() if self.builtin else applied_from_history(records)

    def check(self, records: list[Mapping[str, Any]], *, idle_version: str | None = None,
              notes: list[str] | None = None) -> DatabaseReport:
        """The guard's verdict for the file's colors, or with IDLE_VERSION deployed to the idle color."""
        migrations = self.migrations()
        applied = self.applied(records)
        todo = pending_of(migrations, applied)
        serving = self.serving(idle_version)
        check_contract_versions(todo, self.known_versions(records, serving))
        return DatabaseReport(self.env, self.settings.dialect, self.ledger_name(), migrations, applied,
                              judge(todo, serving), list(notes or []))

    def serving(self, idle_version: str | None) -> list[Serving]:
        live, idle = self.config.active_color, self.config.idle_color
        return serving_versions(live.value, self.config.colors.of(live).version, idle.value,
                                idle_version or self.config.colors.of(idle).version)

    def known_versions(self, records: Iterable[Mapping[str, Any]], serving: list[Serving]) -> set[str]:
        known = {self.config.colors.of(c).version for c in (self.config.active_color, self.config.idle_color)}
        known |= {s.version for s in serving}
        for record in records:
            if record.get("result") != "refused":  # a refused release never ran anywhere
                known |= {str(v) for v in (record.get("versions") or {}).values()}
        return known

    def migrate(self, report: DatabaseReport, release: str | None) -> list[Applied]:
        """Run REPORT's pending migrations in order; MigrationRunFailed says which ran before the failure."""
        if not report.verdict.ok:
            raise ValueError("refused migrations must not run")
        if not report.pending:
            return []
        return self._builtin(report.pending, release) if self.builtin else self._command(report.pending, release)

    def _builtin(self, todo: list[Migration], release: str | None) -> list[Applied]:
        db, ran = SqliteDatabase(self.sqlite_path), []
        for migration in todo:
            try:
                ran.append(db.apply(migration, release))
            except StatementFailed as exc:
                raise MigrationRunFailed(f"migration {exc.where} failed and was rolled back: {exc.message}",
                                         ran, migration.label) from exc
        return ran

    def _command(self, todo: list[Migration], release: str | None) -> list[Applied]:
        env = {**os.environ, **connection_environment(self.settings, self.aws.client("secretsmanager")
                                                       if self.settings.connection_secret else None, self.shown)}
        env["BGTOOL_MIGRATIONS_DIR"] = str(self.root / self.settings.migrations)
        env["BGTOOL_PENDING_MIGRATIONS"] = ",".join(m.file for m in todo)
        env["BGTOOL_DATABASE_DIALECT"] = self.settings.dialect
        argv = command_argv(self.settings, env, self.shown)
        try:
            run_command(argv, env, self.root)
        except BgtoolError as exc:
            raise MigrationRunFailed(f"{exc.message} (pending: {', '.join(m.file for m in todo)}); which of them "
                                     "ran is in the migration tool's own table", [], todo[0].label) from exc
        return [applied_record(m, release) for m in todo]

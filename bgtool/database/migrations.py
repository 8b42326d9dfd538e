"""Migration files: the naming conventions of the field, their order, and bgtool's header comment.

Accepted names (one directory, `.sql` files):
- Flyway: `V3__add_column.sql`, `V1.2__x.sql`, `V1_2__x.sql` (Flyway undo files `U3__x.sql` are skipped);
- golang-migrate: `0003_add_column.up.sql` (the `.down.sql` twins are skipped);
- plain: `0003_add_column.sql`.
Versions compare as numbers (`V1.10` after `V1.9`; `0003` equals `3`), so the listing order of the
directory never matters, and two files with the same version are an error.

A contract migration declares the application version from which the old shape is no longer
needed with a full-line comment `-- bgtool:contract-after 1.4.0`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bgtool.errors import BgtoolError

if TYPE_CHECKING:  # the SQL parser loads only where a migration is parsed (a rollback reads records only)
    from bgtool.database.classify import Statement

FLYWAY = re.compile(r"^V(?P<version>\d+(?:[._]\d+)*)__(?P<name>.+)\.sql$")
GOLANG_MIGRATE = re.compile(r"^(?P<version>\d+)_(?P<name>.+)\.up\.sql$")
PLAIN = re.compile(r"^(?P<version>\d+)_(?P<name>.+)\.sql$")
SKIPPED = re.compile(r"^(U\d+(?:[._]\d+)*__.+\.sql|\d+_.+\.down\.sql)$")
DIRECTIVE = re.compile(r"^\s*--\s*bgtool:(?P<key>[A-Za-z_-]*)\s*(?P<value>.*?)\s*$")
CONTRACT_AFTER = "contract-after"
NAMING = ("V<version>__<name>.sql (Flyway), <version>_<name>.up.sql (golang-migrate) "
          "or <version>_<name>.sql")


class MigrationError(BgtoolError):
    """A migration file or the migration directory is invalid; nothing was run."""

    def __init__(self, where: str, problem: str, hint: str | None = None) -> None:
        super().__init__(f"{where}: {problem}",
                         hint=hint or "Nothing was run and nothing was changed. Fix the migration and run "
                                      "the command again.")
        self.where = where


Version = tuple[int, ...]


def parse_version(text: str) -> Version:
    """'0003' -> (3,), '1_2' -> (1, 2), '1.2.0' -> (1, 2): trailing zeros do not make a new version."""
    parts = [int(p) for p in re.split(r"[._]", text)]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def version_text(version: Version) -> str:
    return ".".join(str(p) for p in version)


@dataclass(frozen=True)
class Migration:
    """One migration file, parsed and classified."""

    version: Version
    file: str  # as shown to people: relative to the project
    checksum: str
    statements: list[Statement] = field(default_factory=list)
    contract_after: str | None = None
    contract_after_line: int | None = None

    @property
    def label(self) -> str:
        return version_text(self.version)

    @property
    def contracts(self) -> list[Statement]:
        from bgtool.database.classify import CONTRACT

        return [s for s in self.statements if s.kind == CONTRACT]

    @property
    def kind(self) -> str:
        return "contract" if self.contracts else "expand"

    def to_dict(self) -> dict[str, object]:
        return {"version": self.label, "file": self.file, "kind": self.kind, "checksum": self.checksum,
                "contract_after": self.contract_after,
                "statements": [s.to_dict() for s in self.statements]}


def discover(directory: Path, shown: str, dialect: str) -> list[Migration]:
    """Every migration under DIRECTORY in version order; MigrationError on any bad file."""
    if not directory.is_dir():
        raise MigrationError(shown, "the migrations directory does not exist",
                             hint="Create it, or correct database.migrations in the environment file.")
    found: dict[Version, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        if SKIPPED.match(path.name):
            continue
        migration = load(path, f"{shown}/{path.name}", dialect)
        if migration.version in found:
            raise MigrationError(migration.file, f"version {migration.label} is also used by "
                                 f"{found[migration.version].file}; every migration needs its own version")
        found[migration.version] = migration
    return [found[v] for v in sorted(found)]


def version_of(name: str, shown: str) -> Version:
    for pattern in (FLYWAY, GOLANG_MIGRATE, PLAIN):
        match = pattern.match(name)
        if match:
            return parse_version(match["version"])
    raise MigrationError(shown, f"file name has no version prefix; allowed: {NAMING}")


def load(path: Path, shown: str, dialect: str) -> Migration:
    version = version_of(path.name, shown)
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MigrationError(shown, f"cannot read the file: {exc}") from None
    contract_after, line = _header(text, shown)
    from bgtool.database.classify import SqlError, parse_statements

    try:
        statements = parse_statements(text, dialect)
    except SqlError as exc:
        where = f"{shown}:{exc.line}" if exc.line else shown
        raise MigrationError(where, exc.message) from None
    if not statements:
        raise MigrationError(shown, "contains no SQL statement")
    return Migration(version, shown, hashlib.sha256(raw).hexdigest(), statements, contract_after, line)


def _header(text: str, shown: str) -> tuple[str | None, int | None]:
    """The `-- bgtool:contract-after VERSION` line; any other `bgtool:` directive is a typo to report."""
    found: tuple[str | None, int | None] = (None, None)
    for number, line in enumerate(text.splitlines(), start=1):
        match = DIRECTIVE.match(line)
        if not match:
            continue
        where = f"{shown}:{number}"
        if match["key"] != CONTRACT_AFTER:
            raise MigrationError(where, f"unknown directive 'bgtool:{match['key']}'; allowed: "
                                        f"'-- bgtool:{CONTRACT_AFTER} VERSION'")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}", match["value"]):
            raise MigrationError(where, f"'-- bgtool:{CONTRACT_AFTER}' needs one application version, "
                                        f"like '-- bgtool:{CONTRACT_AFTER} 1.4.0' (got {match['value']!r})")
        if found[0] is not None:
            raise MigrationError(where, f"a second '-- bgtool:{CONTRACT_AFTER}' (the first is on line {found[1]})")
        found = (match["value"], number)
    return found

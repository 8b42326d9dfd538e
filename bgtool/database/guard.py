"""The verdict: may these pending migrations run while these versions may serve? (pure)

The versions that may serve within the retention window are the live color's, the idle color's
(after a deploy: the new version) and the rollback target's. A contract migration runs only when it
declares `-- bgtool:contract-after V` and each of them is at or past V. Application versions are
compared as PEP 440 / semantic versions with `packaging`; a version that does not parse cannot be
proven new enough, so it blocks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from packaging.version import InvalidVersion
from packaging.version import Version as AppVersion

from bgtool.database.migrations import CONTRACT_AFTER, Migration, MigrationError


@dataclass(frozen=True)
class Serving:
    """A version that may serve while the migration's effect is live."""

    role: str  # "live", "idle", "rollback target", "idle and rollback target"
    color: str
    version: str

    def __str__(self) -> str:
        return f"{self.role} {self.color} {self.version}"


@dataclass(frozen=True)
class Blocker:
    migration: str  # file
    line: int
    statement: str
    why: str
    needs_old_shape: str  # which serving version still needs the old shape, and why we say so
    steps: str

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)

    def explain(self) -> str:
        return (f"{self.migration}:{self.line}: {self.statement}\n"
                f"    not backward compatible: {self.why}\n"
                f"    still needs the old shape: {self.needs_old_shape}\n"
                f"    safe way: {self.steps}")


@dataclass
class Verdict:
    pending: list[Migration]
    serving: list[Serving]
    blockers: list[Blocker] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.blockers

    def to_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "pending": [m.label for m in self.pending],
                "serving": [s.__dict__ for s in self.serving],
                "blockers": [b.to_dict() for b in self.blockers]}


def compare(version: str, floor: str) -> bool | None:
    """version >= floor, or None when either is not a comparable version."""
    try:
        return AppVersion(version) >= AppVersion(floor)
    except InvalidVersion:
        return None


def too_old(serving: Iterable[Serving], floor: str) -> list[str]:
    """Who among SERVING may not run against a schema contracted after FLOOR, each with why."""
    out = []
    for s in serving:
        verdict = compare(s.version, floor)
        if verdict is None:
            out.append(f"{s} (cannot be compared with {floor} as a version, so it is not proven to be past it)")
        elif not verdict:
            out.append(f"{s} (predates {floor})")
    return out


def judge(pending: list[Migration], serving: list[Serving]) -> Verdict:
    verdict = Verdict(pending, serving)
    for migration in pending:
        for statement in migration.contracts:
            if migration.contract_after is None:
                needs = (f"unknown: the file declares no '-- bgtool:{CONTRACT_AFTER} VERSION', so every "
                         f"serving version may need it ({', '.join(map(str, serving)) or 'none known'})")
            else:
                old = too_old(serving, migration.contract_after)
                if not old:
                    continue
                needs = "; ".join(old)
            verdict.blockers.append(Blocker(migration.file, statement.line, statement.sql, statement.why,
                                            needs, statement.steps))
    return verdict


def check_contract_versions(pending: list[Migration], known: Iterable[str]) -> None:
    """A contract-after must name an application version that exists (file colors, new version, history)."""
    known_set = set(known)
    for migration in pending:
        floor = migration.contract_after
        if floor is None or floor in known_set or _same_version_known(floor, known_set):
            continue
        shown = ", ".join(sorted(known_set)) or "none"
        raise MigrationError(
            f"{migration.file}:{migration.contract_after_line}",
            f"'-- bgtool:{CONTRACT_AFTER} {floor}' names a version that no color, deploy or history record "
            f"of this environment knows (known: {shown})",
            hint="Name the application release that stopped using the old shape. Nothing was run.")


def _same_version_known(floor: str, known: set[str]) -> bool:
    return any(compare(k, floor) is True and compare(floor, k) is True for k in known)


def serving_versions(live_color: str, live_version: str, idle_color: str, idle_version: str) -> list[Serving]:
    """After a deploy a rollback goes back to the idle color, so the idle color is also the rollback target."""
    return [Serving("live", live_color, live_version), Serving("idle and rollback target", idle_color, idle_version)]

"""Migrations as part of a release: guarded before a deploy changes anything, run before the idle
color starts, and honoured by rollback.

A deploy of VERSION asks the guard with VERSION as the idle color's version. A refusal is raised
before the environment file, the database or any layer is touched (and recorded as a refused
deploy). Allowed migrations run next; each run is recorded as a `migrate` history record, so the
record exists even when a later stage of the deploy fails, and the deploy's own record lists them.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from bgtool.config.schema import Color, ColorSettings
from bgtool.database.check import Database, DatabaseReport, MigrationRunFailed, predating
from bgtool.errors import BgtoolError
from bgtool.events import Note
from bgtool.records.history import History, Record
from bgtool.terraform.workspace import Workspace


def records(history: History) -> list[dict[str, Any]]:
    return [asdict(r) for r in history.read()]


def check_database(ws: Workspace, idle_version: str | None = None) -> DatabaseReport:
    """The guard alone (`db check`, the pull-request summary); works without the history, with a note."""
    db = Database(ws.root, ws.env, ws.config, ws.aws)
    notes: list[str] = []
    try:
        past = records(History.of(ws))
    except (ClientError, BotoCoreError, OSError, ValueError) as exc:
        past = []
        notes.append(f"history unreadable ({type(exc).__name__}): versions known only from the file")
    return db.check(past, idle_version=idle_version, notes=notes)


def explain_refusal(report: DatabaseReport, what: str) -> str:
    serving = ", ".join(str(s) for s in report.verdict.serving)
    blocks = "\n".join(b.explain() for b in report.verdict.blockers)
    return (f"{what} refused by the database guard: {len(report.verdict.blockers)} statement(s) of pending "
            f"migrations are not backward compatible with a version that may still serve ({serving}):\n{blocks}")


def guard_and_migrate(ws: Workspace, color: Color, version: str, history: History) -> dict[str, Any]:
    """Run the guard for deploying VERSION to COLOR, then the pending migrations; details for the deploy record."""
    if ws.config.database is None:
        return {}
    _valid_version(ws, color, version)  # migrations run before the file is rewritten: it must accept VERSION
    db = Database(ws.root, ws.env, ws.config, ws.aws)
    report = db.check(records(history), idle_version=version)
    versions = {"before": ws.config.colors.of(color).version, "after": version}
    _refuse_old_release(ws, report, color, version, history, versions)
    if not report.verdict.ok:
        reason = explain_refusal(report, f"deploy of {version} to {color.value}")
        history.append(Record("deploy", "refused", to_color=color.value, versions=versions,
                              reason=reason.splitlines()[0], details={"database": report.verdict.to_dict()}))
        raise BgtoolError(f"{reason}\nNothing was changed: environments/{ws.env}.yaml, the database and every "
                          "layer are as they were.",
                          hint=f"Split the change into expand and contract releases, or check with "
                               f"'bgtool db check {ws.env} --version {version}'.")
    if not report.pending:
        ws.emit(Note(f"database: no pending migrations ({report.ledger})", "detail"))
        return {"migrations": []}
    ws.emit(Note(f"database: running {len(report.pending)} migration(s): "
                 + ", ".join(f"{m.file} ({m.kind})" for m in report.pending)))
    try:
        ran = db.migrate(report, version)
    except MigrationRunFailed as exc:
        _record_run(history, color, versions, "failed", exc.ran, exc.message)
        raise BgtoolError(
            f"deploy of {version} to {color.value} stopped: {exc.message}\n"
            f"migrations that ran before it: {', '.join(a.file for a in exc.ran) or 'none'}; "
            f"environments/{ws.env}.yaml unchanged; the {color.value} layer was not applied; the live color "
            f"{color.other.value} was not touched",
            hint=f"Fix the migration and run 'bgtool deploy {ws.env} {version}' again: the ones that ran are "
                 "recorded and will not run twice.") from exc
    _record_run(history, color, versions, "succeeded", ran, "")
    for a in ran:
        ws.emit(Note(f"database: {a.file} applied ({a.kind})", "ok"))
    return {"migrations": [a.version for a in ran]}


def _valid_version(ws: Workspace, color: Color, version: str) -> None:
    try:
        ColorSettings.model_validate({**ws.config.colors.of(color).model_dump(), "version": version})
    except ValidationError as exc:
        problem = exc.errors()[0]["msg"] if exc.errors() else str(exc)
        raise BgtoolError(f"version {version!r} is not allowed in environments/{ws.env}.yaml colors."
                          f"{color.value}.version: {problem}; nothing was changed") from None


def _refuse_old_release(ws: Workspace, report: DatabaseReport, color: Color, version: str, history: History,
                        versions: dict[str, str]) -> None:
    """A release older than a contract that already ran would fail against the schema it finds."""
    old = predating(report.applied, version)
    if not old:
        return
    why = "; ".join(f"{a.file} ran on {a.applied_at} and removed what versions before {a.contract_after} use"
                    for a in old)
    history.append(Record("deploy", "refused", to_color=color.value, versions=versions, reason=why))
    raise BgtoolError(f"deploy of {version} to {color.value} refused: {why}; nothing was changed",
                      hint="Deploy a version at or past every applied contract's contract-after.")


def _record_run(history: History, color: Color, versions: dict[str, str], result: str, ran: list[Any],
                reason: str) -> None:
    history.append(Record("migrate", result, to_color=color.value, versions={"after": versions["after"]},
                          reason=reason, details={"ran": [a.to_dict() for a in ran]}))


def rollback_problems(ws: Workspace, target: Color, history: History) -> list[str]:
    """Why sending traffic back to TARGET would run code older than a contract migration that ran."""
    if ws.config.database is None:
        return []
    version = ws.config.colors.of(target).version
    try:
        applied = Database(ws.root, ws.env, ws.config, ws.aws).applied(records(history))
    except (BgtoolError, sqlite3.Error, ClientError, BotoCoreError, OSError) as exc:  # --force still gets through
        return [f"cannot tell whether a contract migration ran that {target.value} {version} predates: {exc}"]
    return [f"{target.value} runs {version}, which predates contract migration {a.file} "
            f"(contract-after {a.contract_after}, ran {a.applied_at}): that code would fail against the schema"
            for a in predating(applied, version)]

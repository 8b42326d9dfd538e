"""`bgtool db check ENV`: the database guard alone, for a pull request or before a release."""

from __future__ import annotations

import typer
from rich.table import Table
from rich.text import Text

from bgtool.cli import ui
from bgtool.cli.app import app
from bgtool.cli.common import ENV, JSON, open_workspace
from bgtool.cli.reports import database_markdown
from bgtool.config.schema import check_version
from bgtool.database.check import DatabaseReport
from bgtool.errors import BgtoolError
from bgtool.release.database import check_database, explain_refusal
from bgtool.terraform.workspace import Workspace

db_app = typer.Typer(help="Database migrations: the expand/contract guard.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("check")
def check(
    env: str = ENV,
    version: str = typer.Option(None, "--version", help="Judge as if VERSION were deployed to the idle color "
                                "(default: the file's versions)."),
    as_json: bool = JSON,
) -> int:
    """Parse and classify every migration (expand or contract) and judge the pending ones against the
    versions that may serve: the live color's, the idle color's and the rollback target's.

    Runs nothing. Exit 0 the pending migrations may run; 1 refused or invalid migrations.
    """
    ui.set_json_mode(as_json)
    if version is not None:
        check_version(version, "bgtool db check --version")
    ws = open_workspace(env)
    report = check_database(ws, version)
    print_report(report)
    if as_json:
        ui.emit_json(report.to_dict())
    return 0 if report.verdict.ok else 1


def print_report(report: DatabaseReport) -> None:
    ran = {a.version for a in report.applied}
    table = Table(title=Text(f"{report.env}: migrations ({report.dialect}; record: {report.ledger})"),
                  title_justify="left")
    for column in ("version", "file", "state", "kind", "line", "statement", "why"):
        table.add_column(column, overflow="fold")
    for m in report.migrations:
        state = "applied" if m.label in ran else "pending"
        for i, s in enumerate(m.statements):
            head = [Text(x) for x in (m.label, m.file, state,
                                      m.kind + (f" after {m.contract_after}" if m.contract_after else ""))]
            style = "red" if s.kind == "contract" else ""
            table.add_row(*(head if i == 0 else ["", "", "", ""]), str(s.line), Text(s.sql), Text(s.why, style=style))
    ui.console.print(table)
    for note in report.notes:
        ui.console.print(f"[yellow]note:[/] {ui.safe(note)}", soft_wrap=True)
    serving = ", ".join(str(s) for s in report.verdict.serving)
    if report.verdict.ok:
        pending = ", ".join(m.file for m in report.pending) or "none"
        ui.console.print(f"[green]database guard: passed[/] (pending: {ui.safe(pending)}; "
                         f"may serve: {ui.safe(serving)})", soft_wrap=True)
    else:
        ui.console.print(Text(explain_refusal(report, "the pending migrations are"), style="red"), soft_wrap=True)


def plan_database_markdown(ws: Workspace) -> str:
    """The guard's verdict for the pull-request plan summary; empty without a `database` section."""
    if ws.config.database is None:
        return ""
    try:
        return database_markdown(check_database(ws))
    except BgtoolError as exc:
        return database_markdown(None, exc.message)

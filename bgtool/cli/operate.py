"""`bgtool status|verify|deploy|retire|history|unlock ENV`: operating one environment."""

from __future__ import annotations

import typer
from rich.table import Table

from bgtool.aws.live import dashboard_exists, read_live
from bgtool.cli import ui
from bgtool.cli.app import app
from bgtool.cli.common import ENV, JSON, YES, open_workspace, plan_approver, refuse_without_terminal
from bgtool.cli.release import COMMIT, file_change
from bgtool.cli.status_view import print_status
from bgtool.compute import compute_for
from bgtool.compute.workers import running_workers
from bgtool.config.dashboard import dashboard_name
from bgtool.config.schema import Color, check_version
from bgtool.errors import BgtoolError
from bgtool.records.history import History, Record
from bgtool.records.lock import (
    HeldLock,
    LocksLeft,
    OperationLock,
    clear_lock,
    clear_verdict,
    environment_locks,
)
from bgtool.records.provenance import refuse_stale, require_git
from bgtool.release.deploy import deploy, refuse_live
from bgtool.release.gate import GateReport, run_gate
from bgtool.release.retire import last_switch, retire
from bgtool.release.status import build_status
from bgtool.terraform.workspace import Workspace
from bgtool.traffic.dns import dns_status


@app.command()
def status(env: str = ENV, as_json: bool = JSON) -> int:
    """Active color in the file and as live weights, per color: version, capacity, targets, alarms;
    the operation lock, the last switch, the retention time left for the idle color, and the
    CloudWatch dashboard that graphs both colors.

    Exit 0 (also when the file and the live weights disagree: that is reported, not an error).
    """
    ui.set_json_mode(as_json)
    ws = open_workspace(env)
    lock = OperationLock.of(ws).current()
    switched = last_switch(History.of(ws))
    dns = dns_status(ws, switched.at if switched else None) if ws.config.traffic.mode == "dns" else None
    workers = {c.value: running_workers(ws, c) for c in Color} if ws.config.workers else None
    found = dashboard_exists(ws.aws, dashboard_name(ws.config))
    live = read_live(ws.aws, ws.config, compute_for(ws).live)
    doc = build_status(env, ws.config, live, lock=lock, last_switch=switched, dns=dns, workers=workers,
                       dashboard_found=found)
    print_status(doc)
    if as_json:
        ui.emit_json(doc)
    return 0


@app.command()
def watch(
    env: str = ENV,
    every: float = typer.Option(2.0, "--every", min=0.5, help="Seconds between readings of AWS."),
    once: bool = typer.Option(False, "--once", help="Print the panel once and exit (the default without a "
                              "terminal)."),
    as_json: bool = JSON,
) -> int:
    """The live panel of ENV, changing nothing: weights, per color requests/s, 5xx rate, p99, healthy
    targets and alarms, and who holds the operation lock (another person's release, or production at
    rest). Runs until Ctrl-C on a terminal.

    Exit 0 (also on Ctrl-C); 1 when the environment file or AWS cannot be read.
    """
    from bgtool.cli.panel import LivePanel, watch_until_interrupted  # rich's Live: only for this command
    from bgtool.release.watch import read_environment

    ui.set_json_mode(as_json)
    ws = open_workspace(env)
    if as_json:
        ui.emit_json(read_environment(ws).to_dict())
        return 0
    if once or not ui.on_terminal():
        panel = LivePanel(ws.root, env)
        panel.read_now(ws)
        if panel.reading is None:
            raise BgtoolError(f"{env}: AWS could not be read: {panel.reading_error}",
                              hint=f"See 'bgtool status {env}' for what is reachable.")
        ui.console.print(panel.renderable())
        return 0
    watch_until_interrupted(ws, every)
    return 0


@app.command()
def verify(
    env: str = ENV,
    color: Color | None = typer.Option(None, "--color", "-c", help="Color to check (default: the idle one)."),
    as_json: bool = JSON,
) -> int:
    """Run the health gate on a color: capacity, target health, alarms, smoke requests, host checks.

    Exit 0 when every check passes, 1 otherwise.
    """
    ui.set_json_mode(as_json)
    ws = open_workspace(env)
    target = Color(color) if color else ws.config.idle_color
    report = run_gate(ws, target)
    print_gate(env, report)
    if as_json:
        ui.emit_json({"env": env, **report.to_dict()})
    return 0 if report.passed else 1


def print_gate(env: str, report: GateReport) -> None:
    _folded(f"{env}: health gate of {report.color}", ["check", "result", "evidence"],
            [[c.name, "pass" if c.passed else c.verdict.upper(), c.evidence] for c in report.checks])
    verdict = "[green]passed[/]" if report.passed else f"[red]failed[/] ({len(report.failures())} failing)"
    if report.only_inconclusive:
        verdict = "[yellow]inconclusive[/] (too little data; a switch needs --accept-inconclusive)"
    ui.console.print(f"gate {verdict}")


@app.command(name="deploy")
def deploy_command(
    env: str = ENV,
    version: str = typer.Argument(..., help="Version to deploy to the idle color.", show_default=False),
    color: Color | None = typer.Option(None, "--color", "-c", help="Must be the idle color (the default)."),
    yes: bool = YES,
    as_json: bool = JSON,
    timeout: float | None = typer.Option(None, "--timeout", help="Seconds to wait for health (gate.wait_seconds)."),
    commit: bool = COMMIT,
) -> int:
    """Write VERSION into the idle color's entry, apply only that color's layer, wait until healthy.

    The live color is refused and never planned. Exit 0 deployed and healthy; 1 otherwise (the
    output says what the file says, whether the layer was applied, and how to recover).
    """
    ui.set_json_mode(as_json)
    check_version(version, "bgtool deploy VERSION")
    ws = open_workspace(env, live="deploy")
    if commit:
        require_git(ws.loaded.path)
    refuse_stale(ws, History.of(ws).read(), "deploy")  # a stale file would undo a release
    before = ws.config
    target = Color(color) if color else ws.config.idle_color
    refuse_live(ws, target, "deploy")  # before any prompt: this is never allowed
    refuse_without_terminal(yes, f"bgtool deploy {env} {version}")
    result = deploy(ws, version, plan_approver(yes, f"bgtool deploy {env} {version}", env), color=color,
                    timeout=timeout)  # decided again under the lock: the idle color then, not now
    ui.close_live()
    ui.console.print(f"[green]deployed[/] {ui.safe(version)} to {result.color} (was "
                     f"{ui.safe(result.previous_version)}); {result.live['in_service']} in service, "
                     f"{result.live['healthy_targets']} healthy after {result.waited_seconds:.0f}s. "
                     f"Next: 'bgtool verify {env}', then 'bgtool switch {env}'.")
    git = file_change(ws, before, "deploy", commit)
    if as_json:
        ui.emit_json({**result.to_dict(), "git": git})
    return 0


@app.command(name="retire")
def retire_command(
    env: str = ENV,
    force: bool = typer.Option(False, "--force", help="Do not wait for retention_hours after the last switch."),
    yes: bool = YES,
    as_json: bool = JSON,
) -> int:
    """Scale the idle color to zero once retention_hours have passed since the last switch.

    Never touches the live color; a later deploy scales it back up. Exit 0 retired; 1 refused or failed.
    """
    ui.set_json_mode(as_json)
    ws = open_workspace(env)
    refuse_without_terminal(yes, f"bgtool retire {env}")
    result = retire(ws, plan_approver(yes, f"bgtool retire {env}", env), force=force)
    ui.console.print(f"[green]retired[/] {result.color} (version {ui.safe(result.version)}): desired 0. "
                     f"'bgtool deploy {env} VERSION' brings it back.")
    if as_json:
        ui.emit_json(result.to_dict())
    return 0


@app.command(name="history")
def history_command(env: str = ENV, as_json: bool = JSON) -> int:
    """The release records of ENV: deploys, switches, rollbacks, retires, oldest first. Exit 0."""
    ui.set_json_mode(as_json)
    ws = open_workspace(env)
    records = History.of(ws).read()
    _print_history(env, records)
    if not records:
        ui.console.print("no records yet")
    if as_json:
        ui.emit_json({"env": env, "records": [r.__dict__ for r in records]})
    return 0


def _print_history(env: str, records: list[Record]) -> None:
    _folded(f"{env}: history", ["when", "who", "operation", "from → to", "versions", "result", "reason"],
            [_history_row(r) for r in records])


def _folded(title: str, columns: list[str], rows: list[list[str]]) -> None:
    """Cells fold instead of ending in '…': evidence and versions cut off on a narrow terminal are useless."""
    table = Table(title=ui.cell(title), title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*[ui.cell(value) for value in row])
    ui.console.print(table)


def _history_row(r: Record) -> list[str]:
    versions = " ".join(f"{k}={v}" for k, v in r.versions.items()) or "-"
    return [r.at, r.actor, r.operation, f"{r.from_color or '-'} → {r.to_color or '-'}", versions, r.result,
            r.reason or "-"]


FORCE_UNLOCK = typer.Option(False, "--force", help="Also clear a lock whose holder cannot be seen from here "
                            "(another machine, a CI job) before it is older than lock.stale_after_minutes.")


@app.command(name="unlock")
def unlock_command(env: str = ENV, yes: bool = YES, force: bool = FORCE_UNLOCK, as_json: bool = JSON) -> int:
    """Show and clear the locks a crashed run left on ENV: bgtool's operation lock and Terraform's state
    locks of its layers, each after showing its holder and age.

    A lock whose process is known to be still running is never cleared; one whose process is known to be
    gone is. A lock whose holder cannot be seen from here (another machine, a CI job) is cleared only once
    older than lock.stale_after_minutes, or with --force. Each lock says why it was cleared or left.
    Without a terminal, --yes is needed. Exit 0 nothing locked or every lock cleared; 1 a lock was left.
    """
    ui.set_json_mode(as_json)
    ws = open_workspace(env)
    found = environment_locks(ws.root, env, ws.config, ws.aws)
    if not found:
        ui.console.print(f"{env} is not locked")
        ui.emit_json({"env": env, "locks": []})
        return 0
    for held in found:
        ui.console.print(f"{env}: {held.describe()}", markup=False, soft_wrap=True)
    if not yes and not ui.interactive():
        raise LocksLeft(env, found, "there is no terminal to confirm on and no --yes")
    results = [_unlock_one(ws, held, yes, force) for held in found]
    ui.emit_json({"env": env, "locks": [
        {**held.to_dict(), "cleared": cleared, "cleared_because": why if cleared else None,
         "left_because": None if cleared else why} for held, cleared, why in results]})
    left = [held for held, cleared, _ in results if not cleared]
    if left:
        ui.console.print(f"[yellow]{len(left)} of {len(found)} lock(s) left in place[/]")
        return 1
    ui.console.print(f"[green]unlocked[/] {env}; check 'bgtool status {env}' for what the crashed run left")
    return 0


def _unlock_one(ws: Workspace, held: HeldLock, yes: bool, force: bool) -> tuple[HeldLock, bool, str]:
    """Clear one lock when its verdict allows and the operator confirms; returns whether it was cleared, and why."""
    verdict = clear_verdict(held, ws.config.lock.stale_after_minutes, force=force)
    cleared, why = False, verdict.why
    if not verdict.clear:
        pass
    elif not yes and not ui.confirm(f"Clear the {held.describe()} ({verdict.why})? Only if that run is dead: "
                                    "clearing a running one's lock lets two runs interleave."):
        why = "not confirmed"
    else:
        try:
            clear_lock(ws.root, ws.env, ws.config, ws.aws, held)
            cleared = True
        except BgtoolError as exc:
            why = exc.message
    if cleared:
        ui.console.print(f"[green]cleared[/] {ui.safe(held.describe())}: {ui.safe(why)}", soft_wrap=True)
    else:
        ui.console.print(f"[yellow]left[/] {ui.safe(held.describe())}: {ui.safe(why)}", soft_wrap=True)
    return held, cleared, why

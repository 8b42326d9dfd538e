"""`bgtool switch|rollback ENV`: moving production traffic between the colors."""

from __future__ import annotations

from typing import Any

import typer

from bgtool.cli import ui
from bgtool.cli.app import app
from bgtool.cli.common import ENV, JSON, YES, confirmer, open_workspace, refuse_without_terminal
from bgtool.config.schema import Color, Environment
from bgtool.errors import BgtoolError
from bgtool.records import provenance
from bgtool.release.rollback import RollbackOptions, run_rollback
from bgtool.terraform.workspace import Workspace
from bgtool.traffic.weights import parse_steps

COMMIT = typer.Option(False, "--commit", help="Commit the environment file's change with git (that file only; "
                      "never pushed). Refused outside a git checkout.")


def file_change(ws: Workspace, before: Environment, operation: str, commit: bool) -> dict[str, Any]:
    """In a git checkout, show the diff the operation left in the environment file and, with --commit,
    commit that file alone with a message naming environment, colors and versions."""
    lines = provenance.file_diff(ws.loaded.path)
    if lines is None or provenance.release_values(before) == provenance.release_values(ws.config):
        if commit:
            ui.console.print(f"{ui.safe(ws.env)}: the {operation} wrote nothing into the file: nothing to commit")
        return {}
    shown = f"environments/{ws.loaded.path.name}"
    if lines:
        ui.console.print(f"{shown}: {'  '.join(lines)}", markup=False, soft_wrap=True)
    doc: dict[str, Any] = {"diff": lines}
    if commit:
        message = provenance.commit_message(ws.env, operation, before, ws.config)
        doc["commit"] = provenance.commit_file(ws.loaded.path, message)
        ui.console.print(f"committed {doc['commit'][:12]}: {message} (not pushed)", markup=False)
    else:
        ui.console.print(f"Not committed: merge it, or production and the repository disagree "
                         f"(--commit commits it: git commit -- {shown})", markup=False)
    return doc


def _color(value: str | None) -> Color | None:
    if value is None:
        return None
    try:
        return Color(value.lower())
    except ValueError:
        raise BgtoolError(f"--to {value!r}: allowed: blue, green") from None


@app.command()
def switch(
    env: str = ENV,
    to: str = typer.Option(None, "--to", help="Color to move traffic to (default: the file's idle color)."),
    steps: str = typer.Option(None, "--steps", help="New color's share per step, e.g. 10,50,100 (default: file)."),
    bake: float = typer.Option(None, "--bake", min=0, help="Seconds to watch after each step (default: file; "
                               "never shorter than it takes to judge the step's traffic)."),
    monitor: float = typer.Option(None, "--monitor", min=0, help="Seconds to watch at 100% (default: file; "
                                  "never shorter than it takes to judge the traffic)."),
    accept_inconclusive: bool = typer.Option(False, "--accept-inconclusive", help="Go on when the gate's "
                                             "analysis or a step's traffic had too little data to judge "
                                             "(recorded in the history; bakes are then not lengthened)."),
    yes: bool = YES,
    as_json: bool = JSON,
    commit: bool = COMMIT,
) -> int:
    """Guarded switch: preflight, health gate, canary steps through the traffic layer, bake, finalize.

    Any failure restores 100% on the old color. Exit 0 switched (or nothing to do); 1 refused,
    failed or rolled back (the output and 'bgtool history ENV' say why).
    """
    ui.set_json_mode(as_json)
    from bgtool.release.switch import Switch, already_live, explain, plan_from  # rollback starts without it

    parsed = parse_steps(steps) if steps is not None else None
    ws = open_workspace(env, live="switch")
    if commit:
        provenance.require_git(ws.loaded.path)
    before = ws.config
    target = _color(to)
    plan = plan_from(ws, target, parsed, bake, monitor, accept_inconclusive=accept_inconclusive,
                     explicit=target is not None)
    if already_live(ws, plan.to):
        ui.console.print(f"{ui.safe(env)}: {plan.to.value} is the file's color and already serves 100%: nothing to do")
        if as_json:
            ui.emit_json({"ok": True, "result": "nothing-to-do", "env": env, "to": plan.to.value})
        return 0
    refuse_without_terminal(yes, f"bgtool switch {env}")
    outcome = Switch(ws, plan, confirmer(yes, f"bgtool switch {env}")).run()
    ui.close_live()
    style = "green" if outcome.ok else "red"
    ui.console.print(f"[{style}]{ui.safe(explain(outcome))}[/]", soft_wrap=True)
    git = file_change(ws, before, "switch", commit)
    if as_json:
        ui.emit_json({**outcome.to_dict(), "git": git})
    return 0 if outcome.ok else 1


@app.command()
def rollback(
    env: str = ENV,
    yes: bool = YES,
    break_glass: bool = typer.Option(False, "--break-glass", help="Flip the listener by direct API call first, "
                                     "then apply the traffic layer so no drift remains."),
    force: bool = typer.Option(False, "--force", help="Roll back even to a retired color or one without "
                               "healthy targets."),
    as_json: bool = JSON,
    commit: bool = COMMIT,
) -> int:
    """Production traffic back to the previous color at 100% (traffic layer), active_color written back.

    Exit 0 rolled back (or nothing to do); 1 refused or failed.
    """
    ui.set_json_mode(as_json)
    refuse_without_terminal(yes, f"bgtool rollback {env}")
    ws = open_workspace(env, live="rollback")
    if commit:
        provenance.require_git(ws.loaded.path)
    before = ws.config
    confirm = confirmer(yes, f"bgtool rollback {env}")
    outcome = run_rollback(ws, RollbackOptions(confirm, break_glass=break_glass, force=force))
    ui.close_live()
    git = file_change(ws, before, "rollback", commit)
    if outcome.result == "nothing-to-do":
        ui.console.print(f"{ui.safe(env)}: nothing to roll back: {ui.safe(outcome.reason)}", soft_wrap=True)
    elif outcome.ok:
        ui.console.print(f"[green]{ui.safe(env)}: production traffic is 100% on {ui.safe(outcome.to_color)}[/]")
    if as_json:
        ui.emit_json({**outcome.to_dict(), "git": git})
    return 0 if outcome.ok else 1

"""`bgtool status|verify|deploy|retire|history|unlock ENV`: operating one environment."""

from __future__ import annotations

import typer

from bgtool import ui
from bgtool.cli.app import app
from bgtool.live import read_live
from bgtool.project import find_root
from bgtool.status import build_status, print_status
from bgtool.workspace import Workspace

ENV = typer.Argument(..., help="Environment name: environments/ENV.yaml.", show_default=False)
JSON = typer.Option(False, "--json", help="Print one JSON document on stdout; progress stays on stderr.")
YES = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation (automation).")


@app.command()
def status(env: str = ENV, as_json: bool = JSON) -> int:
    """Active color in the file and as live weights, and per color: version, capacity, targets, alarms.

    Exit 0 (also when the file and the live weights disagree: that is reported, not an error).
    """
    ui.set_json_mode(as_json)
    ws = Workspace(find_root(), env)
    doc = build_status(env, ws.config, read_live(ws.aws, ws.config, env))
    print_status(doc)
    if as_json:
        ui.emit_json(doc)
    return 0

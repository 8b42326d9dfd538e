"""`bgtool local up|down|status`: the embedded AWS (a moto server on loopback)."""

from __future__ import annotations

import typer

from bgtool.cli import ui
from bgtool.cli.app import app
from bgtool.config.project import find_root
from bgtool.embedded import server as embedded

local_app = typer.Typer(help="Start, stop or inspect the embedded AWS (a moto server on 127.0.0.1).",
                        no_args_is_help=True)
app.add_typer(local_app, name="local")

PORT = typer.Option(embedded.DEFAULT_PORT, "--port", help="Port on 127.0.0.1.")
JSON = typer.Option(False, "--json", help="Print one JSON document on stdout.")


def _doc(info: embedded.ServerInfo | None) -> dict[str, object]:
    if info is None:
        return {"running": False}
    return {"running": True, "pid": info.pid, "port": info.port, "endpoint": info.endpoint, "log": str(info.log)}


@local_app.command("up")
def up(port: int = PORT, as_json: bool = JSON) -> int:
    """Start the embedded AWS, or do nothing if it already runs; waits until it answers."""
    ui.set_json_mode(as_json)
    info, started = embedded.up(find_root(), port)
    ui.console.print(f"embedded AWS {'started' if started else 'already running'} at {info.endpoint} "
                     f"(pid {info.pid}, log {info.log})")
    if as_json:
        ui.emit_json({**_doc(info), "started": started})
    return 0


@local_app.command("down")
def down(as_json: bool = JSON) -> int:
    """Stop the embedded AWS this project started (only that pid); its data is gone afterwards."""
    ui.set_json_mode(as_json)
    info = embedded.down(find_root())
    ui.console.print(f"stopped the embedded AWS (pid {info.pid})" if info else "the embedded AWS was not running")
    if as_json:
        ui.emit_json({"stopped": info is not None})
    return 0


@local_app.command("status")
def status(as_json: bool = JSON) -> int:
    """Say whether the embedded AWS runs, and where. Exit 0 running, 1 not running."""
    ui.set_json_mode(as_json)
    info = embedded.status(find_root())
    if info and not embedded.answers(info.port):
        ui.console.print(f"pid {info.pid} is alive but port {info.port} does not answer; see {info.log}")
    else:
        ui.console.print(f"running at {info.endpoint} (pid {info.pid})" if info else "not running")
    if as_json:
        ui.emit_json(_doc(info))
    return 0 if info else 1

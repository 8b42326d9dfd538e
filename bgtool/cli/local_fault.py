"""`bgtool local fault COLOR`: make a color's local processes answer badly, for rehearsals and tests."""

from __future__ import annotations

import typer

from bgtool.cli import ui
from bgtool.cli.local import local_app
from bgtool.config.project import find_root, state_dir
from bgtool.config.schema import Color, environment_path
from bgtool.embedded import faults
from bgtool.errors import BgtoolError

HELP = f"""Change how COLOR's processes on the local data plane answer, until --clear.

--errors PCT makes that share of requests answer 500 (0..{faults.MAX_ERRORS_PCT:g}); --latency SECONDS
delays every answer (0..{faults.MAX_LATENCY_SECONDS:g}); --down closes every connection unanswered, so
health checks fail. The health-check path is spared by --errors and --latency, as a static health
check usually is; only --down fails it. Options given together replace the color's fault; no option
shows it. Applies to the color's running processes within a request and to processes started later."""


@local_app.command("fault", help=HELP)
def fault_command(
    color: Color = typer.Argument(..., metavar="COLOR", help="blue or green.", show_default=False),
    env: str = typer.Option("local", "--env", help="Environment name: environments/ENV.yaml."),
    errors: float | None = typer.Option(None, "--errors", help="Percent of requests answering 500.",
                                        show_default=False),
    latency: float | None = typer.Option(None, "--latency", help="Seconds added to every answer.",
                                         show_default=False),
    down: bool = typer.Option(False, "--down", help="Close every connection without an answer."),
    clear: bool = typer.Option(False, "--clear", help="Remove the color's fault: answer normally."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
) -> int:
    ui.set_json_mode(as_json)
    root = find_root()
    if not environment_path(root, env).is_file():
        raise BgtoolError(f"--env {env}: environments/{env}.yaml does not exist",
                          hint="Nothing was changed. Name an environment that has a file under environments/.")
    changing = errors is not None or latency is not None or down
    if clear and changing:
        raise BgtoolError("bgtool local fault: --clear cannot be combined with --errors, --latency or --down",
                          hint="Nothing was changed. Clear the fault, or set a new one (which replaces it).")
    base = state_dir(root)
    path = faults.fault_file(base, env, color.value)
    if clear:
        faults.clear_fault(base, env, color.value)
    elif changing:
        wanted = faults.Fault(errors_pct=errors or 0.0, latency_seconds=latency or 0.0, down=down)
        faults.validate(wanted, "bgtool local fault", {"errors_pct": "--errors", "latency_seconds": "--latency"})
        faults.write_fault(base, env, color.value, wanted)
    current = faults.load_fault(path)
    _report(env, color, current, cleared=clear)
    if as_json:
        ui.emit_json({"env": env, "color": color.value, "active": current.active, "errors_pct": current.errors_pct,
                      "latency_seconds": current.latency_seconds, "down": current.down,
                      "file": str(path) if current.active else None})
    return 0


def _report(env: str, color: Color, fault: faults.Fault, *, cleared: bool) -> None:
    if fault.active:
        ui.console.print(f"{env} {color.value}: fault active: {fault.describe()}")
        ui.console.print(f"  clear it with: bgtool local fault {color.value} --env {env} --clear", style="dim")
    else:
        ui.console.print(f"{env} {color.value}: {'fault cleared; ' if cleared else ''}no fault, answering normally")

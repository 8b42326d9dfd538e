"""`bgtool render|plan|apply|status ENV`: the environment as Terraform layers."""

from __future__ import annotations

from pathlib import Path

import typer
from botocore.exceptions import BotoCoreError, ClientError

from bgtool.aws.live import read_live
from bgtool.cli import ui
from bgtool.cli.app import app
from bgtool.cli.common import ENV, JSON, YES, confirmer, open_workspace, plan_approver, print_plan
from bgtool.cli.reports import plan_markdown, switch_headline
from bgtool.release.switch import gitops_handler
from bgtool.terraform.layers import LayerPlan, apply_layers, plan_layers, select_layers
from bgtool.terraform.workspace import Workspace

LAYER = typer.Option(None, "--layer", "-l", help="Only this layer (repeatable): base, blue, green, traffic.")


@app.command()
def render(env: str = ENV, as_json: bool = JSON) -> int:
    """Render build/ENV/{base,blue,green,traffic}/ from the templates. Exit 0, or 1 on bad input."""
    ui.set_json_mode(as_json)
    ws = open_workspace(env)
    dirs = ws.render()
    for layer, path in dirs.items():
        ui.console.print(f"rendered {layer:8} {path}")
    if as_json:
        ui.emit_json({"env": env, "layers": {k: str(v) for k, v in dirs.items()}})
    return 0


@app.command()
def plan(
    env: str = ENV,
    layer: list[str] | None = LAYER,
    as_json: bool = JSON,
    markdown: Path | None = typer.Option(None, "--markdown", help="Also write a pull-request comment to FILE."),
) -> int:
    """Show per layer what would be added, changed, destroyed.

    With --markdown, also write a pull-request comment: per layer add/change/destroy with the
    resource addresses, headed by the color switch in people's words when the file's active_color
    differs from the live weights. Exit 0 nothing to do; 2 changes pending; 1 error.
    """
    ui.set_json_mode(as_json)
    ws = open_workspace(env)
    plans = plan_layers(ws, select_layers(layer))
    print_plan(plans)
    failed = [p for p in plans if p.status == "error"]
    if markdown:
        _write_plan_markdown(ws, plans, markdown)
    if as_json:
        ui.emit_json({"env": env, "layers": [p.to_dict() for p in plans]})
    if failed:
        for p in failed:
            ui.console.print(p.error or "", markup=False)
        return 1
    return 2 if any(p.status != "no-changes" for p in plans) else 0


def _write_plan_markdown(ws: Workspace, plans: list[LayerPlan], path: Path) -> None:
    """The headline needs live weights and target health; without them the comment still lists the plan."""
    try:
        live = read_live(ws.aws, ws.config, ws.env)
    except (ClientError, BotoCoreError) as exc:
        ui.console.print(f"[yellow]live weights unreadable, no switch headline[/]: {exc}", soft_wrap=True)
        live = None
    path.write_text(plan_markdown(ws.env, plans, switch_headline(ws.env, ws.config, live)), encoding="utf-8")
    ui.console.print(f"plan summary written to {path}")


@app.command()
def apply(env: str = ENV, layer: list[str] | None = LAYER, yes: bool = YES, as_json: bool = JSON) -> int:
    """Apply base, then blue and green, then traffic; each layer's plan is shown first.

    Exit 0 applied (or nothing to do); 1 failed or declined (the output names the layers already
    applied and the command that resumes).
    """
    ui.set_json_mode(as_json)
    ws = open_workspace(env)
    created = ws.prepare()
    for what in created:
        ui.console.print(f"created state backend {what}")
    results = apply_layers(ws, select_layers(layer), plan_approver(yes, f"bgtool apply {env}", env),
                           traffic_handler=gitops_handler(confirmer(yes, f"bgtool apply {env}")))
    ui.table(f"{env}: apply", ["layer", "result", "add", "change", "destroy"],
             [[r.layer, r.status, r.add, r.change, r.destroy] for r in results])
    if as_json:
        ui.emit_json({"env": env, "layers": [r.to_dict() for r in results]})
    return 1 if any(r.status == "declined" for r in results) else 0


"""`bgtool render|plan|apply|status ENV`: the environment as Terraform layers."""

from __future__ import annotations

from pathlib import Path

import typer
from botocore.exceptions import BotoCoreError, ClientError

from bgtool.aws.live import read_live
from bgtool.cli import ui
from bgtool.cli.app import app
from bgtool.cli.common import ENV, JSON, YES, confirmer, open_workspace, plan_approver, print_plan
from bgtool.cli.database import plan_database_markdown
from bgtool.cli.reports import plan_markdown, switch_headline
from bgtool.compute import compute_for
from bgtool.errors import BgtoolError
from bgtool.events import Confirm, Question
from bgtool.release.infra import InfraApply, mark_plans
from bgtool.terraform.layers import LayerPlan, plan_layers, select_layers
from bgtool.terraform.workspace import Workspace

LAYER = typer.Option(None, "--layer", "-l", help="Only this layer (repeatable): base, blue, green, traffic.")


@app.command()
def render(env: str = ENV, as_json: bool = JSON) -> int:
    """Render build/ENV/{base,blue,green,traffic}/ from the templates. Exit 0, or 1 on bad input."""
    ui.set_json_mode(as_json)
    ws = open_workspace(env, render_only=True)
    dirs = ws.render()
    for layer, path in dirs.items():
        ui.console.print(f"rendered {layer:8} {ui.safe(path)}")
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
    mark_plans(ws, plans)
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
        live = read_live(ws.aws, ws.config, compute_for(ws).live)
    except (ClientError, BotoCoreError) as exc:
        ui.console.print(f"[yellow]live weights unreadable, no switch headline[/]: {ui.safe(exc)}", soft_wrap=True)
        live = None
    text = plan_markdown(ws.env, plans, switch_headline(ws.env, ws.config, live)) + plan_database_markdown(ws)
    path.write_text(text, encoding="utf-8")
    ui.console.print(f"plan summary written to {ui.safe(path)}")


RELEASE = typer.Option(False, "--release", help="Release pending changes of the live color blue/green: the idle "
                       "color first (at the live version), gate, stepped switch, then the old color.")
ALLOW_REPLACE = typer.Option(False, "--allow-replace", help="Without a terminal, allow (with --yes) a plan that "
                             "replaces or destroys the load balancer, a target group or a listener.")
ACCEPT_INCONCLUSIVE = typer.Option(False, "--accept-inconclusive", help="A switch this apply performs (GitOps, "
                                   "--release) goes on when the gate or a step had too little data to judge "
                                   "(recorded in the history).")


@app.command()
def apply(env: str = ENV, layer: list[str] | None = LAYER, yes: bool = YES, as_json: bool = JSON,
          release: bool = RELEASE, allow_replace: bool = ALLOW_REPLACE,
          accept_inconclusive: bool = ACCEPT_INCONCLUSIVE) -> int:
    """Apply base, the idle color, traffic; the live color's layer only when that is safe.

    Capacity (desired/min/max) and alarm changes of the live color apply directly. Any other change
    to it is a release: refused (exit 1, nothing applied, the changes and the command named) unless
    --release, which rolls it out blue/green. A plan that replaces or destroys the load balancer, a
    target group or a listener needs a second confirmation on a terminal, or --yes --allow-replace
    without one. Exit 0 applied (or nothing to do); 1 refused, failed or declined (the output names
    the layers already applied and the command that resumes).
    """
    ui.set_json_mode(as_json)
    ws = open_workspace(env, live="apply")
    created = ws.prepare()
    for what in created:
        ui.console.print(f"created state backend {ui.safe(what)}")
    command = f"bgtool apply {env}" + (" --release" if release else "")
    run = InfraApply(ws, plan_approver(yes, command, env), confirmer(yes, command),
                     routing_confirmer(allow_replace, command), release=release,
                     accept_inconclusive=accept_inconclusive)
    results = run.run(select_layers(layer))
    ui.close_live()
    ui.table(f"{env}: apply", ["layer", "result", "add", "change", "destroy", "detail"],
             [[r.layer, r.status, r.add, r.change, r.destroy, r.detail] for r in results])
    if as_json:
        ui.emit_json({"env": env, "layers": [r.to_dict() for r in results]})
    return 1 if any(r.status == "declined" for r in results) else 0



def routing_confirmer(allow_replace: bool, command: str) -> Confirm:
    """The second confirmation of a plan that takes traffic routing away: --yes never answers it.

    On a terminal a person types 'yes'; without one only --allow-replace lets it through.
    """

    def confirm(question: Question) -> bool:
        if ui.interactive():
            with ui.paused():
                ui.console.print(question.summary, markup=False, soft_wrap=True)
                return ui.confirm(question.text)
        if allow_replace:
            return True
        raise BgtoolError(f"{question.text.split(';')[0]}; refused without a terminal to confirm on, "
                          "nothing of that layer was applied",
                          hint=f"Run '{command} --yes --allow-replace' if that is intended.")

    return confirm

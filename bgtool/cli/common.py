"""What every command shares: its options, how it opens a workspace, and the one confirmation policy.

Defined once so that `--yes`, `--json` and ENV mean the same thing in every command, and so that
"no terminal and no --yes" is refused the same way everywhere (before anything changes).
"""

from __future__ import annotations

import typer

from bgtool.aws.errors import Target
from bgtool.cli import ui
from bgtool.compute import require_operable
from bgtool.config.project import find_root
from bgtool.errors import BgtoolError
from bgtool.events import Confirm, Question
from bgtool.terraform.layers import RELEASE, Approver, LayerPlan
from bgtool.terraform.workspace import Workspace

ENV = typer.Argument(..., help="Environment name: environments/ENV.yaml.", show_default=False)
JSON = typer.Option(False, "--json", help="Print one JSON document on stdout; progress stays on stderr.")
YES = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation (automation).")


_opened: list[Workspace] = []


def open_workspace(env: str, *, live: str = "", render_only: bool = False) -> Workspace:
    """The environment's workspace, with progress rendered on stderr.

    LIVE names an operation that moves or releases something: on a terminal (without --json) its
    progress is the live panel instead of lines. It is remembered so that the error policy can say which AWS
    (endpoint, region, profile) a failure happened against and name the environment in the command
    that recovers. Unless the command only renders, an environment whose compute kind bgtool cannot
    operate yet is refused here, before any lock, state or AWS call (bgtool.compute.require_operable).
    """
    root = find_root()
    if live and ui.on_terminal() and not ui.json_mode():
        from bgtool.cli.panel import LivePanel  # rich's Live and the reader thread: only where shown

        ws = Workspace(root, env, emit=LivePanel(root, env, operation=live))
    else:
        ws = Workspace(root, env, emit=ui.Reporter())
    if not render_only:
        require_operable(ws.loaded)
    _opened[:] = [ws]
    return ws


def current_target() -> Target | None:
    """The AWS of the workspace this command opened, if it opened one."""
    return _opened[-1].aws.target if _opened else None


def current_env() -> str | None:
    return _opened[-1].env if _opened else None


def forget_workspace() -> None:
    """Each run starts without one (several runs share a process in tests)."""
    _opened.clear()


def refuse_without_terminal(yes: bool, command: str) -> None:
    """Refuse up front (before a lock or a change) when nobody could answer a prompt."""
    if not yes and not ui.interactive():
        raise BgtoolError(f"'{command}' changes things and there is no terminal to confirm on; nothing was changed",
                          hint=f"Run '{command} --yes' in automation.")


def confirmer(yes: bool, command: str) -> Confirm:
    """--yes confirms; a person confirms on a terminal; with neither, the operation is refused."""

    def confirm(question: Question) -> bool:
        if yes:
            return True
        refuse_without_terminal(yes, command)
        with ui.paused():
            if question.summary:
                ui.console.print(question.summary, markup=False, soft_wrap=True)
            if question.details:
                ui.table("checks", ["check", "result", "evidence"],
                         [[c.name, "pass" if c.passed else "FAIL", c.evidence] for c in question.details])
            return ui.confirm(question.text)

    return confirm


def print_plan(plans: list[LayerPlan]) -> None:
    from bgtool.release.infra import DESCRIPTION, LOAD_BALANCER  # not loaded by commands that print no plan

    for p in plans:
        if p.status in ("blocked", "error"):
            ui.console.print(f"[bold]{p.layer}[/]: [yellow]{p.status}[/] {ui.safe(p.error)}", soft_wrap=True)
            continue
        word = f"{p.add} to add, {p.change} to change, {p.destroy} to destroy"
        word = "no changes" if p.status == "no-changes" else word
        live = " (live color)" if p.live else ""
        ui.console.print(f"[bold]{p.layer}[/]{live}: {word}")
        for r in p.resources:
            kind = p.marks.get(r.address)
            style = {RELEASE: "bold magenta", LOAD_BALANCER: "bold red"}.get(kind or "", "cyan")
            mark = f"  [{style}]<- {DESCRIPTION[kind]}[/]" if kind else ""
            ui.console.print(f"    {r.action:8} {ui.safe(r.address)}{mark}")


def plan_approver(yes: bool, command: str, env: str) -> Approver:
    """Show each layer plan, then ask under the one confirmation policy."""
    confirm = confirmer(yes, command)

    def approve(plan: LayerPlan) -> bool:
        with ui.paused():
            print_plan([plan])
            return confirm(Question(f"Apply these changes to {env}/{plan.layer}?"))

    return approve

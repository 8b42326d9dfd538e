"""`bgtool drift` and `bgtool changed`: what the nightly and the pull-request pipelines run."""

from __future__ import annotations

from pathlib import Path

import typer

from bgtool.cli import ui
from bgtool.cli.app import app
from bgtool.cli.reports import drift_markdown
from bgtool.config.changed import changed_environments
from bgtool.config.project import find_root
from bgtool.config.schema import list_environments
from bgtool.drift.collect import Checker
from bgtool.drift.model import DriftReport
from bgtool.errors import BgtoolError

JSON = typer.Option(False, "--json", help="Print one JSON document on stdout (docs/drift-json-schema.md).")


@app.command()
def drift(
    envs: list[str] | None = typer.Argument(None, help="Environments to check.", show_default=False),
    all_envs: bool = typer.Option(False, "--all", help="Check every environments/*.yaml."),
    as_json: bool = JSON,
    markdown: Path | None = typer.Option(None, "--markdown", help="Also write a markdown report to this file."),
    jobs: int | None = typer.Option(None, "--jobs", min=1, help="Terraform processes at once (default: CPUs, >= 2)."),
) -> int:
    """Compare live AWS with Terraform state, the repo and the environment file, per layer.

    Reports resources changed or deleted outside Terraform, configuration not yet applied, the
    file's active_color against the live listener weights, blue/green parity (rendered and live)
    and stale operation locks, each with the command that reconciles it.
    Exit 0 clean; 2 drift found; 1 a check failed in any environment (the other environments'
    findings are still reported, and an error wins over drift: the check was incomplete).
    """
    ui.set_json_mode(as_json)
    root = find_root()
    names = _targets(root, envs or [], all_envs)
    report = Checker(root, jobs=jobs, progress=lambda msg: ui.console.print(msg, markup=False)).run(names)
    _print(report)
    if markdown:
        markdown.write_text(drift_markdown(report), encoding="utf-8")
        ui.console.print(f"markdown report written to {ui.safe(markdown)}")
    if as_json:
        ui.emit_json(report.to_dict())
    return report.exit_code


def _targets(root: Path, envs: list[str], all_envs: bool) -> list[str]:
    if all_envs and envs:
        raise BgtoolError("give environment names or --all, not both")
    names = list_environments(root) if all_envs else list(dict.fromkeys(envs))
    if not names:
        raise BgtoolError("no environment to check", hint="Name one or more (bgtool drift ENV) or pass --all.")
    return names


def _print(report: DriftReport) -> None:
    for env in report.environments:
        if env.items:
            ui.table(f"{env.env}: {env.status}", ["kind", "layer", "what", "reconcile with"],
                     [[i.kind, i.layer or "-", i.summary, i.reconcile] for i in env.items])
        else:
            ui.console.print(f"[bold]{ui.safe(env.env)}[/]: {'no drift' if env.status == 'clean' else env.status}")
        for error in env.to_dict()["errors"]:
            ui.console.print(f"[red]error[/] {ui.safe(env.env)}: {ui.safe(error)}", soft_wrap=True)
    ui.console.print(f"[bold]{ui.safe(report.headline())}[/]")


@app.command()
def changed(
    base: str = typer.Option(..., "--base", help="Git ref to compare with, e.g. origin/main."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
) -> int:
    """List the environments a change touches since BASE (merge base), prod last.

    Environment files touch their environment; templates/, modules/, bgtool/ and pyproject.toml
    touch every environment. stdout: one changed environment per line (deleted ones are only
    reported, on stderr and in --json, never planned or applied). Exit 0.
    """
    ui.set_json_mode(as_json)
    root = find_root()
    found = changed_environments(root, base)
    for c in found:
        ui.console.print(f"{c.status:8} {c.env}  {'; '.join(c.reasons)}", markup=False)
    if not found:
        ui.console.print(f"no environment changed since {ui.safe(base)}")
    if as_json:
        ui.emit_json({"base": base, "environments": [c.to_dict() for c in found]})
    else:
        for c in found:
            if c.status == "changed":
                print(c.env)
    return 0

"""`bgtool drift` and `bgtool changed`: what the nightly and the pull-request pipelines run."""

from __future__ import annotations

from pathlib import Path

import typer

from bgtool.cli import ui
from bgtool.cli.app import app
from bgtool.cli.reports import drift_markdown
from bgtool.config.changed import Changed, changed_environments, every_environment, is_embedded, split_embedded
from bgtool.config.changed import since_applied as since_applied_envs
from bgtool.config.project import find_root
from bgtool.config.schema import list_environments
from bgtool.drift.collect import Checker
from bgtool.drift.model import DriftReport
from bgtool.errors import BgtoolError
from bgtool.records.history import read_applied_from
from bgtool.terraform.workspace import load

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
    base: str | None = typer.Option(None, "--base", help="Git ref to compare with, e.g. origin/main."),
    since_applied: bool = typer.Option(False, "--since-applied", help="Per environment, compare HEAD with the "
                                       "commit it was last applied from (its history; reads AWS)."),
    all_envs: bool = typer.Option(False, "--all", help="Every environment file (the nightly drift check)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
) -> int:
    """List the environments a change touches, prod last: since BASE (merge base), since each was last
    applied (--since-applied), or all of them (--all).

    Environment files touch their environment; templates/, modules/, bgtool/ and pyproject.toml
    touch every environment. --since-applied counts an environment as changed when no complete
    `bgtool apply` from a commit of this repository is in its history. Environments on the embedded
    AWS (aws.endpoint) are reported apart, on stderr and under "embedded" in --json, never on stdout:
    a pipeline has no embedded AWS to run them against. stdout: one changed environment per line
    (deleted ones are only reported, on stderr and in --json, never planned or applied). Exit 0.
    """
    ui.set_json_mode(as_json)
    if [base is not None, since_applied, all_envs].count(True) != 1:
        raise BgtoolError("give exactly one of --base REF, --since-applied, --all",
                          hint="--base for a pull request, --since-applied for the merge pipeline, --all for drift.")
    root = find_root()
    existing = list_environments(root)
    embedded = [env for env in existing if is_embedded(root, env)]
    if all_envs:
        found, what = every_environment(root), "in environments/"
    elif since_applied:
        real = [env for env in existing if env not in embedded]
        found = since_applied_envs(root, {env: _applied_from(root, env) for env in real}, existing)
        found += [Changed(env, "changed", ["no pipeline applies it"]) for env in embedded]  # reported apart below
        what = "since each was last applied"
    else:
        found, what = changed_environments(root, str(base)), f"since {base}"
    found, skipped = split_embedded(found, embedded)
    for c in found:
        ui.console.print(f"{c.status:8} {c.env}  {'; '.join(c.reasons)}", markup=False)
    for c in skipped:
        ui.console.print(f"embedded {c.env}  (targets the embedded AWS: left out) {'; '.join(c.reasons)}",
                         markup=False)
    if not found:
        ui.console.print(f"no environment changed {ui.safe(what)}")
    if as_json:
        ui.emit_json({"base": base, "since_applied": since_applied, "environments": [c.to_dict() for c in found],
                      "embedded": [c.to_dict() for c in skipped]})
    else:
        for c in found:
            if c.status == "changed":
                print(c.env)
    return 0


def _applied_from(root: Path, env: str) -> str | None:
    """The commit ENV was last applied from; a file that does not load cannot say, so it counts as never
    applied (its apply job then reports the file's problem)."""
    try:
        loaded = load(root, env)
    except BgtoolError:
        return None
    return read_applied_from(root, env, loaded.config)

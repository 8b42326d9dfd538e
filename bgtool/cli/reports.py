"""Markdown for people: the drift report (chat, issue) and the plan summary (pull-request comment).

Pure functions of already collected facts, so the wording is unit-tested and the same facts feed
the JSON documents.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bgtool.aws.live import LiveState
from bgtool.config.schema import Environment
from bgtool.database.check import DatabaseReport
from bgtool.drift.model import DriftReport, EnvReport
from bgtool.release.infra import DESCRIPTION, LOAD_BALANCER
from bgtool.terraform.layers import RELEASE, LayerPlan

_MARK = {"clean": "✅", "drift": "⚠️", "error": "❌"}


def _cell(value: Any) -> str:
    """A markdown table cell: one line, pipes escaped."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def drift_markdown(report: DriftReport) -> str:
    lines = [f"# {_MARK[report.status]} bgtool drift: {report.headline()}", "",
             f"Checked at {report.checked_at}.", ""]
    for env in report.environments:
        lines += _env_section(env)
    return "\n".join(lines).rstrip() + "\n"


def _env_section(env: EnvReport) -> list[str]:
    lines = [f"## {_MARK[env.status]} {env.env}: {env.status}", ""]
    errors = env.to_dict()["errors"]
    lines += [f"- error: {_cell(e)}" for e in errors] + ([""] if errors else [])
    blocked = [layer for layer in env.layers if layer.status == "blocked"]
    lines += [f"- layer {b.layer} not checked: {_cell(b.error)}" for b in blocked] + ([""] if blocked else [])
    if not env.items:
        return [*lines, "No drift.", ""]
    lines += ["| kind | layer | what | reconcile with |", "|---|---|---|---|"]
    for item in env.items:
        what = item.summary
        if item.changes:
            what += ": " + "; ".join(f"`{c.attribute}` {c.before!r} → {c.after!r}" for c in item.changes[:6])
        lines.append(f"| {item.kind} | {item.layer or '-'} | {_cell(what)} | `{_cell(item.reconcile)}` |")
    return [*lines, ""]


def switch_headline(env: str, config: Environment, live: LiveState | None) -> str | None:
    """People's words for a color change: the file's active_color against the live weights."""
    if live is None:
        return None
    production = live.listener(config.listeners.production_port)
    from_color = production.live_color if production else None
    to = config.active_color
    if production is None or from_color == to.value:
        return None
    target = live.colors.get(to.value)
    healthy = f"{target.healthy_targets}/{len(target.targets)}" if target else "0/0"
    steps = "/".join(str(s) for s in config.traffic.steps)
    start = from_color or f"split ({', '.join(f'{c} {w}' for c, w in sorted(production.weights.items()))})"
    return (f"{env}: switch {start} → {to.value} ({to.value} {config.colors.of(to).version}, targets "
            f"{healthy} healthy now; steps {steps}, bake {config.traffic.bake_seconds} s)")


def _mark(plan: LayerPlan, address: str) -> str:
    kind = plan.marks.get(address)
    if not kind:
        return ""
    return f" — **{DESCRIPTION[kind]}**" if kind in (RELEASE, LOAD_BALANCER) else f" — {DESCRIPTION[kind]}"


def _callouts(env: str, plans: Sequence[LayerPlan]) -> list[str]:
    """What a reviewer must not miss: a release of the live color, traffic routing taken away."""
    lines = []
    for p in plans:
        if p.release:
            n = sum(1 for kind in p.marks.values() if kind == RELEASE)
            lines.append(f"> 🔁 **{p.layer} is live: {n} change(s) will be released blue/green** (the idle color "
                         f"first at the live version, gate, stepped switch, then {p.layer}); applied by "
                         f"`bgtool apply {env} --release`.")
        routing = [a for a, kind in p.marks.items() if kind == LOAD_BALANCER]
        if routing:
            listed = ", ".join(f"`{a}`" for a in routing)
            lines.append(f"> ⛔ **{p.layer} replaces or destroys traffic routing** ({listed}): production does "
                         "not answer until it is recreated; applying needs a second confirmation.")
    return [*lines, ""] if lines else []


def plan_markdown(env: str, plans: Sequence[LayerPlan], headline: str | None) -> str:
    total = [sum(getattr(p, k) for p in plans) for k in ("add", "change", "destroy")]
    changed = any(p.status != "no-changes" for p in plans)
    lines = [f"### bgtool plan `{env}`", ""]
    if headline:
        lines += [f"**{headline}**", ""]
    lines += [f"{total[0]} to add, {total[1]} to change, {total[2]} to destroy" if changed else "No changes.", ""]
    lines += _callouts(env, plans)
    lines += ["| layer | result | add | change | destroy |", "|---|---|---|---|---|"]
    for p in plans:
        result = f"{p.status}, **will be released blue/green**" if p.release else p.status
        lines.append(f"| {p.layer}{' (live)' if p.live else ''} | {result} | {p.add} | {p.change} | {p.destroy} |")
    for p in plans:
        if p.resources or p.error:
            lines += ["", f"<details><summary>{p.layer}</summary>", ""]
            lines += [f"- `{r.action}` `{r.address}`" + _mark(p, r.address) for r in p.resources]
            lines += [f"- {_cell(p.error)}"] if p.error else []
            lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def database_markdown(report: DatabaseReport | None, error: str | None = None) -> str:
    """The database guard's verdict for the pull-request comment (ERROR when the check itself failed)."""
    lines = ["", "#### Database migrations", ""]
    if report is None:
        return "\n".join([*lines, f"❌ `bgtool db check` failed: {_cell(error)}", ""])
    pending = ", ".join(f"`{m.label}` {m.kind}" + (f" after {m.contract_after}" if m.contract_after else "")
                        for m in report.pending)
    serving = ", ".join(str(s) for s in report.verdict.serving)
    if report.verdict.ok:
        lines.append(f"✅ guard passed; pending: {pending or 'none'} (may serve: {serving})")
        return "\n".join([*lines, ""])
    lines += [f"❌ **refused**: pending {pending} would break a version that may serve ({serving})", "",
              "| file:line | statement | not backward compatible because | still needs the old shape |",
              "|---|---|---|---|"]
    lines += [f"| {_cell(b.migration)}:{b.line} | `{_cell(b.statement)}` | {_cell(b.why)} | "
              f"{_cell(b.needs_old_shape)} |" for b in report.verdict.blockers]
    return "\n".join([*lines, ""])

"""`bgtool report ENV [RECORD]`: a switch, rollback or release as a page to read afterwards."""

from __future__ import annotations

from pathlib import Path

import typer

from bgtool.aws.live import color_alb, target_group_arns
from bgtool.aws.metrics import MetricsReader, SeriesPoint, metrics_resolution
from bgtool.cli import ui
from bgtool.cli.app import app
from bgtool.cli.common import ENV, JSON, open_workspace
from bgtool.config.schema import Color
from bgtool.errors import BgtoolError
from bgtool.records.history import History, Record
from bgtool.release.report import REPORTED_OPERATIONS, render_html, window
from bgtool.terraform.workspace import Workspace

SHOWN_CHOICES = 10


@app.command()
def report(
    env: str = ENV,
    record_at: str = typer.Argument(None, metavar="RECORD", show_default=False,
                                    help="The record's time as 'bgtool history' shows it, or a unique prefix of "
                                         "it (default: the last switch, rollback or release)."),
    out: Path = typer.Option(None, "--out", help="Where to write the page (default: "
                             "build/reports/ENV-TIME.html under the project)."),
    as_json: bool = JSON,
) -> int:
    """One self-contained HTML page of a switch, rollback or release: who, what, the gate, the verdict,
    and each color's weight, requests/s, 5xx share and p99 over time with the steps marked.

    With --json: the page's path, the record, and how many metrics periods each color had.
    Exit 0 written; 1 no such record, or the history or metrics could not be read.
    """
    ui.set_json_mode(as_json)
    ws = open_workspace(env)
    record = choose(History.of(ws).read(), record_at, env)
    period = metrics_resolution(ws.config)
    series = read_series(ws, record, period)
    page = render_html(env, record, series, period)
    path = out or ws.root / "build" / "reports" / f"{env}-{record.at.replace(':', '-')}.html"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise BgtoolError(f"{env}: cannot write the report to {path}: {exc.strerror or exc}",
                          hint="Choose another place with --out PATH.") from None
    ui.console.print(f"{ui.safe(env)}: report of the {ui.safe(record.operation)} at {ui.safe(record.at)} "
                     f"({ui.safe(record.result)}) written to {ui.safe(path)}")
    if as_json:
        ui.emit_json({"path": str(path), "record": {"operation": record.operation, "result": record.result,
                                                    "at": record.at},
                      "periods": {color: len(points) for color, points in series.items()}})
    return 0


def choose(records: list[Record], wanted: str | None, env: str) -> Record:
    """The record to report: the last one that moved traffic, or the one whose time WANTED starts."""
    candidates = [r for r in records if r.operation in REPORTED_OPERATIONS]
    if not candidates:
        raise BgtoolError(f"{env}: no switch, rollback or release in the history yet: nothing to report",
                          hint=f"See 'bgtool history {env}'.")
    if wanted is None:
        return candidates[-1]
    matching = [r for r in candidates if r.at.startswith(wanted.strip())] if wanted.strip() else []
    if len(matching) == 1:
        return matching[0]
    recent = ", ".join(f"{r.at} ({r.operation} {r.result})" for r in reversed(candidates[-SHOWN_CHOICES:]))
    problem = "matches several records" if matching else "is not the time of a switch, rollback or release"
    raise BgtoolError(f"{env}: RECORD {wanted!r} {problem}; nothing was written",
                      hint=f"Give the time of one (or a unique start of it). The most recent: {recent}.")


def read_series(ws: Workspace, record: Record, period: int) -> dict[str, list[SeriesPoint]]:
    """Both colors' metrics over the record's window; a color without a load balancer or target group
    (never applied, destroyed since) is drawn without traffic rather than refused."""
    start, end = window(record, period)
    arns = target_group_arns(ws.aws, ws.config)
    series: dict[str, list[SeriesPoint]] = {}
    for color in Color:
        alb = color_alb(ws.aws, ws.config, color)
        arn = arns.get(color.value)
        reader = MetricsReader(ws.aws, alb["LoadBalancerArn"], period) if alb else None
        series[color.value] = reader.series(arn, start, end) if reader and arn else []
    return series

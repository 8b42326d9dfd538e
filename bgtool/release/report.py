"""A release you can read afterwards: one self-contained HTML page per switch, rollback or release.

The history record says what was decided (steps, verdicts, the gate, the restore) and when; the load
balancer metrics say what users got meanwhile. The page puts both on one time axis, so a reviewer sees
what each step did to each color's traffic without a console or a dashboard. Everything here is pure:
the caller reads the record and the series (bgtool.cli.report) and writes the page.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bgtool.aws.metrics import SeriesPoint
from bgtool.records.history import Record

REPORTED_OPERATIONS = ("switch", "rollback", "release")
COLORS = ("blue", "green")
LINE_COLORS = {"blue": "#1f6fd1", "green": "#1f9d3a"}
MARKER_COLORS = {"step": "#555555", "bake": "#8a6d00", "detected": "#c62828", "restored": "#6a1b9a"}
ROWS = ("traffic weight %", "requests/s", "5xx % of requests", "p99 ms")


@dataclass(frozen=True)
class Marker:
    """A moment the record names: a step applied, a bake's end and verdict, the detection, the restore."""

    at: datetime
    kind: str
    label: str


@dataclass
class Timeline:
    """What the page draws: each color's weight as a step function, its traffic per period, the markers."""

    weights: dict[str, list[tuple[datetime, int]]]
    rates: dict[str, list[tuple[datetime, float, float | None, float | None]]]
    """Per color: (period start, requests/s, 5xx % of requests or None, p99 ms or None)."""
    markers: list[Marker] = field(default_factory=list)


def parse_time(text: str) -> datetime:
    """The record's ISO times; one without an offset (written by hand, or by an older tool) is UTC, as
    bgtool writes them, so that every time of a record lands on the same axis."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def applied_steps(record: Record) -> list[dict[str, Any]]:
    """The steps the switch applied that carry a time (records written before times were kept have none)."""
    return [s for s in record.details.get("applied") or [] if s.get("at")]


def window(record: Record, period: int) -> tuple[datetime, datetime]:
    """The metrics to read: two periods before the first step (the baseline) to two after the record;
    a record without steps (a rollback, a release) gets ten periods before it."""
    end = parse_time(record.at)
    steps = applied_steps(record)
    start = parse_time(steps[0]["at"]) if steps else end - timedelta(seconds=8 * period)
    return start - timedelta(seconds=2 * period), end + timedelta(seconds=2 * period)


def weight_steps(record: Record, start: datetime) -> dict[str, list[tuple[datetime, int]]]:
    """Each color's production weight from START to the record: where the switch began (the restore's
    target, else all on the old color), each applied step at its time, the restore at detection plus the
    flip, and for a record without steps its final state at its own time."""
    restore = record.details.get("restore") or {}
    first = restore.get("to") or {record.from_color or "blue": 100}
    changes: list[tuple[datetime, dict[str, int]]] = [(start, first)]
    changes += [(parse_time(s["at"]), s["weights"]) for s in applied_steps(record)]
    if restore.get("detected_at") and restore.get("to"):
        took = restore.get("flip_seconds", restore.get("reconcile_seconds", 0)) or 0
        changes.append((parse_time(restore["detected_at"]) + timedelta(seconds=float(took)), restore["to"]))
    elif not applied_steps(record) and record.result == "succeeded" and record.to_color:
        changes.append((parse_time(record.at), {record.to_color: 100}))
    end = max(parse_time(record.at), changes[-1][0])
    return {c: [(at, int(w.get(c, 0))) for at, w in changes] + [(end, int(changes[-1][1].get(c, 0)))]
            for c in COLORS}


def markers(record: Record) -> list[Marker]:
    """The moments worth a vertical line, oldest first."""
    out: list[Marker] = []
    steps = applied_steps(record)
    restore = record.details.get("restore") or {}
    detected = parse_time(restore["detected_at"]) if restore.get("detected_at") else None
    for i, step in enumerate(steps):
        at = parse_time(step["at"])
        shares = " / ".join(f"{c} {step['weights'].get(c, 0)}%" for c in COLORS)
        out.append(Marker(at, "step", f"step {i + 1}: {shares}"))
        verdict = (step.get("traffic") or {}).get("verdict")
        if verdict:
            ended = parse_time(steps[i + 1]["at"]) if i + 1 < len(steps) else detected or parse_time(record.at)
            out.append(Marker(ended, "bake", f"bake {i + 1}: {verdict}"))
    if detected is not None:
        out.append(Marker(detected, "detected", "problem detected"))
        took = restore.get("flip_seconds", restore.get("reconcile_seconds"))
        if took is not None:
            out.append(Marker(detected + timedelta(seconds=float(took)), "restored", "production restored"))
    if not steps:
        out.append(Marker(parse_time(record.at), "step", f"{record.operation} {record.result}"))
    return sorted(out, key=lambda m: m.at)


def rates(points: list[SeriesPoint], period: int, start: datetime | None = None,
          end: datetime | None = None) -> list[tuple[datetime, float, float | None, float | None]]:
    """Counts per period as what a reader compares: requests per second, 5xx as a share, p99. A period
    between START and END without a datapoint served no request: it is drawn as 0 requests/s (and no
    5xx share or p99), not bridged by a line from its neighbours."""
    by_start = {p.start: p for p in points}
    if start is not None and end is not None:
        moment = datetime.fromtimestamp(start.timestamp() // period * period, start.tzinfo)
        while moment < end:
            by_start.setdefault(moment, SeriesPoint(moment, 0, 0, None))
            moment += timedelta(seconds=period)
    return [(p.start, round(p.requests / period, 3),
             round(100.0 * p.errors / p.requests, 3) if p.requests else None, p.p99_ms)
            for p in sorted(by_start.values(), key=lambda p: p.start)]


def timeline(record: Record, series: dict[str, list[SeriesPoint]], period: int) -> Timeline:
    start, end = window(record, period)
    return Timeline(weight_steps(record, start), {c: rates(series.get(c, []), period, start, end) for c in COLORS},
                    markers(record))


# --------------------------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------------------------


def render_html(env: str, record: Record, series: dict[str, list[SeriesPoint]], period: int) -> str:
    """One page that opens offline: plotly's JavaScript is inlined, every record string is escaped."""
    line = timeline(record, series, period)
    title = f"bgtool report: {env} {record.operation} {record.result} at {record.at}"
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{_e(title)}</title>",
        f"<style>{STYLE}</style></head><body>", _header(env, record), _verdict(record), _gate(record),
        _figure(line, period), "</body></html>"])


STYLE = ("body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse}"
         "td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}"
         ".pass{color:#1f7a34}.fail{color:#b71c1c}h1{font-size:1.4em}")


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _header(env: str, record: Record) -> str:
    versions = record.versions or {}
    source = record.source or {}
    commit = str(source.get("commit") or "unknown") + (" (file had uncommitted changes)" if source.get("dirty") else "")
    rows = [("environment", env), ("operation", record.operation), ("result", record.result),
            ("from → to", f"{record.from_color} ({versions.get(record.from_color or '', '?')}) → "
                          f"{record.to_color} ({versions.get(record.to_color or '', '?')})"),
            ("actor", record.actor), ("when", record.at),
            ("commit", commit)]
    cells = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"<h1>{_e(env)}: {_e(record.operation)} {_e(record.result)}</h1><table class=\"header\">{cells}</table>"


def _verdict(record: Record) -> str:
    reason = record.reason or ("completed" if record.result == "succeeded" else "no reason recorded")
    return f'<h2>Verdict</h2><p class="verdict">{_e(record.result)}: {_e(reason)}</p>'


def _gate(record: Record) -> str:
    gate = record.details.get("gate")
    if not isinstance(gate, dict):
        return "<h2>Gate</h2><p>no gate in this record</p>"
    rows = "".join(
        f"<tr><td>{_e(c.get('name'))}</td><td class=\"{'pass' if c.get('passed') else 'fail'}\">"
        f"{'pass' if c.get('passed') else 'FAIL'}</td><td>{_e(c.get('evidence'))}</td></tr>"
        for c in gate.get("checks") or [])
    passed = "passed" if gate.get("passed") else "did not pass"
    return (f"<h2>Gate ({_e(passed)})</h2><table class=\"gate\"><tr><th>check</th><th>result</th>"
            f"<th>evidence</th></tr>{rows}</table>")


def _shifts(marks: list[Marker]) -> list[int]:
    """Labels of moments close together (a bake's end and the next step, the detection and the flip) side
    by side instead of on top of each other: a label's width to the right per earlier one nearby."""
    if not marks:
        return []
    close = max(1.0, (marks[-1].at - marks[0].at).total_seconds() / 40)
    return [12 * sum(1 for m in marks[:i] if (mark.at - m.at).total_seconds() <= close)
            for i, mark in enumerate(marks)]


def _figure(line: Timeline, period: int) -> str:
    """Four rows over one time axis; imported here so that commands without a report never load plotly."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=4, cols=1, shared_xaxes=True, vertical_spacing=0.04, subplot_titles=ROWS)
    for color in COLORS:
        style = {"color": LINE_COLORS[color]}
        at, weight = zip(*line.weights[color], strict=True) if line.weights[color] else ((), ())
        fig.add_trace(go.Scatter(x=list(at), y=list(weight), name=color, legendgroup=color, line={**style,
                                 "shape": "hv"}, mode="lines"), row=1, col=1)
        points = line.rates[color]
        x = [p[0] for p in points]
        for row, index in ((2, 1), (3, 2), (4, 3)):
            fig.add_trace(go.Scatter(x=x, y=[p[index] for p in points], name=color, legendgroup=color,
                                     showlegend=False, mode="lines+markers", line=style), row=row, col=1)
    for mark, shift in zip(line.markers, _shifts(line.markers), strict=True):
        color = MARKER_COLORS.get(mark.kind, "#555555")
        fig.add_vline(x=mark.at, line={"color": color, "dash": "dot", "width": 1})
        fig.add_annotation(x=mark.at, y=1.0, yref="paper", text=_e(mark.label), showarrow=False, textangle=-90,
                           xanchor="right", yanchor="top", xshift=shift, font={"size": 10, "color": color})
    fig.update_layout(height=1100, margin={"t": 70, "l": 60, "r": 20, "b": 40}, template="plotly_white",
                      title={"text": f"each point: one {period} s metrics period", "x": 0.99, "xanchor": "right"},
                      legend={"orientation": "h", "y": 1.06, "x": 0})
    fig.update_yaxes(range=[-2, 102], row=1, col=1)
    for row in (2, 3, 4):
        fig.update_yaxes(rangemode="tozero", row=row, col=1)
    return fig.to_html(full_html=False, include_plotlyjs=True, config={"displaylogo": False})

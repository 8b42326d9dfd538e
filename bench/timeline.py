"""The zero-downtime benchmark's picture: what users got, second by second, through every phase.

The table says how many requests failed per phase; the timeline shows when, and which version was
answering meanwhile, so a reader sees a step, a rollback or a restore happen in the traffic itself.
`bucket` is pure (samples and phase times in, per-second counts out) and unit-tested; `render_html`
draws it with plotly in the style of `bgtool report` (one self-contained page that opens offline) and
`screenshot` takes a PNG of that page with headless Chromium, as the report test does.
"""

from __future__ import annotations

import html
import math
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from bgtool.release.report import LINE_COLORS, STYLE

CHROMIUM = Path("/usr/bin/chromium")
OK, INJECTED = "ok", "injected"
FAILURE_LABELS = {INJECTED: "injected 500 (by the application)"}
FAILURE_COLORS = ("#c62828", "#ef6c00", "#6a1b9a", "#00838f", "#5d4037")
INJECTED_COLOR = "#8a6d00"
PHASE_FILLS = ("#e3f2fd", "#fff3e0", "#f3e5f5", "#e8f5e9")
ROWS = ("answers/s by answering version", "failed or injected-error requests/s by kind")


class Sample(Protocol):
    """One request of the stream: when it was sent (monotonic seconds), its outcome and answering version."""

    @property
    def sent(self) -> float: ...

    @property
    def outcome(self) -> str: ...

    @property
    def version(self) -> str: ...


@dataclass(frozen=True)
class Span:
    """A named stretch of the run, in seconds since the timeline's start."""

    name: str
    start: float
    end: float


@dataclass
class Buckets:
    """Counts per whole second since the timeline's start: seconds[i] is the start of bucket i."""

    seconds: list[int]
    versions: dict[str, list[int]]
    """Per answering version (the version header, whatever the status): requests sent in that second."""
    failures: dict[str, list[int]]
    """Per outcome other than ok (a timeout, an HTTP status, the injected 500s): requests sent in that second."""
    phases: list[Span] = field(default_factory=list)
    marks: list[tuple[float, str]] = field(default_factory=list)
    """Moments worth a line (the weight changes), in seconds since the start, with their labels."""


def bucket(samples: Iterable[Sample], phases: Sequence[tuple[str, float, float]],
           marks: Sequence[tuple[float, str]] = ()) -> Buckets:
    """Per-second counts from the first sample or phase to the last; a second in which a version or a kind
    of failure saw nothing counts 0 (drawn as 0, not bridged by a line from its neighbours). Every time is
    a monotonic clock reading, as the benchmark takes them; the buckets count from the earliest one."""
    samples = list(samples)
    times = [s.sent for s in samples] + [t for _, start, end in phases for t in (start, end)]
    if not times:
        return Buckets([], {}, {})
    origin = min(times)
    size = math.floor(max(times) - origin) + 1
    versions: dict[str, list[int]] = {}
    failures: dict[str, list[int]] = {}
    for s in samples:
        i = math.floor(s.sent - origin)
        if s.version:
            versions.setdefault(s.version, [0] * size)[i] += 1
        if s.outcome != OK:
            failures.setdefault(s.outcome, [0] * size)[i] += 1
    spans = [Span(name, round(start - origin, 3), round(end - origin, 3)) for name, start, end in phases]
    lines = [(round(at - origin, 3), label) for at, label in marks if at >= origin]
    return Buckets(list(range(size)), dict(sorted(versions.items())), dict(sorted(failures.items())), spans, lines)


def render_html(title: str, buckets: Buckets, colors: dict[str, str], table: list[list[str]]) -> str:
    """One page that opens offline: the summary table and the timeline (plotly's JavaScript inlined).
    COLORS maps a version to the color that served it (blue, green), so it is drawn in that color."""
    head, *rows = table
    cells = "".join(f"<th>{html.escape(c)}</th>" for c in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{html.escape(title)}</title>",
        f"<style>{STYLE}</style></head><body>", f"<h1>{html.escape(title)}</h1>",
        f'<table class="phases"><tr>{cells}</tr>{body}</table>', _figure(buckets, colors), "</body></html>"])


def _label(kind: str) -> str:
    return FAILURE_LABELS.get(kind, kind)


def _figure(buckets: Buckets, colors: dict[str, str]) -> str:
    """Two rows over one time axis, each phase a labelled band; imported here so that the benchmark's
    measuring part never loads plotly."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.65, 0.35],
                        subplot_titles=ROWS)
    x = buckets.seconds
    for version, counts in buckets.versions.items():
        color = colors.get(version)
        fig.add_trace(go.Scatter(x=x, y=counts, name=f"{version} ({color})" if color else version, mode="lines",
                                 line={"color": LINE_COLORS.get(color or "", None), "width": 2, "shape": "hv"}),
                      row=1, col=1)
    others = iter(FAILURE_COLORS)
    for kind, counts in buckets.failures.items():
        color = INJECTED_COLOR if kind == INJECTED else next(others, "#555555")
        fig.add_trace(go.Scatter(x=x, y=counts, name=_label(kind), mode="lines", line={"color": color,
                                                                                        "shape": "hv"}),
                      row=2, col=1)
    if not buckets.failures:
        fig.add_annotation(text="no failed request", xref="x2 domain", yref="y2 domain", x=0.5, y=0.5,
                           showarrow=False, font={"size": 14, "color": "#1f7a34"})
    for i, span in enumerate(buckets.phases):
        fig.add_vrect(x0=span.start, x1=span.end, fillcolor=PHASE_FILLS[i % len(PHASE_FILLS)], opacity=0.9,
                      layer="below", line_width=0)
        # one line lower per phase: a phase of a second (the break-glass) must not hide its neighbour's name
        fig.add_annotation(x=span.start, y=1.0 - 0.035 * (i % 3), yref="paper", text=html.escape(span.name),
                           showarrow=False, xanchor="left", yanchor="top", font={"size": 11, "color": "#333"},
                           bgcolor="rgba(255,255,255,0.7)")
    for at, label in buckets.marks:
        fig.add_vline(x=at, line={"color": "#555555", "dash": "dot", "width": 1})
        # in the failures row, which is mostly empty, rather than across the versions' lines
        fig.add_annotation(x=at, y=1.0, xref="x2", yref="y2 domain", text=html.escape(label), showarrow=False,
                           textangle=-90, xanchor="right", yanchor="top", font={"size": 9, "color": "#555555"})
    fig.update_layout(height=760, margin={"t": 80, "l": 60, "r": 20, "b": 50}, template="plotly_white",
                      legend={"orientation": "h", "y": 1.1, "x": 0})
    fig.update_xaxes(title_text="seconds since the request stream started", row=2, col=1)
    fig.update_yaxes(rangemode="tozero")
    return fig.to_html(full_html=False, include_plotlyjs=True, config={"displaylogo": False})


def screenshot(page: Path, png: Path, size: tuple[int, int] = (1400, 1100)) -> str | None:
    """A PNG of PAGE as headless Chromium draws it offline; None when it worked, else why not (the HTML is
    the result, the PNG a convenience for the README)."""
    if not CHROMIUM.exists():
        return f"no {CHROMIUM}: scripts/ensure-chromium installs it"
    with tempfile.TemporaryDirectory(prefix="bench-chromium-") as profile:
        done = subprocess.run(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--hide-scrollbars", f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}",
             "--virtual-time-budget=10000", f"--screenshot={png}", page.resolve().as_uri()],
            capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0 or not png.exists():
        return f"chromium exited {done.returncode}: {done.stderr[-500:]}"
    return None

"""The live panel: one view of a release while it runs (switch, rollback, deploy, a GitOps apply) and of
an environment at rest (`bgtool watch`).

It replaces the scrolling lines on a terminal only; without one (CI, a pipe, `--json`) the commands
print what they always printed (ui.Reporter). The panel has two inputs: the operation's own events
(phase, countdown, verdicts) and a reading of AWS taken every few seconds on a thread of its own with
its own clients (weights, per-color traffic, health, alarms, lock), so a slow CloudWatch call never
holds up the release, and the operation never waits for the picture.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from bgtool.cli import ui
from bgtool.release.watch import ColorReading, PanelState, Reading, read_environment
from bgtool.terraform.workspace import Workspace

READ_EVERY_SECONDS = 2.0
_NOTE_STYLE = {"ok": "green", "warn": "yellow", "error": "red", "detail": "dim", "info": ""}


# -- what it looks like (pure: a state, a reading and the time in; a renderable out) -----------------
def render_panel(env: str, state: PanelState, reading: Reading | None, *, reading_error: str = "",
                 now: float | None = None, utc: datetime | None = None) -> RenderableType:
    parts: list[RenderableType] = [_headline(state, reading, now)]
    parts.append(_colors(reading) if reading else Text("reading AWS …", style="dim"))
    if state.steps:
        parts.append(_steps(state))
    if state.terraform or state.waiting:
        parts.append(_in_flight(state, now))
    if state.notes:
        parts.append(Text("\n").join(Text(f"  {text}", style=_NOTE_STYLE.get(level, ""))
                                      for level, text in state.notes))
    parts.append(_footer(reading, reading_error, utc))
    title = f"{env} · {state.operation}" if state.operation else env
    return Panel(Group(*parts), title=Text(title, style="bold"), title_align="left", expand=True)


def _headline(state: PanelState, reading: Reading | None, now: float | None) -> Text:
    line = Text()
    phase = state.activity() or ("at rest" if reading and not reading.lock else "")
    line.append("phase: ", style="dim").append(phase or "-", style="bold")
    left = state.seconds_left(now)
    if left is not None:
        line.append(f"  ⏱ {left:.0f}s left", style="bold cyan")
    if state.gate["passed"] or state.gate["failed"]:
        style = "red" if state.gate["failed"] else "green"
        line.append(f"  gate: {state.gate['passed']} passed, {state.gate['failed']} failed", style=style)
    line.append("\n")
    line.append("weights: ", style="dim").append(_weights(reading), style="bold")
    line.append("   lock: ", style="dim").append(reading.lock or "none" if reading else "-")
    return line


def _weights(reading: Reading | None) -> str:
    if reading is None:
        return "-"
    weights = reading.weights
    if not weights:
        return f"no production {'record' if reading.mode == 'dns' else 'listener'} yet"
    bar_width = 20
    blue, green = weights.get("blue", 0), weights.get("green", 0)
    filled = round(blue * bar_width / 100)
    return f"blue {blue} {'█' * filled}{'░' * (bar_width - filled)} {green} green ({reading.mode})"


def _colors(reading: Reading) -> Table:
    table = Table(expand=False, box=None, pad_edge=False, header_style="dim")
    for name in ("color", "role", "version", "weight", "req/s", "5xx", "p99", "healthy", "alarms"):
        table.add_column(name, justify="right" if name in ("weight", "req/s", "5xx", "p99") else "left")
    for c in reading.colors.values():
        table.add_row(*_color_row(c))
    return table


def _color_row(c: ColorReading) -> list[Text]:
    rate, stats = c.rate, c.traffic
    error_rate = stats.error_rate if stats else None
    healthy_style = "green" if c.targets and c.healthy == c.targets else "red" if c.targets else "dim"
    return [Text(c.color, style=f"bold {c.color}"), Text(c.role), Text(c.version),
            Text("-" if c.weight is None else f"{c.weight}%"),
            Text("-" if rate is None else f"{rate:.1f}"),
            Text("-" if error_rate is None else f"{error_rate:.1%}", style="red" if error_rate else ""),
            Text("-" if stats is None or stats.p99_ms is None else f"{stats.p99_ms:.0f} ms"),
            Text(f"{c.healthy}/{c.targets}", style=healthy_style),
            Text(", ".join(c.alarms_firing) or "none", style="bold red" if c.alarms_firing else "")]


def _steps(state: PanelState) -> Table:
    table = Table(expand=False, box=None, pad_edge=False, header_style="dim")
    for name in ("step", "weights", "verdict", "traffic"):
        table.add_column(name)
    for row in state.steps:
        verdict = Text(row.verdict or "…", style=ui.VERDICT_STYLE.get(row.verdict, ("dim", ""))[0])
        table.add_row(Text(row.label), Text(row.weights), verdict, Text(row.evidence, style="dim"))
    return table


def _in_flight(state: PanelState, now: float | None) -> Text:
    at = time.monotonic() if now is None else now
    lines = [f"  … {layer} {address} {action} ({at - started:.0f}s)"
             for (layer, address), (action, started) in list(state.terraform.items())[:6]]
    lines += [f"  … {subject}: {text}" for subject, text in state.waiting.items()]
    return Text("\n".join(lines), style="cyan")


def _footer(reading: Reading | None, error: str, utc: datetime | None) -> Text:
    if error:
        return Text(f"AWS could not be read: {error}", style="yellow")
    if reading is None:
        return Text("")
    seconds = ((utc or datetime.now(UTC)) - reading.at).total_seconds()
    window = ""
    if reading.window:
        lo, hi = reading.window
        window = f"; traffic over {lo:%H:%M:%S} to {hi:%H:%M:%S} UTC (published metrics)"
    note = f"; {reading.error}" if reading.error else ""
    return Text(f"read {max(0.0, seconds):.0f}s ago{window}{note}", style="dim")


# -- the sink and the watcher ---------------------------------------------------------------------------
class LivePanel:
    """Progress sink of a release at a terminal: the operation's events and a reading of AWS in one panel.

    The Live display starts with the first event and ends with `close` (the last frame stays on screen,
    followed by the command's own summary). `paused` lets a prompt take the terminal.
    """

    def __init__(self, root: Path, env: str, console: Console | None = None,
                 every: float = READ_EVERY_SECONDS, operation: str = "") -> None:
        self.root, self.env, self.every = root, env, every
        self.console = console or ui.console
        self.state = PanelState(operation=operation)
        self.reading: Reading | None = None
        self.reading_error = ""
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._reader: threading.Thread | None = None
        self._live: Live | None = None
        self._closed = False

    def __call__(self, event: object) -> None:
        with self._guard:
            self.state.apply(event)
        if not self._closed:
            self._start()
        if self._live is not None:
            self._live.refresh()

    def renderable(self) -> RenderableType:
        with self._guard:
            return render_panel(self.env, self.state, self.reading, reading_error=self.reading_error)

    def read_now(self, workspace: Workspace | None = None) -> Workspace | None:
        """Take one reading of AWS (the reader thread does this every few seconds) with WORKSPACE re-read
        (a switch rewrites the file's active color), or a new one; returns the workspace to read with next."""
        try:
            if workspace is None:
                workspace = Workspace(self.root, self.env)
            else:
                workspace.reload()
            reading = read_environment(workspace)
        except Exception as exc:  # the panel says what could not be read; the release goes on
            with self._guard:
                self.reading_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return workspace
        with self._guard:
            self.reading, self.reading_error = reading, ""
        return workspace

    def _start(self) -> None:
        if self._live is None:
            self._live = Live(get_renderable=self.renderable, console=self.console, refresh_per_second=2,
                              transient=False, redirect_stderr=False, redirect_stdout=False)
            self._live.start()
            ui.register_live(self)
        if self._reader is None:
            self._reader = threading.Thread(target=self._read_loop, name="bgtool-panel", daemon=True)
            self._reader.start()

    def _read_loop(self) -> None:
        """The first reading waits one interval: the operation's own first second (a break-glass flip is
        done in it) does not share the interpreter with creating clients for a picture."""
        workspace: Workspace | None = None
        while not self._stop.wait(self.every):
            workspace = self.read_now(workspace)

    def pause(self) -> None:
        if self._live is not None:
            self._live.stop()

    def resume(self) -> None:
        if self._live is not None and not self._closed:
            self._live.start()

    def close(self) -> None:
        """Stop reading and leave the last frame on screen."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._live is not None:
            self._live.refresh()
            self._live.stop()
            self._live = None
        ui.unregister_live(self)


def watch_until_interrupted(workspace: Workspace, every: float, console: Console | None = None) -> None:
    """Show the panel of the workspace's environment, read again every EVERY seconds, until Ctrl-C."""
    panel = LivePanel(workspace.root, workspace.env, console, every)
    panel.read_now(workspace)
    try:
        with Live(get_renderable=panel.renderable, console=panel.console, refresh_per_second=2, transient=False):
            while True:
                time.sleep(every)
                panel.read_now(workspace)
    except KeyboardInterrupt:
        return

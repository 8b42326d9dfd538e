"""Human output: progress, tables and prompts, always on stderr.

stdout is reserved for the one machine-readable document `--json` prints, so scripts can pipe
bgtool safely while people still see live progress.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from bgtool import events

# Logs of CI jobs are wider than 80 columns: do not squeeze tables there.
console = Console(stderr=True, highlight=False, soft_wrap=True, width=None if sys.stderr.isatty() else 160)

_VERB = {"create": "creating", "update": "updating", "delete": "destroying", "replace": "replacing", "read": "reading"}
_DONE = {"create": "created", "update": "updated", "delete": "destroyed", "replace": "replaced", "read": "read"}


_json_mode = False
_document: dict[str, Any] | None = None


def set_json_mode(enabled: bool) -> None:
    """Commands call this first, so an error is also reported as JSON on stdout."""
    global _json_mode
    _json_mode = enabled


def json_mode() -> bool:
    return _json_mode


def emit_json(document: dict[str, Any]) -> None:
    """Hand over the command's one document; the CLI's entry point prints it once the exit code is known.

    Deferring it keeps "exactly one document on stdout" true when a command fails after building
    its result (the error document replaces it), and lets one rule fill in `ok` for every command.
    """
    global _document
    _document = document


def flush_json(exit_code: int) -> None:
    """With --json, print the pending document; `ok` is true exactly when the exit code is 0 or 2 (the
    command did its job), unless the command said otherwise itself."""
    global _document
    document, _document = _document, None
    if document is not None and _json_mode:
        write_json({"ok": exit_code in (0, 2), **document})


def discard_json() -> None:
    global _document
    _document = None


def write_json(document: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def safe(value: object) -> str:
    """VALUE shown as it is inside a markup string: the one rule for text bgtool did not write itself.

    A version typed on the command line, a reason, an actor, a Terraform diagnostic, anything read
    from history records or from AWS may contain `[bold]` or `[/x]`; interpreted, it would restyle
    the output or make rich raise (an unmatched closing tag), so it is always escaped.
    """
    return escape(str(value))


def cell(value: object) -> Text:
    """A table cell: cells are data, never markup (see `safe`)."""
    return value if isinstance(value, Text) else Text(str(value))


class _Live(Protocol):
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def close(self) -> None: ...


_live: list[_Live] = []


def register_live(view: _Live) -> None:
    """A live view took the terminal: prompts pause it, and the command's end closes it."""
    _live.append(view)


def unregister_live(view: _Live) -> None:
    if view in _live:
        _live.remove(view)


@contextmanager
def paused() -> Iterator[None]:
    """The terminal to a person (a prompt, a plan to read) while a live view would redraw over it."""
    views = list(_live)
    for view in views:
        view.pause()
    try:
        yield
    finally:
        for view in views:
            view.resume()


def close_live() -> None:
    """End every live view, leaving its last frame: before a command's summary or its error."""
    for view in list(_live):
        view.close()


def on_terminal() -> bool:
    """Progress may redraw in place: stderr is a real terminal (FORCE_COLOR alone makes rich treat a CI
    log as one, where a redrawn panel would be a heap of frames)."""
    return console.is_terminal and sys.stderr.isatty()


def interactive() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


def confirm(question: str) -> bool:
    """Ask a person; without a terminal there is nobody to ask, so that is a refusal."""
    if not interactive():
        return False
    with paused():
        answer = console.input(f"[bold]{safe(question)}[/] Only 'yes' will be accepted: ")
    return answer.strip() == "yes"


class Reporter:
    """The CLI's sink for progress events (bgtool.events): lines on stderr, plus a live area for what
    is still running (Terraform resources in flight, a wait) when stderr is a terminal."""

    def __init__(self) -> None:
        self.in_flight: dict[tuple[str, str], tuple[str, float]] = {}
        self.waiting: dict[str, str] = {}
        self.live: Live | None = None

    def __call__(self, event: object) -> None:
        handler = getattr(self, f"_on_{type(event).__name__}", None)
        if handler is not None:
            handler(event)
        self._refresh()

    # -- events ---------------------------------------------------------------------------------
    def _on_Note(self, e: events.Note) -> None:
        console.print(_NOTE_STYLE[e.level].format(text=safe(e.text)), soft_wrap=True)

    def _on_CheckResult(self, e: events.CheckResult) -> None:
        mark = "[green]✓[/]" if e.passed else "[red]✗[/]"
        console.print(f"  {mark} {safe(e.scope)} {safe(e.name)}: {safe(e.evidence)}", soft_wrap=True)

    def _on_StepApplied(self, e: events.StepApplied) -> None:
        weights = safe(" / ".join(f"{c} {w}" for c, w in e.weights.items()))
        console.print(f"[green]✓[/] step {e.index}/{e.total}: production {weights} ({e.seconds:.1f}s)")

    def _on_TrafficJudged(self, e: events.TrafficJudged) -> None:
        style, mark = VERDICT_STYLE.get(e.verdict, ("yellow", "!"))
        console.print(f"[{style}]{mark}[/] {safe(e.phase)} traffic: {safe(e.text)} ({safe(e.verdict)})", soft_wrap=True)

    def _on_Restored(self, e: events.Restored) -> None:
        if e.ok:
            console.print(f"[yellow]↩ restored:[/] production 100% on {safe(e.color)} {safe(e.detail)}", soft_wrap=True)
        else:
            console.print(f"[red]✗ restore to {safe(e.color)} failed:[/] {safe(e.detail)}", soft_wrap=True)

    def _on_RecordWritten(self, e: events.RecordWritten) -> None:
        if e.error:
            console.print(f"[yellow]warning:[/] the {e.operation} history record could not be written: "
                          f"{safe(e.error)}", soft_wrap=True)

    def _on_Waiting(self, e: events.Waiting) -> None:
        text = f"{e.subject}: {e.text} ({e.elapsed:.0f}s)"
        if not console.is_terminal and self.waiting.get(e.subject, "").split(" (")[0] != text.split(" (")[0]:
            console.print(f"  {safe(text)}")
        self.waiting[e.subject] = text

    def _on_WaitOver(self, e: events.WaitOver) -> None:
        self.waiting.pop(e.subject, None)

    def _on_TerraformActivity(self, e: events.TerraformActivity) -> None:
        addr, action = e.address, e.action or ""
        if action == "read":  # data sources: noise, not progress
            return
        key = (e.layer, addr or "")
        if e.kind == "apply_start" and addr:
            self.in_flight[key] = (action, time.monotonic())
        elif e.kind in ("apply_complete", "apply_errored") and addr:
            _, started = self.in_flight.pop(key, (action, time.monotonic()))
            elapsed = e.elapsed if e.elapsed is not None else time.monotonic() - started
            ok = e.kind == "apply_complete"
            mark = "[green]✓[/]" if ok else "[red]✗[/]"
            word = _DONE.get(action, action) if ok else f"{_VERB.get(action, action)} failed"
            console.print(f"  {mark} [dim]{safe(e.layer)}[/] {safe(addr)} {safe(word)} ({elapsed:.0f}s)")
        elif e.kind == "diagnostic" and e.severity == "warning":
            console.print(f"  [yellow]warning[/] [dim]{safe(e.layer)}[/] {safe(e.message)}", soft_wrap=True)

    # -- the live area ----------------------------------------------------------------------------
    def _refresh(self) -> None:
        if not console.is_terminal:
            return
        busy = bool(self.in_flight or self.waiting)
        if busy and self.live is None:
            self.live = Live(self._render(), console=console, refresh_per_second=4, transient=True)
            self.live.start()
        elif not busy and self.live is not None:
            self.live.stop()
            self.live = None
        if self.live is not None:
            self.live.update(self._render())

    def _render(self) -> Text:
        now = time.monotonic()
        lines = [f"  … {layer} {addr} {_VERB.get(action, action)} ({now - started:.0f}s)"
                 for (layer, addr), (action, started) in self.in_flight.items()]
        lines += [f"  … {text}" for text in self.waiting.values()]
        return Text("\n".join(lines), style="cyan")

    def close(self) -> None:
        self.in_flight.clear()
        self.waiting.clear()
        self._refresh()


VERDICT_STYLE = {"pass": ("green", "✓"), "fail": ("red", "✗"), "inconclusive": ("yellow", "!")}
"""A traffic verdict's color and mark: the lines and the live panel show verdicts alike."""

_NOTE_STYLE = {
    "info": "{text}",
    "ok": "[green]✓[/] {text}",
    "warn": "[yellow]![/] {text}",
    "error": "[red]✗[/] {text}",
    "detail": "  [dim]{text}[/]",
}


def table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    t = Table(title=cell(title), title_justify="left", show_lines=False)
    for col in columns:
        t.add_column(col)
    for row in rows:
        t.add_row(*[cell(x) for x in row])
    console.print(t)

"""Human output: progress, tables and prompts, always on stderr.

stdout is reserved for the one machine-readable document `--json` prints, so scripts can pipe
bgtool safely while people still see live progress.
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from bgtool.terraform.events import Event

# Logs of CI jobs are wider than 80 columns: do not squeeze tables there.
console = Console(stderr=True, highlight=False, soft_wrap=True, width=None if sys.stderr.isatty() else 160)

_VERB = {"create": "creating", "update": "updating", "delete": "destroying", "replace": "replacing", "read": "reading"}
_DONE = {"create": "created", "update": "updated", "delete": "destroyed", "replace": "replaced", "read": "read"}


_json_mode = False


def set_json_mode(enabled: bool) -> None:
    """Commands call this first, so an error is also reported as JSON on stdout."""
    global _json_mode
    _json_mode = enabled


def json_mode() -> bool:
    return _json_mode


def emit_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def interactive() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


def confirm(question: str) -> bool:
    """Ask a person; without a terminal there is nobody to ask, so that is a refusal."""
    if not interactive():
        return False
    answer = console.input(f"[bold]{question}[/] Only 'yes' will be accepted: ")
    return answer.strip() == "yes"


class TerraformProgress:
    """Live per-resource progress for one layer's terraform run."""

    def __init__(self, layer: str) -> None:
        self.layer = layer
        self.in_flight: dict[str, tuple[str, float]] = {}
        self.live: Live | None = None

    def __call__(self, event: Event) -> None:
        addr, action = event.resource, event.action or ""
        if action == "read":  # data sources: noise, not progress
            return
        if event.kind == "apply_start" and addr:
            self.in_flight[addr] = (action, time.monotonic())
        elif event.kind in ("apply_complete", "apply_errored") and addr:
            _, started = self.in_flight.pop(addr, (action, time.monotonic()))
            elapsed = event.elapsed if event.elapsed is not None else time.monotonic() - started
            ok = event.kind == "apply_complete"
            mark = "[green]✓[/]" if ok else "[red]✗[/]"
            word = _DONE.get(action, action) if ok else f"{_VERB.get(action, action)} failed"
            console.print(f"  {mark} [dim]{self.layer}[/] {addr} {word} ({elapsed:.0f}s)")
        elif event.kind == "diagnostic" and event.raw.get("diagnostic", {}).get("severity") == "warning":
            console.print(f"  [yellow]warning[/] [dim]{self.layer}[/] {event.message}")
        self._refresh()

    def _refresh(self) -> None:
        if self.live is not None:
            self.live.update(self._render())

    def _render(self) -> Text:
        now = time.monotonic()
        lines = [
            f"  … {self.layer} {addr} {_VERB.get(action, action)} ({now - started:.0f}s)"
            for addr, (action, started) in self.in_flight.items()
        ]
        return Text("\n".join(lines), style="cyan")

    @contextmanager
    def shown(self):  # type: ignore[no-untyped-def]
        if not console.is_terminal:
            yield self
            return
        with Live(self._render(), console=console, refresh_per_second=4, transient=True) as live:
            self.live = live
            try:
                yield self
            finally:
                self.live = None


def table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    t = Table(title=title, title_justify="left", show_lines=False)
    for col in columns:
        t.add_column(col)
    for row in rows:
        t.add_row(*[str(x) for x in row])
    console.print(t)

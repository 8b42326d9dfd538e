"""Parsing of Terraform's machine-readable UI (`-json`) stream.

Pure functions over JSON lines, so that progress display, plan summaries and error mapping are
testable without running Terraform. Format: Terraform's "machine-readable UI" documentation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Diagnostic:
    severity: str
    summary: str
    detail: str = ""
    address: str | None = None
    filename: str | None = None
    line: int | None = None

    @property
    def location(self) -> str | None:
        if not self.filename:
            return None
        return f"{self.filename}:{self.line}" if self.line else self.filename

    def render(self) -> str:
        head = f"{self.severity.capitalize()}: {self.summary}"
        where = ", ".join(x for x in (self.address, self.location) if x)
        if where:
            head += f" [{where}]"
        return f"{head}\n  {self.detail.strip()}" if self.detail.strip() else head


@dataclass(frozen=True)
class Event:
    """One line of the stream; `kind` is Terraform's `type` field."""

    kind: str
    message: str
    raw: dict[str, Any]

    @property
    def resource(self) -> str | None:
        hook = self.raw.get("hook") or self.raw.get("change") or {}
        res = hook.get("resource") or {}
        return res.get("addr")

    @property
    def action(self) -> str | None:
        hook = self.raw.get("hook") or self.raw.get("change") or {}
        return hook.get("action")

    @property
    def elapsed(self) -> float | None:
        hook = self.raw.get("hook") or {}
        value = hook.get("elapsed_seconds")
        return float(value) if value is not None else None


@dataclass(frozen=True)
class ResourceChange:
    address: str
    action: str


@dataclass
class StreamSummary:
    """What a plan/apply stream said, accumulated event by event."""

    add: int = 0
    change: int = 0
    destroy: int = 0
    planned: list[ResourceChange] = field(default_factory=list)
    drifted: list[ResourceChange] = field(default_factory=list)
    applied: list[ResourceChange] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def has_changes(self) -> bool:
        return bool(self.add or self.change or self.destroy or self.planned)

    def feed(self, event: Event) -> None:
        handler = _FEEDERS.get(event.kind)
        if handler:
            handler(self, event)


def _on_summary(s: StreamSummary, e: Event) -> None:
    changes = e.raw.get("changes") or {}
    s.add, s.change, s.destroy = (int(changes.get(k, 0)) for k in ("add", "change", "remove"))


def _on_planned(s: StreamSummary, e: Event) -> None:
    if e.resource and e.action not in (None, "noop", "read"):
        s.planned.append(ResourceChange(e.resource, e.action))


def _on_drift(s: StreamSummary, e: Event) -> None:
    if e.resource:
        s.drifted.append(ResourceChange(e.resource, e.action or "update"))


def _on_applied(s: StreamSummary, e: Event) -> None:
    if e.resource:
        s.applied.append(ResourceChange(e.resource, e.action or ""))


def _on_errored(s: StreamSummary, e: Event) -> None:
    if e.resource:
        s.failed.append(e.resource)


def _on_diagnostic(s: StreamSummary, e: Event) -> None:
    s.diagnostics.append(parse_diagnostic(e.raw.get("diagnostic") or {}))


def _on_outputs(s: StreamSummary, e: Event) -> None:
    s.outputs = {k: v.get("value") for k, v in (e.raw.get("outputs") or {}).items()}


_FEEDERS = {
    "change_summary": _on_summary,
    "planned_change": _on_planned,
    "resource_drift": _on_drift,
    "apply_complete": _on_applied,
    "apply_errored": _on_errored,
    "diagnostic": _on_diagnostic,
    "outputs": _on_outputs,
}


def parse_line(line: str) -> Event | None:
    """One stdout line → Event; a non-JSON line (old init, crash output) becomes a 'text' event."""
    line = line.strip()
    if not line:
        return None
    try:
        raw = json.loads(line)
    except json.JSONDecodeError:
        return Event("text", line, {})
    if not isinstance(raw, dict):
        return Event("text", line, {})
    return Event(str(raw.get("type", "unknown")), str(raw.get("@message", "")), raw)


def parse_diagnostic(d: dict[str, Any]) -> Diagnostic:
    rng = d.get("range") or {}
    start = rng.get("start") or {}
    return Diagnostic(
        severity=str(d.get("severity", "error")),
        summary=str(d.get("summary", "")).strip(),
        detail=str(d.get("detail", "")),
        address=d.get("address"),
        filename=rng.get("filename"),
        line=start.get("line"),
    )


def summarize(lines: list[str]) -> StreamSummary:
    summary = StreamSummary()
    for line in lines:
        event = parse_line(line)
        if event:
            summary.feed(event)
    return summary

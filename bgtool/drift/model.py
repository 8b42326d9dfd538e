"""The drift report's data model: one document for people (markdown, tables) and scripts (JSON).

docs/drift-json-schema.md is the contract of `to_dict()`; bump SCHEMA_VERSION on any change that
is not a pure addition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1

# Kinds of drift items (the `kind` field of the JSON schema).
CHANGED = "changed"  # a resource was changed outside Terraform (the plan's resource_drift)
DELETED = "deleted"  # a resource was deleted outside Terraform (the plan's resource_drift)
PENDING = "pending"  # configuration in the repo not yet applied (the plan's resource_changes)
ACTIVE_COLOR = "active_color"  # the file's active_color against the live production listener
PARITY = "parity"  # blue and green differ beyond color and per-color values
UNMANAGED = "unmanaged"  # a live object Terraform does not manage (e.g. an extra ingress rule)
STALE_LOCK = "stale_lock"  # an operation lock older than lock.stale_after_minutes
IDLE_WORKERS = "idle_workers"  # workers running on the idle color (only the live color's consume)


@dataclass
class AttributeChange:
    attribute: str
    before: Any
    after: Any

    def to_dict(self) -> dict[str, Any]:
        return {"attribute": self.attribute, "before": self.before, "after": self.after}


@dataclass
class DriftItem:
    """One fact, reported once, with the command that reconciles it."""

    kind: str
    layer: str | None
    subject: str
    summary: str
    reconcile: str
    changes: list[AttributeChange] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "layer": self.layer, "subject": self.subject, "summary": self.summary,
            "reconcile": self.reconcile, "changes": [c.to_dict() for c in self.changes], "details": self.details,
        }


@dataclass
class LayerCheck:
    """How one layer's plan went: 'clean', 'drift', 'blocked' (upstream not applied) or 'error'.

    `refresh_exit` stays in the document for schema version 1 readers; it is always null since
    the drift check runs no separate refresh-only plan (the normal plan reports drift too).
    """

    layer: str
    status: str
    refresh_exit: int | None = None
    plan_exit: int | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class EnvReport:
    env: str
    items: list[DriftItem] = field(default_factory=list)
    layers: list[LayerCheck] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        """'error' wins over 'drift': a partial check must not read as a verdict."""
        if self.errors or any(layer.status == "error" for layer in self.layers):
            return "error"
        return "drift" if self.items else "clean"

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env, "status": self.status, "drift_count": len(self.items),
            "items": [i.to_dict() for i in self.items], "layers": [layer.to_dict() for layer in self.layers],
            "errors": self.errors + [f"layer {x.layer}: {x.error}" for x in self.layers if x.status == "error"],
        }


@dataclass
class DriftReport:
    environments: list[EnvReport]
    checked_at: str

    @property
    def drift_count(self) -> int:
        return sum(len(e.items) for e in self.environments)

    @property
    def drifted_envs(self) -> list[str]:
        return [e.env for e in self.environments if e.items]

    @property
    def exit_code(self) -> int:
        """1 if any environment errored (its check is incomplete), else 2 on drift, else 0.

        Error wins because "no drift found" is only true of a check that completed; the drift
        that was found is still in the report.
        """
        if any(e.status == "error" for e in self.environments):
            return 1
        return 2 if self.drift_count else 0

    @property
    def status(self) -> str:
        return {0: "clean", 1: "error", 2: "drift"}[self.exit_code]

    def headline(self) -> str:
        envs = len(self.environments)
        plural = "s" if envs != 1 else ""
        errored = [e.env for e in self.environments if e.status == "error"]
        failed = f"check failed in {', '.join(errored)}" if errored else ""
        if self.drift_count:
            text = (f"{self.drift_count} drift{'s' if self.drift_count != 1 else ''} in "
                    f"{len(self.drifted_envs)} of {envs} environment{plural}")
            return f"{text}; {failed}" if failed else text
        if failed:
            others = envs - len(errored)
            return failed + (f"; no drift in the other {others}" if others else "")
        return f"clean: no drift in {envs} environment{plural}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION, "checked_at": self.checked_at, "status": self.status,
            "exit_code": self.exit_code, "headline": self.headline(), "drift_count": self.drift_count,
            "environments": [e.to_dict() for e in self.environments],
        }

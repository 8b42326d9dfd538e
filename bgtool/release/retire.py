"""`bgtool retire ENV`: scale the idle color to zero once nobody can need it for a rollback.

After a switch the old color stays up for `retention_hours`, because a rollback to a running
color takes seconds and a rollback to a scaled-down one takes a deploy. Retire marks the color
`retired: true` in the environment file (so the file still says what runs) and applies only that
color's layer; a later `bgtool deploy` writes a version, which un-retires it and scales it back up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bgtool.config import envfile
from bgtool.config.schema import Color
from bgtool.errors import BgtoolError
from bgtool.records.history import History, Record
from bgtool.records.lock import OperationLock
from bgtool.release.deploy import Approver, ColorApply, Declined, apply_color, refuse_live, wait_for_color
from bgtool.terraform.workspace import Workspace

SWITCHING_OPERATIONS = ("switch", "rollback")


@dataclass
class RetireResult:
    env: str
    color: str
    version: str
    forced: bool
    apply: ColorApply
    last_switch_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, "env": self.env, "color": self.color, "version": self.version, "forced": self.forced,
                "layer": self.apply.to_dict(), "last_switch_at": self.last_switch_at}


def last_switch(history: History) -> Record | None:
    """The latest successful switch or rollback: either one made the idle color a rollback target."""
    found = [r for op in SWITCHING_OPERATIONS if (r := history.last(op, "succeeded")) is not None]
    return max(found, key=lambda r: datetime.fromisoformat(r.at), default=None)


def retire_allowed_at(last_switch_at: str | None, retention_hours: float) -> datetime | None:
    """Pure: when retiring becomes allowed (None: no switch recorded, nothing to keep it for)."""
    if last_switch_at is None:
        return None
    return datetime.fromisoformat(last_switch_at) + timedelta(hours=retention_hours)


def retention_left(allowed_at: datetime | None, at: datetime | None = None) -> timedelta:
    """Pure: how long the idle color must still be kept (zero when it may go)."""
    if allowed_at is None:
        return timedelta(0)
    return max(allowed_at - (at or datetime.now(UTC)), timedelta(0))


def retire(ws: Workspace, approve: Approver, *, force: bool = False) -> RetireResult:
    """Retire the idle color under the operation lock; refused inside the retention period.

    The lock comes first and the choice of color after it, on the file and the production weights as
    they are then: a switch that finished while this run waited for the lock made the other color idle.
    """
    with OperationLock.of(ws).held("retire the idle color"):
        ws.reload()
        color = ws.config.idle_color
        refuse_live(ws, color, "retire")
        history = History.of(ws)
        switched = last_switch(history)
        overridden = _check_retention(ws, color, switched, force)
        quiet = _check_quiet(ws, color, force)
        return _retire_locked(ws, color, history, switched, approve, overridden or quiet.get("overridden", False),
                              quiet)


def _check_retention(ws: Workspace, color: Color, switched: Record | None, force: bool) -> bool:
    """Raise inside the retention period unless forced; returns whether --force overrode it."""
    allowed = retire_allowed_at(switched.at if switched else None, ws.config.retention_hours)
    left = retention_left(allowed)
    if left <= timedelta(0):
        return False
    if force:
        return True
    assert allowed is not None and switched is not None
    hours = left.total_seconds() / 3600
    raise BgtoolError(
        f"refusing to retire {color.value} yet: it is kept for retention_hours={ws.config.retention_hours:g} "
        f"after the last {switched.operation} ({switched.at}) so that a rollback stays instant; "
        f"allowed from {allowed.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC ({hours:.1f} h from now)",
        hint=f"Run it again then, or now with 'bgtool retire {ws.env} --force' if {color.value} "
        "will never be needed for a rollback.",
    )


def quiet_problem(color: str, requests: int | None, minutes: float) -> str | None:
    """Pure: why COLOR may not be scaled down yet (it still served requests), or None."""
    if not requests:
        return None
    return (f"{color} still received {requests} requests in the last {minutes:g} min (retire.quiet_minutes): "
            "traffic has not left it")


def _check_quiet(ws: Workspace, color: Color, force: bool) -> dict[str, Any]:
    """Refuse while the color's target group still receives requests, unless forced (then recorded)."""
    from bgtool.aws.live import color_alb, target_group_arns
    from bgtool.aws.metrics import MetricsReader, metrics_resolution

    minutes = ws.config.retire.quiet_minutes
    if ws.config.dns is not None:  # resolvers that cache past the TTL: at least a drain window of quiet
        minutes = max(minutes, ws.config.dns.drain_timeout_seconds / 60)
    alb = color_alb(ws.aws, ws.config, color) if minutes > 0 else None
    arn = target_group_arns(ws.aws, ws.config).get(color.value) if alb is not None else None
    if alb is None or arn is None:
        return {"minutes": minutes, "requests": None}
    now = datetime.now(UTC)
    reader = MetricsReader(ws.aws, alb["LoadBalancerArn"], metrics_resolution(ws.config))
    requests = reader.window(arn, now - timedelta(minutes=minutes), now).requests
    found = {"minutes": minutes, "requests": requests}
    problem = quiet_problem(color.value, requests, minutes)
    if problem is None:
        return found
    if force:
        return {**found, "overridden": True}
    raise BgtoolError(f"refusing to retire {color.value}: {problem}",
                      hint=f"Find who still sends it traffic (the test listener, a pinned client), or retire it "
                           f"anyway with 'bgtool retire {ws.env} --force' (recorded in the history).")


def _forced_reason(force: bool, quiet: dict[str, Any] | None) -> str:
    if quiet and quiet.get("overridden"):
        return f"forced while it still received {quiet['requests']} requests in the last {quiet['minutes']:g} min"
    return "forced before the end of retention" if force else ""


def _retire_locked(ws: Workspace, color: Color, history: History, switched: Record | None,
                   approve: Approver, force: bool, quiet: dict[str, Any] | None = None) -> RetireResult:
    was_retired = ws.config.colors.of(color).retired
    version = ws.config.colors.of(color).version
    details: dict[str, Any] = {"forced": force, "last_switch_at": switched.at if switched else None}
    if quiet is not None:
        details["quiet"] = quiet
    try:
        envfile.set_retired(ws.loaded, color, True)
        ws.reload()
        applied = apply_color(ws, color, approve)
        wait_for_color(ws, color, ws.config.gate.wait_seconds, None)
    except Declined as exc:
        envfile.set_retired(ws.loaded, color, was_retired)
        ws.reload()
        raise Declined(f"{exc.message}; environments/{ws.env}.yaml restored", hint="Nothing was applied.") from None
    except BgtoolError as exc:
        history.append(Record("retire", "failed", from_color=color.value, versions={color.value: version},
                              reason=exc.message.splitlines()[0], details=details))
        raise BgtoolError(
            f"retire of {color.value} failed: {exc.message}\nenvironments/{ws.env}.yaml already says "
            f"{color.value} retired: true; its layer may be applied part-way; the live color was not touched",
            hint=f"Fix the cause and run 'bgtool retire {ws.env} --force' again, or bring it back with "
            f"'bgtool deploy {ws.env} {version}'.",
        ) from exc
    history.append(Record("retire", "succeeded", from_color=color.value, versions={color.value: version},
                          reason=_forced_reason(force, quiet), details=details))
    return RetireResult(ws.env, color.value, version, force, applied, switched.at if switched else None)

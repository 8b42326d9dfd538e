"""`bgtool rollback`: production traffic back to the previous color, through Terraform.

Which color is "previous" (`rollback_target`, pure):
- live traffic is split, or all on the color the file does NOT name: a switch was interrupted or
  its restore failed; the file still names the color that was live before it, so go there;
- the last release operation was a switch that did not succeed and traffic is already all on the
  file's color: that switch was already rolled back, nothing to do;
- otherwise (after a finalized switch, or a rollback) the previous color is the idle one.

`--break-glass` first flips the production listener with a direct API call (seconds count, or
Terraform itself is the problem), then applies the traffic layer so no drift remains.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bgtool.compute import compute_for
from bgtool.config import envfile
from bgtool.config.schema import Color
from bgtool.errors import BgtoolError
from bgtool.events import Confirm, Note, Question, RecordWritten
from bgtool.records.history import History, Record
from bgtool.records.lock import OperationLock
from bgtool.records.provenance import begin, stamp
from bgtool.release.database import rollback_problems
from bgtool.terraform.workspace import Workspace
from bgtool.traffic import TrafficRouter, router_for
from bgtool.traffic.listener import Flip
from bgtool.traffic.weights import Weights


def rollback_target(file_active: Color, live: Color | None, last_switch_failed: bool) -> tuple[Color | None, str]:
    """(color to go to, or None when there is nothing to do; why)."""
    if live is not file_active:
        shown = "split" if live is None else f"all on {live.value}"
        return file_active, f"live traffic is {shown} while the file names {file_active.value}"
    if last_switch_failed:
        return None, f"the last switch did not complete; traffic is already all on {file_active.value}"
    return file_active.other, f"{file_active.other.value} was live before the last switch to {file_active.value}"


@dataclass
class RollbackOutcome:
    env: str
    result: str = "failed"
    from_color: str | None = None
    to_color: str | None = None
    reason: str = ""
    flip: dict[str, Any] | None = None
    reconcile: dict[str, Any] = field(default_factory=dict)
    live_weights: str = ""
    forced: list[str] = field(default_factory=list)  # refusals overridden with --force
    workers: dict[str, Any] = field(default_factory=dict)  # the workers' handover back
    source: dict[str, Any] = field(default_factory=dict)  # the git commit it ran from (provenance.source)

    @property
    def ok(self) -> bool:
        return self.result in ("succeeded", "nothing-to-do")

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, **self.__dict__}


@dataclass(frozen=True)
class RollbackOptions:
    confirm: Confirm
    break_glass: bool = False
    force: bool = False


def run_rollback(ws: Workspace, opts: RollbackOptions) -> RollbackOutcome:
    lock = OperationLock.of(ws)
    with lock.held("rollback" + (" --break-glass" if opts.break_glass else "")):
        return _rollback(ws, opts)


def _last_switch_failed(history: History) -> bool:
    for record in reversed(history.read()):
        if record.operation in ("switch", "rollback") and record.result != "refused":
            return record.operation == "switch" and record.result != "succeeded"
    return False


def _rollback(ws: Workspace, opts: RollbackOptions) -> RollbackOutcome:
    ws.reload()
    out = RollbackOutcome(ws.env)
    out.source = begin(ws)
    history = History.of(ws)
    router = router_for(ws)
    current = router.live_weights()
    if current is None:
        raise BgtoolError("no production listener found: nothing to roll back",
                          hint=f"Run 'bgtool apply {ws.env}' first.")
    live = current.live_color
    out.from_color = live.value if live else "split"
    target, why = rollback_target(ws.config.active_color, live, _last_switch_failed(history))
    ws.emit(Note(f"{ws.env}: live production {current}; file active_color {ws.config.active_color.value}; {why}"))
    if target is None:
        out.result, out.reason = "nothing-to-do", why
        return out
    out.to_color = target.value
    _check_target(ws, target, opts, history, out)
    _confirm(ws, target, current, opts)
    return _move(ws, router, target, opts, history, out, why)


def _check_target(ws: Workspace, target: Color, opts: RollbackOptions, history: History,
                  out: RollbackOutcome) -> None:
    """Refuse to send traffic to a retired color or one without healthy targets, unless --force."""
    problems = []
    if ws.config.colors.of(target).retired:
        problems.append(f"{target.value} is retired")
    live = compute_for(ws).live(target)
    if live.healthy_targets == 0:
        problems.append(f"{target.value} has no healthy targets ({len(live.targets)} registered)")
    problems += rollback_problems(ws, target, history)  # a contract migration that ran after its version
    if not problems:
        ws.emit(Note(f"{target.value}: {live.healthy_targets}/{len(live.targets)} targets healthy", "ok"))
        return
    if opts.force:
        ws.emit(Note(f"--force: going on although {'; '.join(problems)}", "warn"))
        out.forced = problems
        return
    reason = "; ".join(problems)
    _append(ws, history, Record(operation="rollback", result="refused", from_color=out.from_color,
                            to_color=target.value, versions=_versions(ws), reason=reason, **_stamp(ws, out)))
    raise BgtoolError(f"rollback to {target.value} refused: {reason}",
                      hint=f"Fix or redeploy {target.value}, or run 'bgtool rollback {ws.env} --force' "
                           "to send traffic there anyway.")


def _confirm(ws: Workspace, target: Color, current: Weights, opts: RollbackOptions) -> None:
    how = "direct listener flip, then terraform" if opts.break_glass else "terraform apply of layer traffic"
    if not opts.confirm(Question(f"Move production traffic of {ws.env} from {current} to 100% {target.value} "
                                 f"({how})?")):
        raise BgtoolError("rollback declined: nothing was changed")


def _move(ws: Workspace, router: TrafficRouter, target: Color, opts: RollbackOptions, history: History,
          out: RollbackOutcome, why: str) -> RollbackOutcome:
    flip: Flip | None = None
    if opts.break_glass:
        flip = router.flip(target)
        out.flip = flip.to_dict()
        ws.emit(Note(f"break glass: production listener flipped to 100% {target.value} in "
                     f"{flip.flip_seconds * 1000:.0f} ms (lookups {flip.lookup_seconds * 1000:.0f} ms)", "warn"))
    try:
        counts = router.apply(Weights.all_on(target), target.other)
    except BgtoolError as exc:
        return _reconcile_failed(ws, router, target, flip, history, out, exc)
    out.reconcile = {"ok": True, **counts}
    ws.emit(Note(f"traffic layer applied: {counts['change']} changed, {counts['add']} added, "
                 f"{counts['destroy']} destroyed" + ("; no drift remains" if flip else ""), "ok"))
    _write_file(ws, target)
    out.result, out.reason = "succeeded", why
    _hand_back_workers(ws, target, out)
    _append(ws, history, _record(ws, out, flip))
    return out


def _hand_back_workers(ws: Workspace, target: Color, out: RollbackOutcome) -> None:
    """The workers go back with the traffic, in the same order a switch hands them over."""
    from bgtool.compute.workers import hand_over

    try:
        out.workers = hand_over(ws, target.other, target)
    except (BgtoolError, ClientError, BotoCoreError) as exc:
        out.workers = {"error": getattr(exc, "message", None) or str(exc)}
        ws.emit(Note(f"workers not handed back: {out.workers['error']}; finish with 'bgtool apply {ws.env}'",
                     "error"))


def _reconcile_failed(ws: Workspace, router: TrafficRouter, target: Color, flip: Flip | None, history: History,
                      out: RollbackOutcome, exc: BgtoolError) -> RollbackOutcome:
    out.reconcile = {"ok": False, "error": exc.message}
    out.live_weights = router.describe()
    if flip is not None:  # traffic IS on the target: the file must say so
        _write_file(ws, target)
        out.reason = (f"traffic flipped to {target.value} by direct API call, but the traffic layer apply failed; "
                      f"the listener drifts from Terraform until 'bgtool apply {ws.env} --layer traffic' succeeds")
    else:
        out.reason = f"the traffic layer apply failed: {exc.message}"
    _append(ws, history, _record(ws, out, flip))
    ws.emit(Note(f"{out.reason}; live production weights: {out.live_weights}", "error"))
    if flip is None:
        ws.emit(Note(f"Recover with: bgtool rollback {ws.env} --break-glass", "error"))
    return out


def _write_file(ws: Workspace, target: Color) -> None:
    if ws.config.active_color is not target:
        envfile.set_active_color(ws.loaded, target)
        ws.reload()
        ws.emit(Note(f"{ws.loaded.path.name}: active_color: {target.value}", "ok"))


def _versions(ws: Workspace) -> dict[str, str]:
    return {c.value: ws.config.colors.of(c).version for c in Color}


def _record(ws: Workspace, out: RollbackOutcome, flip: Flip | None) -> Record:
    details: dict[str, Any] = {"break_glass": flip is not None, "reconcile": out.reconcile}
    if flip is not None:
        details["flip"] = flip.to_dict()
    if out.forced:
        details["forced"] = out.forced
    if out.workers:
        details["workers"] = out.workers
    return Record(operation="rollback", result=out.result, from_color=out.from_color, to_color=out.to_color,
                  versions=_versions(ws), reason=out.reason, details=details, **_stamp(ws, out))


def _stamp(ws: Workspace, out: RollbackOutcome) -> dict[str, Any]:
    """What the rollback wrote into the file, and where it ran from (provenance)."""
    wrote = out.result == "succeeded" or out.flip is not None  # both set active_color (_write_file)
    return stamp(ws.config, out.source, wrote)


def _append(ws: Workspace, history: History, record: Record) -> None:
    try:
        history.append(record)
    except (ClientError, BotoCoreError, OSError) as exc:
        ws.emit(RecordWritten(record.operation, record.result, str(exc)))
        return
    ws.emit(RecordWritten(record.operation, record.result))

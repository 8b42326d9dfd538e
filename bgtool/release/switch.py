"""The guarded switch: move production traffic to the other color in canary steps, or put it back.

The switch is a state machine (DESIGN.md):

    preflight → gate → confirm → step 1 → bake 1 → … → step N (100%) → monitor → finalize → succeeded
    any failure once traffic may have moved → restore → rolled-back   (restore fails → failed)
    any failure before that                 → failed                  (nothing was changed)

The transitions (`next_phase`) are pure and unit-tested; `Switch` drives them with I/O: the
operation lock for the whole run, boto3 reads, the gate, and one traffic-layer apply per step.
At 100% the bake of the last step is the monitor window. Whatever happens, the run ends in a
terminal state with a history record that says why, and the caller exits 1 unless it succeeded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bgtool import interrupts
from bgtool.aws.live import ColorLive
from bgtool.aws.metrics import metrics_resolution
from bgtool.config.schema import Color
from bgtool.errors import BgtoolError
from bgtool.events import (
    CheckResult,
    Confirm,
    Countdown,
    Note,
    PhaseEntered,
    Question,
    RecordWritten,
    Restored,
    StepApplied,
    TrafficJudged,
)
from bgtool.records.history import Record
from bgtool.records.provenance import begin, stamp
from bgtool.release.analysis import Judgement, Verdict, decide_step, judge_traffic, judged_bake_seconds, publish_delay
from bgtool.release.gate import GateReport
from bgtool.release.switch_io import SwitchIO, WorkspaceIO
from bgtool.terraform.workspace import Workspace
from bgtool.traffic import router_for
from bgtool.traffic.weights import (
    HealthSample,
    Weights,
    health_problems,
    remaining_steps,
    serving_problems,
    step_test_color,
    step_weights,
)

# --------------------------------------------------------------------------------------------
# The state machine (pure)
# --------------------------------------------------------------------------------------------


class State(StrEnum):
    PREFLIGHT = "preflight"
    GATE = "gate"
    CONFIRM = "confirm"
    STEP = "step"
    BAKE = "bake"
    MONITOR = "monitor"
    FINALIZE = "finalize"
    RESTORE = "restore"
    SUCCEEDED = "succeeded"
    ROLLED_BACK = "rolled-back"
    FAILED = "failed"


TERMINAL = frozenset({State.SUCCEEDED, State.ROLLED_BACK, State.FAILED})


@dataclass(frozen=True)
class Phase:
    state: State
    step: int = 0
    """Index of the current (or last applied) step."""
    moved: bool = False
    """Production traffic may no longer be 100% on the old color: a failure must restore it."""

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    def label(self, n_steps: int) -> str:
        if self.state in (State.STEP, State.BAKE):
            return f"{self.state.value} {self.step + 1}/{n_steps}"
        return self.state.value


def next_phase(phase: Phase, ok: bool, n_steps: int) -> Phase:
    """The phase after PHASE succeeded (ok) or failed.

    A failure before the first step changed nothing, so nothing is restored, even when production
    was already split when the switch began (a restore only ever goes back to that start).
    """
    if phase.terminal:
        raise ValueError(f"{phase.state.value} is terminal")
    if n_steps < 1:
        raise ValueError("a switch needs at least one step")
    moved = phase.moved
    s = phase.state
    if not ok:
        if s is State.RESTORE:
            return Phase(State.FAILED, phase.step, True)
        if moved or s is State.STEP:
            return Phase(State.RESTORE, phase.step, True)
        return Phase(State.FAILED, phase.step, False)
    if s is State.PREFLIGHT:
        return Phase(State.GATE, 0, moved)
    if s is State.GATE:
        return Phase(State.CONFIRM, 0, moved)
    if s is State.CONFIRM:
        return Phase(State.STEP, 0, True)
    if s is State.STEP:
        last = phase.step >= n_steps - 1
        return Phase(State.MONITOR if last else State.BAKE, phase.step, True)
    if s is State.BAKE:
        return Phase(State.STEP, phase.step + 1, True)
    if s is State.MONITOR:
        return Phase(State.FINALIZE, phase.step, True)
    if s is State.FINALIZE:
        return Phase(State.SUCCEEDED, phase.step, True)
    return Phase(State.ROLLED_BACK, phase.step, True)  # RESTORE succeeded


# --------------------------------------------------------------------------------------------
# Driving it
# --------------------------------------------------------------------------------------------


class Stop(BgtoolError):
    """A reason to leave the happy path (gate failed, alarm, unhealthy target, declined)."""


@dataclass(frozen=True)
class SwitchPlan:
    to: Color
    steps: list[int]
    bake_seconds: float
    monitor_seconds: float
    poll_seconds: float
    operation: str = "switch"
    """The history operation and lock label; the GitOps path records "switch" too, via apply."""
    trigger: str = "switch"
    accept_inconclusive: bool = False
    """Go on when the gate's only shortcoming is too little data, and when a step's bake ends without a
    verdict on its traffic (the operator's call, recorded); bakes are then not lengthened for metrics."""
    explicit: bool = False
    """The operator named the target (`--to`): a deliberate choice, so a file that predates the last
    release is no reason to refuse. A target taken from the file is only as good as the file."""

    @property
    def from_color(self) -> Color:
        return self.to.other


@dataclass
class Outcome:
    env: str
    from_color: str
    to_color: str
    result: str = "failed"
    reason: str = ""
    restore_error: str = ""
    restore: dict[str, Any] = field(default_factory=dict)
    """How production got back: seconds from detection to the direct flip and to the Terraform reconcile."""
    versions: dict[str, str] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)
    trace: list[str] = field(default_factory=list)
    gate: dict[str, Any] | None = None
    live_weights: str = ""
    seconds: float = 0.0
    drain: dict[str, Any] = field(default_factory=dict)
    """DNS mode: how long the old color's traffic took to fall to near zero after the last step."""
    workers: dict[str, Any] = field(default_factory=dict)
    """The workers' handover (overlap or exclusive) after the traffic moved."""

    @property
    def ok(self) -> bool:
        return self.result in ("succeeded", "nothing-to-do")

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "from": self.from_color, "to": self.to_color,
                **{k: v for k, v in self.__dict__.items() if k not in ("from_color", "to_color")}}


class Switch:
    """One guarded switch to PLAN.to; `run()` never raises for a failure of the switch itself (it
    restores, records and returns the outcome), only for a lock held by another.

    All I/O goes through `io` (bgtool.release.switch_io.SwitchIO), so the driving of the state
    machine is unit-tested with fakes: failed restores, a declining operator, interrupts anywhere.
    """

    def __init__(self, ws: Workspace | None, plan: SwitchPlan, confirm: Confirm, *, io: SwitchIO | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> None:
        if io is None:
            assert ws is not None, "a Switch needs a workspace or an io"
            io = WorkspaceIO(ws)
        self.io = io
        self.plan = plan
        self.confirm = confirm
        self.sleep = sleep
        self.clock = clock
        self.weights = step_weights(plan.to, plan.steps)
        self.outcome = Outcome(io.env, plan.from_color.value, plan.to.value)
        self.config = io.config()
        self.gate_report: GateReport | None = None
        self.start: Weights | None = None
        """What production served when the switch began: the only state a restore goes back to."""
        self._detected_at: float | None = None
        self._detected_utc: str | None = None
        """When the problem was detected, for the record (the report draws it on the timeline)."""
        self._source = begin(ws) if ws is not None else {}
        self._holding = ExitStack()  # from the first interrupt or restore on: interrupts held back (run's end)
        self._held = False
        self._signalled = False  # the switch stopped for a signal (Ctrl-C, a cancelled CI job)
        self._step_started: datetime | None = None
        self._unexpected: Exception | None = None

    # -- public -----------------------------------------------------------------------------
    def run(self) -> Outcome:
        started = self.clock()
        label = f"{self.plan.operation} {self.plan.from_color.value} -> {self.plan.to.value}"
        with self._holding, self.io.lock(label):
            self._drive()
            self.outcome.seconds = round(self.clock() - started, 2)
            self._record()
        if self._unexpected is not None:  # a bug: production was restored and the run recorded; now report it
            raise self._unexpected
        return self.outcome

    def versions(self) -> dict[str, str]:
        return {c.value: self.config.colors.of(c).version for c in Color}

    # -- the loop ---------------------------------------------------------------------------
    def _drive(self) -> None:
        phase = Phase(State.PREFLIGHT)
        while not phase.terminal:
            n = len(self.weights)  # preflight re-plans the steps from the live share
            self.outcome.trace.append(phase.label(n))
            self.io.emit(PhaseEntered(self.plan.operation, phase.label(n)))
            ok = self._attempt(phase)
            phase = next_phase(phase, ok, len(self.weights))
        self.io.emit(PhaseEntered(self.plan.operation, phase.state.value))  # how it ended, for a live view
        self.outcome.result = phase.state.value
        if phase.state is not State.SUCCEEDED:
            self.outcome.live_weights = self.io.router.describe()

    def _attempt(self, phase: Phase) -> bool:
        handler = getattr(self, f"_{phase.state.value.replace('-', '_')}")
        try:
            handler(phase)
            return True
        except KeyboardInterrupt as exc:
            self._hold_interrupts()
            self._signalled = True
            self._failed(phase, f"interrupted ({interrupts.describe(exc)})")
        except BgtoolError as exc:
            self._failed(phase, exc.message + (f" ({exc.hint})" if exc.hint else ""))
        except (ClientError, BotoCoreError, OSError) as exc:
            self._failed(phase, str(exc))
        except Exception as exc:  # a bug in a step, bake or monitor: restore first, raise after run's record
            self._unexpected = self._unexpected or exc
            self._failed(phase, f"unexpected {type(exc).__name__}: {exc}")
        return False

    def _failed(self, phase: Phase, reason: str) -> None:
        where = phase.label(len(self.weights))
        if phase.state is State.RESTORE:
            self.outcome.restore_error = reason
            self.io.emit(Restored(self.plan.from_color.value, False, reason))
            return
        if not self.outcome.reason:
            self.outcome.reason = f"{where}: {reason}"
            self._detected_at = self.clock()
            self._detected_utc = _utc(datetime.now(UTC))
        self.io.emit(Note(f"{where} failed: {reason}", "error"))

    # -- handlers ---------------------------------------------------------------------------
    def _preflight(self, phase: Phase) -> None:
        """Decided under the operation lock, on the file and production as they are now: a file that
        predates the last release, a target that already serves everything, or an old color that
        could not take the traffic back is refused before anything moves."""
        env, to, old = self.io.env, self.plan.to, self.plan.from_color
        self.config = self.io.config()  # the file as it is now, validated again
        self.outcome.versions = self.versions()
        if not self.plan.explicit:
            self.io.refuse_stale(f"move production traffic to {to.value}")
        settings = self.config.colors.of(to)
        if settings.retired:
            raise Stop(f"{to.value} is retired (scaled to zero)",
                       hint=f"Deploy to it first: 'bgtool deploy {env} VERSION'.")
        current = self.io.router.live_weights()
        if current is None:
            raise Stop("no production listener found", hint=f"Run 'bgtool apply {env}' first.")
        self.start = current
        if current.of(to) == 100:
            raise Stop(f"{to.value} already serves 100% of production while the file says active_color "
                       f"{self.config.active_color.value}: the file is behind production",
                       hint=f"See 'bgtool status {env}' and 'bgtool history {env}'; bring the file up to date "
                            "(merge the last release's change) before releasing again.")
        self.weights = step_weights(to, remaining_steps(self.plan.steps, current.of(to)))
        guard = getattr(self.io.router, "guard", None)
        if guard is not None:  # a router whose changes reach clients only as caches expire (DNS)
            self.io.emit(Note(guard(), "ok"))
        live = self.io.compute.live(to)
        if live.versions != [settings.version]:
            raise Stop(f"{to.value} runs version {', '.join(live.versions) or 'none'} but the file says "
                       f"{settings.version}", hint=f"Deploy it first: 'bgtool deploy {env} {settings.version}'.")
        self._check_keeps_serving(old)
        self.io.emit(Note(f"preflight: {old.value} → {to.value}, {to.value} runs {settings.version}; live "
                          f"{current}; steps {','.join(str(w.of(to)) for w in self.weights)}", "ok"))

    def _check_keeps_serving(self, old: Color) -> None:
        """The old color serves during the steps and takes everything back on a restore: it must be able to."""
        problems = []
        if self.config.colors.of(old).retired:
            problems.append(f"{old.value} is retired")
        live = self.io.compute.live(old)
        if live.healthy_targets == 0:
            problems.append(f"{old.value} has no healthy targets ({len(live.targets)} registered)")
        problems += self.io.serving_problems(old)
        if problems:
            raise Stop(f"{old.value} keeps serving during the steps and takes traffic back on a restore, but "
                       f"{'; '.join(problems)}", hint=f"Fix or redeploy {old.value} first.")

    def _gate(self, phase: Phase) -> None:
        self._point_test_listener()
        report = self.io.gate(self.plan.to)
        self.gate_report = report
        self.outcome.gate = report.to_dict()
        for check in report.checks:
            self.io.emit(CheckResult(check.name, check.passed, check.evidence))
        if report.passed:
            return
        failures = "; ".join(f"{c.name}: {c.evidence}" for c in report.failures()) or "no checks ran"
        if report.only_inconclusive and self.plan.accept_inconclusive:
            self.outcome.gate = {**report.to_dict(), "accepted_inconclusive": True}
            self.io.emit(Note(f"gate inconclusive on {self.plan.to.value}, accepted by --accept-inconclusive: "
                              f"{failures}", "warn"))
            return
        if report.only_inconclusive:
            raise Stop(f"health gate inconclusive on {self.plan.to.value}: {failures}",
                       hint="Too little data is not a pass: send traffic and run it again, or go on with "
                            "--accept-inconclusive.")
        raise Stop(f"health gate failed on {self.plan.to.value}: {failures}")

    def _point_test_listener(self) -> None:
        """The gate proves the target through the test listener, which the file's layout points at the
        file's idle color. A switch to another color (the reconcile after an out-of-band flip) first
        points it at the target, production weights unchanged."""
        test_color = getattr(self.io.router, "test_color", None)
        if test_color is None or self.start is None or test_color() is self.plan.to:
            return
        self.io.emit(Note(f"test listener → {self.plan.to.value} (production stays {self.start})"))
        self.io.router.apply(self.start, self.plan.to)

    def _confirm(self, phase: Phase) -> None:
        plan, v, env = self.plan, self.outcome.versions, self.io.env
        checks = [CheckResult(c.name, c.passed, c.evidence) for c in self.gate_report.checks] \
            if self.gate_report is not None else []
        summary = (f"{env}: {plan.from_color.value} ({v.get(plan.from_color.value)}) → {plan.to.value} "
                   f"({v.get(plan.to.value)}); steps {','.join(map(str, plan.steps))}; bake {plan.bake_seconds:g}s; "
                   f"monitor {plan.monitor_seconds:g}s")
        if not self.confirm(Question(f"Move production traffic of {env} to {plan.to.value}?", checks, summary)):
            raise Stop("declined by the operator")

    def _step(self, phase: Phase) -> None:
        weights = self.weights[phase.step]
        last = phase.step == len(self.weights) - 1
        test = step_test_color(self.plan.to, last)
        self.io.emit(Note(f"→ step {phase.step + 1}/{len(self.weights)}: {weights} ({self.io.router.mode})"))
        started = self.clock()
        self.io.router.apply(weights, test)
        took = round(self.clock() - started, 2)
        self._step_started = datetime.now(UTC)
        self.outcome.steps.append({"weights": weights.as_dict(), "test_color": test.value, "apply_seconds": took,
                                   "at": _utc(self._step_started)})
        self.io.emit(StepApplied(phase.step + 1, len(self.weights), weights.as_dict(), took))

    def _bake(self, phase: Phase) -> None:
        self._watch(self._at_least(self.plan.bake_seconds, "bake"), f"bake {phase.step + 1}")

    def _monitor(self, phase: Phase) -> None:
        self._watch(self._at_least(self.plan.monitor_seconds, "monitor"), "monitor")

    def _at_least(self, seconds: float, what: str) -> float:
        """A bake outlasts what it waits for: a router whose weights reach clients only as caches expire
        bakes each step for some TTLs, and a step judged by its traffic bakes until the load balancer
        metrics hold a whole period of it."""
        wanted, why = seconds, ""
        bake_for = getattr(self.io.router, "bake_seconds", None)
        ttl_guard = seconds if bake_for is None else bake_for(seconds)
        if ttl_guard > wanted:
            wanted, why = ttl_guard, "the TTL guard's minimum"
        judged = self._judged_minimum()
        if judged is not None and judged[0] > wanted:
            wanted, why = judged
        if wanted > seconds:
            self.io.emit(Note(f"{what} {wanted:g}s instead of {seconds:g}s: {why}", "warn"))
        return wanted

    def _judged_minimum(self) -> tuple[float, str] | None:
        """The shortest bake whose traffic can be judged (None: nothing judges it, or the operator
        accepted steps without a verdict)."""
        if getattr(self.io, "meter", None) is None or self.plan.accept_inconclusive:
            return None
        period = metrics_resolution(self.config)
        delay = publish_delay(self.config.embedded)
        return judged_bake_seconds(period, delay), (f"the shortest bake judged on {period} s load balancer metrics "
                                                    f"(2 periods + {delay:g} s until published)")

    def _finalize(self, phase: Phase) -> None:
        written = self.io.write_active(self.plan.to)
        self.config = self.io.config()
        self.io.emit(Note(f"{written}: active_color: {self.plan.to.value}", "ok"))
        self._hand_over_workers()
        self._drain()

    def _hand_over_workers(self) -> None:
        """The workers follow the traffic. Traffic is final by now: a failed handover is reported with
        the command that finishes it, never answered by moving traffic back."""
        handover = getattr(self.io, "handover", None)
        if handover is None:
            return
        try:
            self.outcome.workers = handover(self.plan.from_color, self.plan.to)
        except (BgtoolError, ClientError, BotoCoreError, OSError) as exc:
            reason = getattr(exc, "message", None) or str(exc)
            self.outcome.workers = {"error": reason}
            self.io.emit(Note(f"workers not handed over: {reason}; finish with 'bgtool apply {self.io.env}'", "error"))

    def _drain(self) -> None:
        """DNS mode: resolvers and clients that cache past the TTL keep using the old color; watch its
        share fall to near zero and report how long that took. Traffic is already final: whatever
        happens here is reported, never restored."""
        drain = getattr(self.io.router, "drain", None)
        if drain is None or self._step_started is None:
            return
        old = self.plan.from_color
        try:
            report = drain(old, self._step_started, self.plan.poll_seconds, self.sleep, self.clock)
        except (BgtoolError, ClientError, BotoCoreError, OSError, KeyboardInterrupt) as exc:
            reason = "interrupted (Ctrl-C)" if isinstance(exc, KeyboardInterrupt) else \
                getattr(exc, "message", None) or str(exc)
            self.outcome.drain = {"quiet": None, "error": reason}
            self.io.emit(Note(f"drain of {old.value} not watched to the end: {reason}", "warn"))
            return
        self.outcome.drain = report.to_dict()
        self.io.emit(Note(report.describe(old.value), "ok" if report.quiet else "warn"))

    def _restore(self, phase: Phase) -> None:
        """Back to what production served when the switch began, never further. Users first, then the
        books: when that is all on the old color a direct flip takes production off the failing color
        within a second of detection, and the Terraform apply that follows makes state agree (and is
        the restore on its own when the flip itself fails, or when the start was a split; after a signal
        that a kill follows, the next apply does it: _reconcile_left_to_next_apply)."""
        self._hold_interrupts()
        old = self.plan.from_color
        start = self.start or Weights.all_on(old)
        detected = self._detected_at if self._detected_at is not None else self.clock()
        direct = start == Weights.all_on(old)
        self.io.emit(Note(f"↩ restoring production to {start}: {'direct flip, then ' if direct else ''}"
                          f"{self.io.router.mode} reconcile", "warn"))
        self.outcome.restore["to"] = start.as_dict()
        self.outcome.restore["detected_at"] = self._detected_utc or _utc(datetime.now(UTC))
        if direct:
            try:
                self.io.router.flip(old)
                self.outcome.restore["flip_seconds"] = round(self.clock() - detected, 3)
            except (BgtoolError, ClientError, BotoCoreError) as exc:
                self.outcome.restore["flip_error"] = getattr(exc, "message", None) or str(exc)
                self.io.emit(Note(f"direct flip failed ({self.outcome.restore['flip_error']}); restoring through "
                                  "Terraform only", "warn"))
        if self._reconcile_left_to_next_apply(old, start):
            return
        self.io.router.apply(start, self.plan.to)
        self.outcome.restore["reconcile_seconds"] = round(self.clock() - detected, 3)
        self.io.emit(Restored(old.value, True, f"(production {start})"))

    def _reconcile_left_to_next_apply(self, old: Color, start: Weights) -> bool:
        """After a signal that a kill follows (a cancelled CI step: interrupts.kill_after_signal), once the
        direct flip put production back where it began: record and release now, inside the grace period,
        and leave the Terraform reconcile (tens of seconds) to the next apply, which refreshes its state
        from the listener. Otherwise the reconcile runs as usual."""
        kill_after = interrupts.kill_after_signal()
        if not self._signalled or kill_after is None or "flip_seconds" not in self.outcome.restore:
            return False
        self.outcome.restore["reconcile"] = f"left to the next 'bgtool apply {self.io.env}'"
        self.io.emit(Note(f"Terraform reconcile of the traffic layer left to the next 'bgtool apply {self.io.env}': "
                          f"this process is killed {kill_after:g}s after the signal ({interrupts.KILL_AFTER_VARIABLE})",
                          "warn"))
        self.io.emit(Restored(old.value, True, f"(production {start}, direct flip)"))
        return True

    # -- helpers ----------------------------------------------------------------------------
    def _hold_interrupts(self) -> None:
        """From the first interrupt or restore on, a second Ctrl-C or SIGTERM must not stop the restore half
        way (production split, nobody told): it is held back and reported until the run has ended."""
        if self._held:
            return
        self._held = True

        def told(name: str) -> None:
            self.io.emit(Note(f"{name} held back: finishing the restore first (stopping now could leave "
                              "production split); the switch ends right after it", "warn"))

        self._holding.enter_context(interrupts.held_back(told))

    def _watch(self, seconds: float, what: str) -> None:
        """Poll the new color's targets and alarms, and judge its traffic against the old color's, every
        poll_seconds for SECONDS (at least once); at the end, only a step whose traffic passed goes on."""
        deadline = self.clock() + seconds
        self.io.emit(Countdown(what, seconds))
        polls = 0
        judged: Judgement | None = None
        try:
            while True:
                polls += 1
                problems = self._health()
                if problems:
                    raise Stop("; ".join(problems))
                judged = self._judge_traffic(what) or judged
                remaining = deadline - self.clock()
                if remaining <= 0:
                    break
                self.sleep(min(self.plan.poll_seconds, remaining))
        finally:
            self._report_traffic(what)
        self._conclude(what, judged)
        self.io.emit(Note(f"{what}: {self.plan.to.value} healthy for {seconds:g}s ({polls} polls)", "ok"))

    def _judge_traffic(self, what: str) -> Judgement | None:
        """The new color's 5xx rate and p99 against the old color's over the same minutes (since the
        step began): a regression beyond gate.analysis restores at once. Returns the judgement (None
        when nothing judges the step or the metrics could not be read this time)."""
        meter = getattr(self.io, "meter", None)
        if meter is None or self._step_started is None or not self.outcome.steps:
            return None
        new, old = self.plan.to, self.plan.from_color
        now = datetime.now(UTC)
        step = self.outcome.steps[-1]
        try:
            stats = {c: meter.window(c, self._step_started, now) for c in (new, old)}
        except (ClientError, BotoCoreError) as exc:
            step.setdefault("traffic", {})["error"] = f"metrics unavailable: {exc}"
            return None
        since = self._step_started.isoformat(timespec="seconds")
        if stats[new] is None:
            judged = Judgement(Verdict.INCONCLUSIVE, f"no load balancer metrics for {new.value}")
            step["traffic"] = {"verdict": judged.verdict.value, "evidence": judged.evidence, "judged": what,
                               "since": since}
            return judged
        judged = judge_traffic(stats[new], stats[old], self.config.gate.analysis, new_color=new.value,
                               old_color=old.value, need_baseline=False)
        step["traffic"] = {**judged.numbers, "verdict": judged.verdict.value, "evidence": judged.evidence,
                           "judged": what, "since": since}
        if judged.verdict is Verdict.FAIL:
            raise Stop(f"{new.value} traffic worse than {old.value}: {judged.evidence}")
        return judged

    def _conclude(self, what: str, judged: Judgement | None) -> None:
        """The end of a bake: a step whose traffic was not judged did not pass (unless accepted)."""
        if getattr(self.io, "meter", None) is None:
            return
        error = self.outcome.steps[-1].get("traffic", {}).get("error") if self.outcome.steps else None
        if judged is None and error:
            judged = Judgement(Verdict.INCONCLUSIVE, error)
        call = decide_step(judged, self.plan.accept_inconclusive, color=self.plan.to.value)
        if call.accepted_inconclusive:
            if self.outcome.steps:
                self.outcome.steps[-1].setdefault("traffic", {})["accepted_inconclusive"] = True
            self.io.emit(Note(f"{what}: {call.reason}", "warn"))
        if not call.go_on:
            minimum = self.config.gate.analysis.min_requests
            raise Stop(call.reason, hint=f"A step passes on at least {minimum} requests to {self.plan.to.value} "
                                         "(gate.analysis.min_requests) within the thresholds: send production "
                                         "traffic or lengthen traffic.bake_seconds, or go on without a verdict "
                                         "with --accept-inconclusive.")

    def _report_traffic(self, what: str) -> None:
        traffic = self.outcome.steps[-1].get("traffic") if self.outcome.steps else None
        if not traffic or "verdict" not in traffic:
            if traffic and "error" in traffic:
                self.io.emit(Note(f"{what} traffic: {traffic['error']}", "warn"))
            return
        served = " | ".join(f"{c.value} {_served(traffic.get(c.value))}" for c in (self.plan.to, self.plan.from_color))
        self.io.emit(TrafficJudged(what, traffic["verdict"], served))

    def _health(self) -> list[str]:
        """The new color must be wholly healthy; the old one, which still serves or is what a restore goes
        back to, must keep a healthy target and no alarm (its 5xx are production's 5xx too)."""
        new, old = self.plan.to, self.plan.from_color
        problems = [f"{new.value} {p}" for p in health_problems(_sample(self.io.compute.live(new)),
                                                                 self.config.gate.min_healthy)]
        return problems + [f"{old.value} {p}" for p in serving_problems(_sample(self.io.compute.live(old)))]

    def _record(self) -> None:
        o = self.outcome
        details: dict[str, Any] = {"steps": self.plan.steps, "applied": o.steps, "trace": o.trace,
                                   "bake_seconds": self.plan.bake_seconds,
                                   "monitor_seconds": self.plan.monitor_seconds, "trigger": self.plan.trigger}
        if o.gate is not None:
            details["gate"] = o.gate
        if o.restore:
            details["restore"] = o.restore
        if o.drain:
            details["drain"] = o.drain
        if o.workers:
            details["workers"] = o.workers
        if o.restore_error:
            details["restore_error"] = o.restore_error
            details["live_weights"] = o.live_weights
        record = Record(operation=self.plan.operation, result=o.result, from_color=o.from_color,
                        to_color=o.to_color, versions=o.versions, reason=o.reason, details=details,
                        **stamp(self.config, self._source, wrote=o.result == State.SUCCEEDED.value))
        try:
            self.io.record(record)
        except (ClientError, BotoCoreError, OSError) as exc:
            self.io.emit(RecordWritten(record.operation, record.result, str(exc)))
            return
        self.io.emit(RecordWritten(record.operation, record.result))


def _utc(moment: datetime) -> str:
    """The record's times: UTC ISO to the second, as Record.at (the report lines them up on one axis)."""
    return moment.isoformat(timespec="seconds")


def _sample(live: ColorLive) -> HealthSample:
    return HealthSample({t.id: t.state for t in live.targets}, list(live.alarms_firing))


def _served(numbers: dict[str, Any] | None) -> str:
    if not numbers:
        return "no data"
    p99 = numbers.get("p99_ms")
    return f"{numbers['requests']} requests, {numbers['errors']} 5xx, p99 {'-' if p99 is None else f'{p99:.0f} ms'}"


# --------------------------------------------------------------------------------------------
# Entry points shared by `bgtool switch` and the GitOps path of `bgtool apply`
# --------------------------------------------------------------------------------------------


def plan_from(ws: Workspace, to: Color | None, steps: list[int] | None, bake: float | None,
              monitor: float | None, *, trigger: str = "switch", accept_inconclusive: bool = False,
              explicit: bool = False) -> SwitchPlan:
    """Fill what the command line left out from the environment file's `traffic` settings."""
    traffic = ws.config.traffic
    return SwitchPlan(
        to=to or ws.config.idle_color,
        steps=steps or list(traffic.steps),
        bake_seconds=traffic.bake_seconds if bake is None else bake,
        monitor_seconds=traffic.monitor_seconds if monitor is None else monitor,
        poll_seconds=traffic.poll_seconds,
        trigger=trigger,
        accept_inconclusive=accept_inconclusive,
        explicit=explicit,
    )


def already_live(ws: Workspace, to: Color) -> bool:
    """TO is the file's color and already serves 100% live: a switch has nothing to do."""
    return ws.config.active_color is to and router_for(ws).live_weights() == Weights.all_on(to)


def _back(outcome: Outcome) -> str:
    start = outcome.restore.get("to") or {outcome.from_color: 100}
    if start.get(outcome.from_color) == 100:
        return f"at 100% on {outcome.from_color}"
    return "to " + " / ".join(f"{c} {w}" for c, w in start.items()) + ", as it was when the switch began"


def explain(outcome: Outcome) -> str:
    """What happened, for the person at the terminal (and the error of the GitOps apply)."""
    env = outcome.env
    if outcome.result == "succeeded":
        return f"{env}: production traffic is 100% on {outcome.to_color} ({outcome.seconds:.1f}s)"
    if outcome.result == "rolled-back":
        return (f"{env}: switch to {outcome.to_color} rolled back: {outcome.reason}. "
                f"Production traffic is back {_back(outcome)}.")
    if outcome.restore_error:
        return (f"{env}: switch to {outcome.to_color} failed ({outcome.reason}) and the restore failed too "
                f"({outcome.restore_error}). Live production weights now: {outcome.live_weights}. "
                f"Recover with: bgtool rollback {env} --break-glass")
    return (f"{env}: switch to {outcome.to_color} failed before traffic moved: {outcome.reason}. "
            f"Live production weights: {outcome.live_weights}")


def gitops_handler(confirm: Confirm, accept_inconclusive: bool = False) -> Callable[[Workspace], Any]:
    """The traffic handler of `bgtool apply`: when the file's active_color differs from the live
    production weights (a merged pull request), perform the guarded switch instead of a plain
    traffic apply. On a fresh environment (no listener yet), or when they agree, return None and
    let the traffic layer be applied as usual."""
    from bgtool.terraform.layers import LayerResult

    def handle(ws: Workspace) -> LayerResult | None:
        current = router_for(ws).live_weights()
        to = ws.config.active_color
        if current is None or current == Weights.all_on(to):
            return None
        ws.emit(Note(f"{ws.env}: the file says active_color {to.value}, live production is {current}: "
                     "guarded switch (gate, steps, bake) instead of a plain traffic apply"))
        steps = remaining_steps(ws.config.traffic.steps, current.of(to))
        plan = plan_from(ws, to, steps, None, None, trigger="apply", accept_inconclusive=accept_inconclusive)
        outcome = Switch(ws, plan, confirm).run()
        message = explain(outcome)
        if not outcome.ok:
            raise BgtoolError(message, hint=f"See 'bgtool history {ws.env}'. The file still says {to.value}: "
                                            f"fix the cause and run 'bgtool apply {ws.env}' again, or revert it.")
        ws.emit(Note(message, "ok"))
        return LayerResult("traffic", "delegated", change=len(outcome.steps), detail=message)

    return handle

"""One interrupt path for Ctrl-C and SIGTERM, a restore that a second signal cannot cut short, and a
Terraform run that is stopped gracefully (not orphaned) when bgtool is interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from bgtool import interrupts
from bgtool.config.schema import Color, load_environment
from bgtool.events import Note
from bgtool.records.provenance import release_values
from bgtool.release.switch import Switch, SwitchPlan
from bgtool.terraform.cliconfig import write_cli_config
from bgtool.terraform.runner import Terraform
from bgtool.traffic.weights import Weights
from tests.helpers import REPO, copy_project
from tests.unit.test_switch_driver import FakeIO, FakeRouter


@pytest.fixture
def sigterm_restored() -> Iterator[None]:
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


def deliver(sig: int) -> None:
    os.kill(os.getpid(), sig)
    time.sleep(0.05)  # the handler runs at the next bytecode boundary of the main thread


def test_sigterm_takes_the_ctrl_c_path(sigterm_restored: None) -> None:
    interrupts.install()
    with pytest.raises(KeyboardInterrupt) as info:
        deliver(signal.SIGTERM)
    assert interrupts.describe(info.value) == "SIGTERM"
    assert interrupts.describe(KeyboardInterrupt()) == "Ctrl-C"


def test_signals_are_held_back_until_the_block_ends_then_interrupt_again(sigterm_restored: None) -> None:
    interrupts.install()
    told: list[str] = []
    with interrupts.held_back(told.append) as received:
        deliver(signal.SIGINT)
        deliver(signal.SIGTERM)
        finished = True
    assert finished and received == ["Ctrl-C", "SIGTERM"] and told == received
    with pytest.raises(KeyboardInterrupt):
        deliver(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        deliver(signal.SIGTERM)


FAKE = """#!{python}
import json, os, signal, sys, time
def stop(signum, frame):
    with open(os.environ["FAKE_OUT"], "w") as out:
        json.dump({{"signal": signum, "sid": os.getsid(0)}}, out)
    print(json.dumps({{"@level": "info", "@message": "Interrupt received", "type": "log"}}), flush=True)
    sys.exit(1)
signal.signal(signal.SIGINT, stop)
print(json.dumps({{"@level": "info", "@message": "Terraform 1.11.0", "type": "version"}}), flush=True)
time.sleep(60)
"""


def test_an_interrupted_run_stops_terraform_gracefully_and_waits_for_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = tmp_path / "terraform"
    binary.write_text(FAKE.format(python=sys.executable))
    binary.chmod(0o755)
    out = tmp_path / "stopped.json"
    monkeypatch.setenv("FAKE_OUT", str(out))

    def ctrl_c(event: object) -> None:
        raise KeyboardInterrupt

    tf = Terraform(tmp_path, layer="traffic", cli_config=write_cli_config(tmp_path / ".cfg", None), on_event=ctrl_c)
    tf.binary = str(binary)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        tf.apply()
    assert time.monotonic() - started < 30, "terraform was waited for, not slept out"
    stopped = json.loads(out.read_text())  # written by terraform's SIGINT handler before it exited
    assert stopped["signal"] == signal.SIGINT
    assert stopped["sid"] != os.getsid(0), "terraform runs in a session of its own: a terminal's Ctrl-C skips it"


# --------------------------------------------------------------------------------------------
# The switch: the signal named in its record, a second one held back while traffic is restored
# --------------------------------------------------------------------------------------------


class SecondSignalRouter(FakeRouter):
    """The first step is interrupted by FIRST; a second Ctrl-C arrives in the middle of the restore's flip."""

    def __init__(self, first: str) -> None:
        super().__init__(Weights(100, 0))
        self.first = first

    def apply(self, weights: Weights, test_color: Color) -> dict[str, int]:
        if weights == Weights(50, 50):
            self.applied.append(weights)
            raise KeyboardInterrupt(self.first)
        return super().apply(weights, test_color)

    def flip(self, color: Color) -> None:
        deliver(signal.SIGINT)  # held back: the flip and the reconcile still run
        super().flip(color)


@pytest.mark.parametrize(("first", "word"), [("", "Ctrl-C"), ("SIGTERM", "SIGTERM")])
def test_a_second_interrupt_does_not_cut_the_restore_short(tmp_path: Path, first: str, word: str) -> None:
    config = load_environment(copy_project(tmp_path), "local").config
    router = SecondSignalRouter(first)
    io = FakeIO(config, router)
    plan = SwitchPlan(Color.GREEN, [50, 100], 0, 0, 1)
    outcome = Switch(None, plan, lambda q: True, io=io, sleep=lambda s: None).run()
    assert outcome.result == "rolled-back" and outcome.reason == f"step 1/2: interrupted ({word})"
    assert router.weights == Weights(100, 0) and router.flips == [Color.BLUE]
    assert router.applied[-1] == Weights(100, 0)
    assert io.released and io.records[-1].result == "rolled-back" and io.records[-1].wrote == {}
    held = [e.text for e in io.events.of(Note) if "finishing the restore first" in e.text]  # type: ignore[attr-defined]
    assert held and held[0].startswith("Ctrl-C held back")
    with pytest.raises(KeyboardInterrupt):  # held back only while the switch ran
        deliver(signal.SIGINT)


def test_a_succeeded_switch_records_what_it_wrote(tmp_path: Path) -> None:
    config = load_environment(copy_project(tmp_path), "local").config
    io = FakeIO(config, FakeRouter(Weights(100, 0)))
    outcome = Switch(None, SwitchPlan(Color.GREEN, [100], 0, 0, 1), lambda q: True, io=io, sleep=lambda s: None).run()
    assert outcome.result == "succeeded"
    assert io.records[-1].wrote == release_values(config)  # the fake does not rewrite the file it hands out


# --------------------------------------------------------------------------------------------
# A cancelled GitHub Actions step: SIGINT or SIGHUP to the step's process, SIGTERM ~7.5 s later,
# the process tree killed ~2.5 s after that. The workflows run bgtool with `exec`, so bgtool is
# that process.
# --------------------------------------------------------------------------------------------


@pytest.fixture
def sighup_restored() -> Iterator[None]:
    previous = signal.getsignal(signal.SIGHUP)
    yield
    signal.signal(signal.SIGHUP, previous)


def test_sighup_takes_the_ctrl_c_path(sigterm_restored: None, sighup_restored: None) -> None:
    interrupts.install()
    assert signal.getsignal(signal.SIGHUP) not in (signal.SIG_DFL, signal.SIG_IGN), "SIGHUP would kill bgtool"
    with pytest.raises(KeyboardInterrupt) as info:
        deliver(signal.SIGHUP)
    assert interrupts.describe(info.value) == "SIGHUP"
    with interrupts.held_back() as received:
        deliver(signal.SIGHUP)
    assert received == ["SIGHUP"]


class RunnerEscalationRouter(FakeRouter):
    """What a cancelled step does to a switch: SIGHUP in a bake, the runner's SIGTERM during the restore's
    flip, another signal during the reconcile. Every call is logged in order."""

    def __init__(self, log: list[str]) -> None:
        super().__init__(Weights(100, 0))
        self.log = log

    def apply(self, weights: Weights, test_color: Color) -> dict[str, int]:
        self.log.append(f"apply {weights}")
        if weights == Weights(100, 0):  # the reconcile of the restore
            deliver(signal.SIGHUP)
        return super().apply(weights, test_color)

    def flip(self, color: Color) -> None:
        self.log.append(f"flip {color.value}")
        deliver(signal.SIGTERM)
        super().flip(color)


def test_a_cancelled_step_restores_first_then_records_then_unlocks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sigterm_restored: None, sighup_restored: None) -> None:
    """The restore path under the runner's escalation: users first (the direct flip), then the books
    (the reconcile), then the record and the lock; later signals are held back, never cut it short."""
    monkeypatch.delenv(interrupts.KILL_AFTER_VARIABLE, raising=False)  # a terminal: no kill follows
    interrupts.install()
    config = load_environment(copy_project(tmp_path), "local").config
    router = RunnerEscalationRouter([])
    outcome, io = _interrupted_in_bake(config, router)
    assert outcome.result == "rolled-back" and outcome.reason == "bake 1/2: interrupted (SIGHUP)"
    assert router.log == [f"apply {Weights(50, 50)}", "flip blue", f"apply {Weights(100, 0)}", "record rolled-back",
                          "unlock"], router.log
    assert router.weights == Weights(100, 0)
    held = [e.text for e in io.events.of(Note) if "held back" in e.text]  # type: ignore[attr-defined]
    assert [h.split()[0] for h in held] == ["SIGTERM", "SIGHUP"], held


STEP = """
import os, signal, sys, time
from bgtool import interrupts
interrupts.install()
with open(sys.argv[1], "w") as out:
    try:
        print("ready", flush=True)
        time.sleep(60)
    except KeyboardInterrupt as exc:
        out.write(interrupts.describe(exc))
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGHUP])
def test_exec_in_a_step_makes_bgtool_the_process_the_runner_signals(tmp_path: Path, sig: int) -> None:
    """The runner signals the step's shell only; `exec` (as every workflow step that moves traffic runs
    bgtool) replaces the shell, so the signal reaches bgtool's interrupt path."""
    out = tmp_path / "got"
    script = tmp_path / "step.py"
    script.write_text(STEP)
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # this checkout's bgtool
    shell = subprocess.Popen(["bash", "-e", "-c", f'exec "{sys.executable}" "{script}" "{out}"'],
                             stdout=subprocess.PIPE, text=True, env=env)
    assert shell.stdout is not None and shell.stdout.readline().strip() == "ready"
    shell.send_signal(sig)  # to the step's process, as the runner does
    assert shell.wait(timeout=60) == 0
    assert out.read_text() == ("Ctrl-C" if sig == signal.SIGINT else "SIGHUP")


class LoggingIO(FakeIO):
    """Logs the record and the lock's release into the router's log, to assert the order."""

    def __init__(self, config: Any, router: RunnerEscalationRouter) -> None:
        super().__init__(config, router)
        self.log = router.log

    def record(self, record: Any) -> None:
        self.log.append(f"record {record.result}")
        super().record(record)

    @contextmanager
    def lock(self, label: str) -> Iterator[None]:
        with super().lock(label):
            yield
        self.log.append("unlock")


def _interrupted_in_bake(config: Any, router: RunnerEscalationRouter) -> tuple[Any, LoggingIO]:
    io = LoggingIO(config, router)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 1:
            deliver(signal.SIGHUP)

    plan = SwitchPlan(Color.GREEN, [50, 100], 300, 0, 1)
    return Switch(None, plan, lambda q: True, io=io, sleep=sleep).run(), io


def test_when_a_kill_follows_the_signal_the_restore_is_the_flip_the_record_and_the_lock(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sigterm_restored: None, sighup_restored: None) -> None:
    """A cancelled CI step (the workflow sets BGTOOL_KILL_AFTER_SIGNAL_SECONDS): the Terraform reconcile,
    tens of seconds, would be cut off by the kill with the lock held and nothing recorded; so production
    is flipped back, recorded and unlocked, and the next apply reconciles Terraform's state."""
    monkeypatch.setenv(interrupts.KILL_AFTER_VARIABLE, "10")
    interrupts.install()
    config = load_environment(copy_project(tmp_path), "local").config
    router = RunnerEscalationRouter([])
    outcome, io = _interrupted_in_bake(config, router)
    assert outcome.result == "rolled-back" and outcome.reason == "bake 1/2: interrupted (SIGHUP)"
    assert router.log == [f"apply {Weights(50, 50)}", "flip blue", "record rolled-back", "unlock"], router.log
    assert router.weights == Weights(100, 0)
    assert outcome.restore["reconcile"] == "left to the next 'bgtool apply local'"
    assert io.records[-1].result == "rolled-back" and io.records[-1].details["restore"]["reconcile"] == \
        "left to the next 'bgtool apply local'", "the history says what is left"
    assert any("reconcile of the traffic layer left to the next" in e.text
               for e in io.events.of(Note))  # type: ignore[attr-defined]


def test_a_failure_that_is_not_a_signal_still_reconciles_when_a_kill_could_follow(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(interrupts.KILL_AFTER_VARIABLE, "10")
    config = load_environment(copy_project(tmp_path), "local").config
    router = FakeRouter(Weights(100, 0), fail_on=Weights(0, 100))  # the last step's apply fails
    io = FakeIO(config, router)
    outcome = Switch(None, SwitchPlan(Color.GREEN, [50, 100], 0, 0, 1), lambda q: True, io=io,
                     sleep=lambda s: None).run()
    assert outcome.result == "rolled-back" and "reconcile" not in outcome.restore
    assert router.flips == [Color.BLUE] and router.applied[-1] == Weights(100, 0), "Terraform reconciled"

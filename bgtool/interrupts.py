"""Ctrl-C and a cancelled CI job take one path, and a restore in progress is not cut short.

A terminal sends SIGINT on Ctrl-C (and SIGHUP when it closes); a CI runner cancelling a job sends
SIGINT, then SIGTERM about 7.5 s later, then kills the process tree about 2.5 s after that, and some
runners send SIGHUP instead (actions/runner#1309). All of them must lead a running switch to the same
place: stop, put production back on the old color, release the lock, record "interrupted". Python
turns SIGINT into KeyboardInterrupt; `install` makes SIGTERM and SIGHUP do the same, so every command
has exactly one interrupt path. The runner signals only the step's own process: a workflow step runs
bgtool with `exec`, so that process is bgtool and not a shell that would swallow the signal.

While traffic is being put back (`held_back`), a second signal must not stop the restore half way
and leave production split without a word: it is held back and reported instead, and the restore
finishes. Terraform runs in a session of its own (bgtool.terraform.runner), so a terminal's Ctrl-C
reaches bgtool only, and bgtool decides what the Terraform run in progress gets.

A leaf module (signals and the standard library only), usable from every layer.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

STOPPING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
KILL_AFTER_VARIABLE = "BGTOOL_KILL_AFTER_SIGNAL_SECONDS"
"""Set where a stopping signal is followed by a kill this many seconds later (a CI runner cancelling a
step: GitHub Actions kills the process tree about 10 s after its first signal). A restore after a signal
then does only what fits: the direct flip, the record and the lock, and leaves the Terraform reconcile
to the next apply."""
SIGNAL_NAMES = ("SIGTERM", "SIGINT", "SIGHUP")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def install() -> None:
    """SIGTERM and SIGHUP raise KeyboardInterrupt("SIGTERM"/"SIGHUP") like Ctrl-C does (call once, in the
    entry point)."""
    if _main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _interrupt)


def describe(exc: BaseException) -> str:
    """"SIGTERM" or "SIGHUP" for a cancelled job (or a closed terminal), "Ctrl-C" for a terminal's interrupt."""
    return str(exc) if str(exc) in SIGNAL_NAMES else "Ctrl-C"


@contextmanager
def held_back(notify: Callable[[str], None] | None = None) -> Iterator[list[str]]:
    """Run the block to its end even if SIGINT, SIGTERM or SIGHUP arrive; they are collected (and NOTIFY is told
    at once), not raised. Outside the main thread signals cannot be handled, and nothing changes."""
    received: list[str] = []
    if not _main_thread():
        yield received
        return

    def hold(signum: int, frame: FrameType | None) -> None:
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        received.append(name)
        if notify is not None:
            notify(name)

    previous = {sig: signal.signal(sig, hold) for sig in STOPPING}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def kill_after_signal() -> float | None:
    """Seconds from a stopping signal to the kill that follows it (KILL_AFTER_VARIABLE), None when no kill
    follows (a terminal) or the value is not a positive number."""
    try:
        seconds = float(os.environ.get(KILL_AFTER_VARIABLE, ""))
    except ValueError:
        return None
    return seconds if seconds > 0 else None

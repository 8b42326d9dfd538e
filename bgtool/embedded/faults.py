"""Faults on demand for the local data plane: how a color's processes misbehave, kept in one file per color.

A fault lives in a small JSON file under `.bgtool/dataplane/faults/ENV/COLOR.json` rather than in a
process's memory, so it applies to every process of the color, to processes started after it was set
(a deploy that replaces the color's instances), and survives a restart of the data plane. The sample
application re-reads the file only when its stat changes, so checking it on every request costs one
`stat` call.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from bgtool.errors import BgtoolError

MAX_ERRORS_PCT = 100.0
MAX_LATENCY_SECONDS = 60.0


@dataclass
class Fault:
    """How a color answers: a share of 500s, added latency, or not at all."""

    errors_pct: float = 0
    latency_seconds: float = 0
    down: bool = False

    @property
    def active(self) -> bool:
        return self.errors_pct > 0 or self.latency_seconds > 0 or self.down

    def describe(self) -> str:
        """One line for people: what a request to this color meets now."""
        if not self.active:
            return "none"
        parts = ["down (connections closed without an answer)"] if self.down else []
        if self.errors_pct:
            parts.append(f"{self.errors_pct:g}% of requests answer 500")
        if self.latency_seconds:
            parts.append(f"+{self.latency_seconds:g}s latency")
        return ", ".join(parts)


def validate(fault: Fault, source: str, names: dict[str, str] | None = None) -> Fault:
    """Refuse values a rehearsal cannot mean; `source` names where they came from (a command, a file) and
    `names` how its keys are spelled there (e.g. errors_pct is --errors on the command line)."""
    name = {"errors_pct": "errors_pct", "latency_seconds": "latency_seconds", "down": "down", **(names or {})}
    problems = []
    if not _finite_in(fault.errors_pct, 0, MAX_ERRORS_PCT):
        problems.append(f"{name['errors_pct']} {fault.errors_pct!r}: allowed 0..{MAX_ERRORS_PCT:g} (percent)")
    if not _finite_in(fault.latency_seconds, 0, MAX_LATENCY_SECONDS):
        problems.append(f"{name['latency_seconds']} {fault.latency_seconds!r}: allowed 0..{MAX_LATENCY_SECONDS:g} "
                        "(seconds)")
    if not isinstance(fault.down, bool):
        problems.append(f"{name['down']} {fault.down!r}: allowed true or false")
    if problems:
        raise BgtoolError(f"{source}: " + "; ".join(problems), hint="Nothing was changed.")
    return fault


def _finite_in(value: object, low: float, high: float) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and low <= value <= high


def faults_dir(state_dir: Path) -> Path:
    return state_dir / "dataplane" / "faults"


def fault_file(state_dir: Path, env: str, color: str) -> Path:
    return faults_dir(state_dir) / env / f"{color}.json"


def write_fault(state_dir: Path, env: str, color: str, fault: Fault) -> Path:
    """Write atomically (temp file + rename), so a process reading concurrently never sees half a file."""
    validate(fault, f"fault for {env} {color}")
    path = fault_file(state_dir, env, color)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{color}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(asdict(fault), fh, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def clear_fault(state_dir: Path, env: str, color: str) -> bool:
    """Remove the color's fault; True when there was one."""
    path = fault_file(state_dir, env, color)
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed


def load_fault(path: Path) -> Fault:
    """Read one fault file; a missing file is no fault, a malformed one is an error naming the file."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return Fault()
    except OSError as exc:
        raise BgtoolError(f"{path}: cannot read the fault file ({exc.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _malformed(path, f"not JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise _malformed(path, "expected an object with errors_pct, latency_seconds, down")
    unknown = sorted(set(data) - {"errors_pct", "latency_seconds", "down"})
    if unknown:
        raise _malformed(path, f"unknown keys {', '.join(unknown)}; allowed: errors_pct, latency_seconds, down")
    try:
        return validate(Fault(**data), "fault")
    except BgtoolError as exc:
        raise _malformed(path, exc.message.removeprefix("fault: ")) from None


def _malformed(path: Path, problem: str) -> BgtoolError:
    color, env = path.stem, path.parent.name
    return BgtoolError(f"{path}: {problem}",
                       hint=f"Run `bgtool local fault {color} --env {env} --clear` to remove it.")


def read_faults(state_dir: Path) -> dict[tuple[str, str], Fault]:
    """Every fault set in this project, keyed (env, color); files holding no active fault are left out."""
    found: dict[tuple[str, str], Fault] = {}
    for path in sorted(faults_dir(state_dir).glob("*/*.json")):
        fault = load_fault(path)
        if fault.active:
            found[(path.parent.name, path.stem)] = fault
    return found


class FaultWatcher:
    """The current fault of one color, re-read only when the file changes (checked with one stat call)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._fault = Fault()
        self.error: str | None = None

    def current(self) -> Fault:
        if self.path is None:
            return self._fault
        try:
            st = os.stat(self.path)
        except (FileNotFoundError, NotADirectoryError):
            self._stamp, self._fault, self.error = None, Fault(), None
            return self._fault
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                self._fault, self.error = load_fault(self.path), None
            except BgtoolError as exc:
                # A hand-edited file gone wrong: serve normally rather than crash the color's processes.
                self._fault, self.error = Fault(), str(exc)
        return self._fault

"""The per-environment operation lock.

Terraform locks one state for one command; a switch is many commands over minutes (apply, bake,
apply, ...), so bgtool holds its own lock for the whole operation: a DynamoDB item in the same
table as Terraform's locks (S3 backend), or an exclusively created file (local backend). A crashed
run leaves the lock with its owner, operation and time; `bgtool unlock ENV` clears it.

One run holds the lock once: an operation that runs another under the same lock (`apply` runs a
guarded switch, a deploy of the idle color) joins the lock its run already holds, after checking
that it still holds it, instead of waiting for itself.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bgtool.aws.session import Aws
from bgtool.config.schema import Environment
from bgtool.errors import BgtoolError
from bgtool.records.history import actor, now
from bgtool.records.store import store_for
from bgtool.terraform.statelocks import StateLock, clear_state_lock, find_state_locks
from bgtool.terraform.workspace import Workspace

DAMAGED = "an unknown operation (its lock is empty or unreadable: a crashed run's)"


@dataclass(frozen=True)
class LockInfo:
    owner: str
    operation: str
    since: str
    host: str
    pid: int
    raw: str | None = field(default=None, compare=False, repr=False)
    """The lock's content as stored (None for a lock not read from the store)."""

    @classmethod
    def parse(cls, raw: str, written_at: datetime | None = None) -> LockInfo:
        """A lock whose content cannot be read (empty after a crash, damaged) is still a lock: shown with
        what is known (when it was written, where the store says), clearable, never a crash."""
        try:
            item = json.loads(raw)
            return cls(str(item["owner"]), str(item["operation"]), str(item["since"]), str(item["host"]),
                       int(item["pid"]), raw=raw)
        except (ValueError, TypeError, KeyError):
            since = written_at.isoformat(timespec="seconds") if written_at is not None else ""
            return cls("unknown", DAMAGED, since, "", 0, raw=raw)

    @property
    def damaged(self) -> bool:
        return self.operation == DAMAGED

    def encoded(self) -> str:
        """What the store holds for this lock (compared on release: never someone else's)."""
        if self.raw is not None:
            return self.raw
        return json.dumps({k: v for k, v in asdict(self).items() if k != "raw"})

    def age_seconds(self, at: datetime | None = None) -> float | None:
        try:
            since = datetime.fromisoformat(self.since)
        except ValueError:
            return None
        return ((at or datetime.now(UTC)) - since).total_seconds()

    def describe(self) -> str:
        if self.damaged:
            return f"{self.operation}, written {self.since or 'at an unknown time'}"
        return f"{self.operation} by {self.owner} on {self.host} (pid {self.pid}) since {self.since}"

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "raw"}


class LockHeld(BgtoolError):
    def __init__(self, env: str, holder: LockInfo) -> None:
        self.holder = holder
        super().__init__(
            f"{env} is locked: {holder.describe()}",
            hint=f"Wait for that operation to finish. If it crashed, check 'bgtool status {env}' "
            f"and clear the lock with 'bgtool unlock {env}'.",
        )


class LockLost(BgtoolError):
    def __init__(self, env: str, mine: LockInfo, current: LockInfo | None) -> None:
        now_held = f"it is now held by {current.describe()}" if current is not None else "it is not held at all now"
        super().__init__(
            f"{env}: this run's operation lock ({mine.describe()}) was cleared while it ran ({now_held}); "
            "nothing more was started",
            hint=f"Check 'bgtool status {env}' and run the command again once no other operation runs.")


_HELD_BY_RUN: ContextVar[dict[str, tuple[int, LockInfo]] | None] = ContextVar("bgtool_operation_locks", default=None)
"""The operation locks this run holds, by store location (with the pid: a forked child holds nothing)."""


class OperationLock:
    def __init__(self, root: Path, env: str, config: Environment, aws: Aws) -> None:
        self.env = env
        self.store = store_for(root, env, config, aws)

    @classmethod
    def of(cls, ws: Workspace) -> OperationLock:
        return cls(ws.root, ws.env, ws.config, ws.aws)

    def current(self) -> LockInfo | None:
        text = self.store.read_lock()
        if text is None:
            return None
        return LockInfo.parse(text, self.store.lock_written_at())

    def acquire(self, operation: str) -> LockInfo:
        info = LockInfo(actor(), operation, now(), socket.gethostname(), os.getpid())
        while not self.store.create_lock(info.encoded()):
            holder = self.current()
            if holder is not None:
                raise LockHeld(self.env, holder)
            # released between our attempt and our read: try again
        return info

    def release(self, info: LockInfo | None = None) -> None:
        """Release; with `info`, only if we still hold it (never someone else's lock)."""
        self.store.delete_lock(info.encoded() if info is not None else None)

    @contextmanager
    def held(self, operation: str) -> Iterator[LockInfo]:
        """Hold the lock for OPERATION; inside a run that holds it already, join that (checked) hold."""
        joined = self._held_by_run()
        if joined is not None:
            current = self.current()
            if current != joined:
                raise LockLost(self.env, joined, current)
            yield joined
            return
        info = self.acquire(operation)
        token = _HELD_BY_RUN.set({**(_HELD_BY_RUN.get() or {}), self.store.lock_key: (os.getpid(), info)})
        try:
            yield info
        finally:
            _HELD_BY_RUN.reset(token)
            self.release(info)

    def _held_by_run(self) -> LockInfo | None:
        pid, info = (_HELD_BY_RUN.get() or {}).get(self.store.lock_key, (None, None))
        return info if pid == os.getpid() else None


# -- every lock of an environment, for `bgtool unlock` ---------------------------------------------


@dataclass(frozen=True)
class HeldLock:
    """One lock on an environment: bgtool's operation lock or Terraform's lock on one layer's state.

    `alive` is True when its holder is known to be running (its process on this machine, or a held
    fcntl lock): such a lock is never cleared. False: known dead. None: cannot be known from here
    (another machine, or a DynamoDB lock, which names no process).
    """

    kind: str
    layer: str | None
    holder: str
    age_seconds: float | None
    alive: bool | None
    lock: LockInfo | StateLock

    def describe(self) -> str:
        what = "operation lock" if self.kind == "operation" else f"terraform state lock of layer '{self.layer}'"
        age = f", {_age(self.age_seconds)} old" if self.age_seconds is not None else ""
        return f"{what}: {self.holder}{age}"

    def to_dict(self) -> dict[str, Any]:
        return {**self.lock.to_dict(), "kind": self.kind, "layer": self.layer, "holder": self.holder,
                "age_seconds": self.age_seconds, "alive": self.alive}


@dataclass(frozen=True)
class ClearVerdict:
    """Whether `unlock` may clear a lock, and why (said for every lock, cleared or left)."""

    clear: bool
    why: str


def clear_verdict(held: HeldLock, stale_after_minutes: int, *, force: bool) -> ClearVerdict:
    """A lock whose holder runs is never cleared; one whose holder is gone always may be. One whose holder
    cannot be seen from here (another machine, a CI job) may belong to a running operation: it is cleared
    only once older than lock.stale_after_minutes, or when the operator forces it."""
    if held.alive is True:
        return ClearVerdict(False, "its process is still running")
    if held.alive is False:
        return ClearVerdict(True, "its process is gone")
    age, limit = held.age_seconds, f"lock.stale_after_minutes ({stale_after_minutes} min)"
    if age is not None and age >= stale_after_minutes * 60:
        return ClearVerdict(True, f"stale: {_age(age)} old, older than {limit}")
    if force:
        return ClearVerdict(True, "forced (--force): its holder cannot be seen from here")
    how_old = f"only {_age(age)} old" if age is not None else "of unknown age"
    return ClearVerdict(False, f"its holder cannot be seen from here and the lock is {how_old}, not older than "
                               f"{limit}: it may be an operation still running (clear it with --force once "
                               "you know it is not)")


def environment_locks(root: Path, env: str, config: Environment, aws: Aws) -> list[HeldLock]:
    """The operation lock first, then Terraform's locks layer by layer."""
    found: list[HeldLock] = []
    operation = OperationLock(root, env, config, aws).current()
    if operation is not None:
        found.append(HeldLock("operation", None, operation.describe(), operation.age_seconds(),
                              operation_alive(operation), operation))
    for state in find_state_locks(root, env, config, aws):
        found.append(HeldLock("terraform", state.layer, state.describe(), state.age_seconds(), state.held, state))
    return found


def clear_lock(root: Path, env: str, config: Environment, aws: Aws, held: HeldLock) -> None:
    """Clear exactly the lock that was shown; one taken since is left alone (and reported)."""
    if isinstance(held.lock, StateLock):
        clear_state_lock(held.lock, config, aws)
        return
    lock = OperationLock(root, env, config, aws)
    lock.release(held.lock)
    current = lock.current()
    if current is not None:
        raise BgtoolError(f"{env} was locked again meanwhile: {current.describe()}; that lock was left in place",
                          hint=f"Run 'bgtool unlock {env}' again to see it.")


DAMAGED_GRACE_SECONDS = 60
"""A lock is written in one go: one that has stayed unreadable this long is being written by nobody."""


def operation_alive(info: LockInfo) -> bool | None:
    """Whether the operation's process still runs: knowable only on the machine that took the lock.

    A pid reused by a process started after the lock was taken does not count as the holder. A lock
    that stayed empty or unreadable past a short grace names no holder because its run never got to
    write it (it crashed, or failed to take the lock): no operation runs under it.
    """
    if info.damaged:
        age = info.age_seconds()
        return False if age is not None and age > DAMAGED_GRACE_SECONDS else None
    if info.host != socket.gethostname():
        return None
    try:
        os.kill(info.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    started = process_started(info.pid)
    since = datetime.fromisoformat(info.since)
    return started is None or started <= since + timedelta(seconds=1)


def process_started(pid: int) -> datetime | None:
    """When PID started (Linux /proc); None where that cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
    except (OSError, IndexError, StopIteration, ValueError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return datetime.fromtimestamp(boot + int(fields[19]) / ticks, UTC)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes = seconds / 60
    if minutes < 120:
        return f"{minutes:.0f} min"
    return f"{minutes / 60:.1f} h"


class LocksLeft(BgtoolError):
    """`unlock` cleared nothing; `details` lists the locks that were shown (for --json)."""

    kind = "refused"

    def __init__(self, env: str, found: list[HeldLock], why: str) -> None:
        super().__init__(f"{env} has {len(found)} lock(s) (shown above); {why}: nothing was cleared",
                         hint=f"Make sure those runs are dead, then 'bgtool unlock {env} --yes' (add --force for "
                              "a lock whose holder cannot be seen from here and that is not stale yet).")
        self.details = {"env": env, "locks": [held.to_dict() for held in found]}

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
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bgtool.aws.session import Aws
from bgtool.config.schema import Environment
from bgtool.errors import BgtoolError
from bgtool.release.history import actor, now
from bgtool.release.store import store_for
from bgtool.terraform.statelocks import StateLock, clear_state_lock, find_state_locks
from bgtool.terraform.workspace import Workspace


@dataclass(frozen=True)
class LockInfo:
    owner: str
    operation: str
    since: str
    host: str
    pid: int

    def age_seconds(self, at: datetime | None = None) -> float:
        since = datetime.fromisoformat(self.since)
        return ((at or datetime.now(UTC)) - since).total_seconds()

    def describe(self) -> str:
        return f"{self.operation} by {self.owner} on {self.host} (pid {self.pid}) since {self.since}"


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
        return LockInfo(**json.loads(text)) if text else None

    def acquire(self, operation: str) -> LockInfo:
        info = LockInfo(actor(), operation, now(), socket.gethostname(), os.getpid())
        while not self.store.create_lock(json.dumps(asdict(info))):
            holder = self.current()
            if holder is not None:
                raise LockHeld(self.env, holder)
            # released between our attempt and our read: try again
        return info

    def release(self, info: LockInfo | None = None) -> None:
        """Release; with `info`, only if we still hold it (never someone else's lock)."""
        self.store.delete_lock(json.dumps(asdict(info)) if info is not None else None)

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
        detail = asdict(self.lock) if isinstance(self.lock, LockInfo) else self.lock.to_dict()
        return {**detail, "kind": self.kind, "layer": self.layer, "holder": self.holder,
                "age_seconds": self.age_seconds, "alive": self.alive}


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


def operation_alive(info: LockInfo) -> bool | None:
    """Whether the operation's process still runs: knowable only on the machine that took the lock.

    A pid reused by a process started after the lock was taken does not count as the holder.
    """
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
                         hint=f"Make sure those runs are dead, then 'bgtool unlock {env} --yes'.")
        self.details = {"env": env, "locks": [held.to_dict() for held in found]}

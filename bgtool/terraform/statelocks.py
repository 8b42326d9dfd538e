"""Terraform's own state locks of an environment's layers: find them, judge them, clear them.

A Terraform process that is killed (OOM, a cancelled CI job, a loaded machine) leaves its lock
behind, and every later plan or apply of that layer fails with "Error acquiring the state lock".
Terraform stores the lock where the backend lives:

- S3 backend with DynamoDB locking: an item of the lock table whose `LockID` is "<bucket>/<key>"
  and whose `Info` is the JSON of Terraform's LockInfo (ID, Operation, Info, Who, Version,
  Created, Path). The "<bucket>/<key>-md5" item beside it is the state's digest, not a lock.
- local backend: an fcntl lock on the state file, held by the running process (so it dies with the
  process), and the JSON LockInfo in `.<state file name>.lock.info` beside the state. Once the
  process is gone only that file remains: it blocks nothing, but it is what Terraform reports.

For the S3 backend, clearing does what `terraform force-unlock` does (its RemoteClient.Unlock:
DeleteItem of the `LockID`), without needing an initialised layer directory, and conditional on the
`Info` that was shown, so a lock taken by someone else meanwhile is never removed (Terraform itself
compares the ID, then deletes, non-atomically). For the local backend, `force-unlock` cannot act
from another process (the lock belongs to its holder); what a dead holder leaves is the lock file,
which is removed, unless its content changed since it was shown. A local lock that a live process
still holds is never cleared: that process is running.
"""

from __future__ import annotations

import fcntl
import json
import os
import pwd
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from bgtool.aws.session import Aws
from bgtool.config.schema import Environment
from bgtool.errors import BgtoolError
from bgtool.render.templates import LAYERS, layer_dir, state_path
from bgtool.terraform.backend import state_key
from bgtool.terraform.events import Diagnostic

LOCK_SUMMARY = "Error acquiring the state lock"
OPERATIONS = {"plan": "OperationTypePlan", "apply": "OperationTypeApply"}
_INFO_LINE = re.compile(r"^\s*(ID|Path|Operation|Who|Version|Created|Info):[ \t]*(.*)$", re.M)


@dataclass(frozen=True)
class StateLock:
    """One Terraform lock on one layer's state, as Terraform recorded it."""

    layer: str
    backend: str
    location: str
    info: dict[str, Any]
    raw: str
    held: bool | None = None
    """Whether its Terraform still runs: for the local backend, whether a live process holds the fcntl
    lock; for a DynamoDB lock that names this machine, whether a terraform process here works on that
    state; None where it cannot be known (another machine's lock)."""

    @property
    def lock_id(self) -> str:
        return str(self.info.get("ID", ""))

    @property
    def created(self) -> datetime | None:
        return parse_created(str(self.info.get("Created", "")))

    def age_seconds(self, at: datetime | None = None) -> float | None:
        created = self.created
        return None if created is None else ((at or datetime.now(UTC)) - created).total_seconds()

    def describe(self) -> str:
        operation = str(self.info.get("Operation", "")).removeprefix("OperationType") or "an operation"
        who = self.info.get("Who") or "someone"
        text = f"terraform {operation.lower()} by {who} since {self.info.get('Created', '?')} (lock ID {self.lock_id})"
        if self.held is True:
            text += ", still held by a running process"
        elif self.held is False and self.backend == "s3":
            text += ", no terraform on this machine works on that state (leftover lock)"
        elif self.held is False:
            text += ", its process is gone (leftover lock file)"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "terraform", "layer": self.layer, "backend": self.backend, "location": self.location,
                "id": self.lock_id, "operation": self.info.get("Operation"), "who": self.info.get("Who"),
                "version": self.info.get("Version"), "created": self.info.get("Created"),
                "age_seconds": self.age_seconds(), "held_by_live_process": self.held}


def parse_created(text: str) -> datetime | None:
    """Terraform writes Created as RFC 3339 with nanoseconds (JSON) or Go's default format (messages)."""
    text = re.sub(r" \+0000 UTC$", "+00:00", text.strip())
    try:
        created = datetime.fromisoformat(text)
    except ValueError:
        return None
    return created if created.tzinfo else created.replace(tzinfo=UTC)


def parse_info(raw: str) -> dict[str, Any]:
    """Terraform's LockInfo JSON; a damaged record still shows up as a lock (with what could be read)."""
    try:
        info = json.loads(raw)
    except ValueError:
        return {"ID": "", "Info": raw[:200]}
    return info if isinstance(info, dict) else {"ID": "", "Info": raw[:200]}


# -- finding -----------------------------------------------------------------------------------


def find_state_locks(root: Path, env: str, config: Environment, aws: Aws,
                     layers: Sequence[str] = LAYERS) -> list[StateLock]:
    """The Terraform locks currently recorded for ENV's layers (none when the backend does not exist yet)."""
    if config.state.backend == "s3":
        return [_with_holder_seen(root, env, lock) for lock in _dynamodb_locks(env, config, aws, layers)]
    return [lock for layer in layers if (lock := _file_lock(layer, state_path(root, env, layer))) is not None]


def dynamodb_lock_id(config: Environment, env: str, layer: str) -> str:
    """The LockID Terraform's S3 backend uses: "<bucket>/<key>"."""
    return f"{config.state.bucket}/{state_key(config, env, layer)}"


def _dynamodb_locks(env: str, config: Environment, aws: Aws, layers: Sequence[str]) -> list[StateLock]:
    table = config.state.lock_table
    ids = {dynamodb_lock_id(config, env, layer): layer for layer in layers}
    try:
        found = aws.client("dynamodb").batch_get_item(RequestItems={table: {
            "Keys": [{"LockID": {"S": lock_id}} for lock_id in ids], "ConsistentRead": True}})
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return []  # no lock table yet: nothing was ever applied, nothing can be locked
        raise
    locks = []
    for item in found.get("Responses", {}).get(table, []):
        lock_id = item["LockID"]["S"]
        raw = item.get("Info", {}).get("S", "")
        locks.append(StateLock(ids[lock_id], "s3", f"dynamodb table {table}, LockID {lock_id}", parse_info(raw), raw))
    return sorted(locks, key=lambda lock: LAYERS.index(lock.layer))


def _with_holder_seen(root: Path, env: str, lock: StateLock) -> StateLock:
    """A DynamoDB lock names no process, but one taken on this machine can be judged here: is a terraform
    process working on that state (its layer directory's backend)? Another machine's stays unknown."""
    if lock.info.get("Who") != this_machine():
        return lock
    try:
        backend = (layer_dir(root, env, lock.layer) / "backend.tf").read_text()
    except OSError:
        return lock
    return replace(lock, held=terraform_running_in(backend))


def lock_info_path(state: Path) -> Path:
    """Where the local backend writes the LockInfo of STATE (Terraform's statemgr.Filesystem.lockInfoPath)."""
    return state.parent / f".{state.name.removeprefix('.')}.lock.info"


def _file_lock(layer: str, state: Path) -> StateLock | None:
    info_file = lock_info_path(state)
    try:
        raw = info_file.read_text()
    except FileNotFoundError:
        return None
    return StateLock(layer, "local", str(info_file), parse_info(raw), raw, held=held_by_process(state))


def held_by_process(state: Path) -> bool | None:
    """Whether a process holds Terraform's fcntl (POSIX record) lock on the state file right now
    (None: the file cannot be opened for writing here, so that cannot be known)."""
    try:
        fd = os.open(state, os.O_RDWR)
    except FileNotFoundError:
        return False
    except OSError:
        return None
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


# -- clearing ----------------------------------------------------------------------------------


def clear_state_lock(lock: StateLock, config: Environment, aws: Aws) -> None:
    """Remove LOCK as `terraform force-unlock` would; refuses when it changed since it was read."""
    if lock.backend == "s3":
        _clear_item(lock, config, aws)
    else:
        _clear_file(lock)


def _clear_item(lock: StateLock, config: Environment, aws: Aws) -> None:
    lock_id = lock.location.rsplit("LockID ", 1)[1]
    try:
        aws.client("dynamodb").delete_item(
            TableName=config.state.lock_table, Key={"LockID": {"S": lock_id}},
            ConditionExpression="Info = :info", ExpressionAttributeValues={":info": {"S": lock.raw}},
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        raise _changed(lock) from None


def _clear_file(lock: StateLock) -> None:
    path = Path(lock.location)
    state = path.parent / path.name.removeprefix(".").removesuffix(".lock.info")
    if held_by_process(state):
        raise BgtoolError(f"the state lock of layer '{lock.layer}' is held by a running Terraform process; "
                          f"it was left in place", hint="Let that run finish, or stop it; its lock goes with it.")
    try:
        if path.read_text() != lock.raw:
            raise _changed(lock)
        path.unlink()
    except FileNotFoundError:
        return  # gone already: the holder finished and removed it
    except OSError as exc:
        raise BgtoolError(f"cannot remove the lock file {path}: {exc.strerror}; it was left in place",
                          hint="Run the unlock as the user that runs Terraform here.") from None


def _changed(lock: StateLock) -> BgtoolError:
    return BgtoolError(f"the state lock of layer '{lock.layer}' changed after it was shown (another run took it); "
                       "it was left in place", hint="Run the unlock again to see the current holder.")


# -- Terraform's lock error ----------------------------------------------------------------------


def lock_conflict(diagnostics: Sequence[Diagnostic]) -> dict[str, str] | None:
    """The holder named by Terraform's "Error acquiring the state lock" diagnostic, if that is the error."""
    for d in diagnostics:
        if d.severity == "error" and LOCK_SUMMARY.lower() in d.summary.lower():
            return {key: value.strip() for key, value in _INFO_LINE.findall(d.detail)}
    return None


# -- a lock the failing run took itself ----------------------------------------------------------


def this_machine() -> str:
    """Who Terraform names as a lock's holder when it runs here: "<user>@<host>" (statemgr.NewLockInfo,
    whose user is the account of the process's uid, as here; not $LOGNAME or $USER)."""
    return f"{pwd.getpwuid(os.getuid()).pw_name}@{socket.gethostname()}"


def is_own_lost_lock(holder: dict[str, str], *, command: str, started: datetime, ended: datetime,
                     who: str) -> bool:
    """Whether the lock that a failed run reports was taken by that same run.

    Terraform's DynamoDB lock is a conditional PutItem. When its answer is lost (a connection dropped
    after the write, a client timeout on a slow endpoint), the AWS SDK retries it, the retry finds the
    item the first attempt wrote, and Terraform reports the state as locked by... itself. It then
    exits without releasing, and the lock blocks every later run. Such a lock names this machine's
    user and host, the failed command's operation, and a creation time inside the run (by the same
    clock, as the lock names this machine: no skew to allow for).
    """
    created = parse_created(holder.get("Created", ""))
    return (created is not None and holder.get("Who") == who
            and holder.get("Operation") == OPERATIONS.get(command)
            and started <= created <= ended)


def terraform_running_in(backend_tf: str) -> bool | None:
    """Whether a terraform process on this machine works on the state that BACKEND_TF configures
    (a directory whose backend.tf reads the same); None where processes cannot be inspected."""
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv0 = (entry / "cmdline").read_bytes().split(b"\0", 1)[0].decode(errors="replace")
            if Path(argv0).name != "terraform":
                continue
            if (Path(os.readlink(entry / "cwd")) / "backend.tf").read_text() == backend_tf:
                return True
        except (OSError, UnicodeDecodeError):
            continue  # gone meanwhile, another user's (whose lock names that user), or not a backend file
    return False


def clear_own_lost_lock(env: str, layer: str, layer_dir: Path, holder: dict[str, str], config: Environment,
                        aws: Aws, *, command: str, started: datetime, ended: datetime) -> StateLock | None:
    """Clear the lock a failed run of LAYER left in its own way (see is_own_lost_lock); the cleared
    lock, or None when the lock is not provably that run's or anything else may still hold it."""
    if config.state.backend != "s3":
        return None  # a local lock is an fcntl lock: it went with the process
    if not is_own_lost_lock(holder, command=command, started=started, ended=ended, who=this_machine()):
        return None
    if terraform_running_in((layer_dir / "backend.tf").read_text()) is not False:
        return None
    for lock in _dynamodb_locks(env, config, aws, [layer]):
        if lock.lock_id == holder.get("ID"):
            _clear_item(lock, config, aws)
            return lock
    return None

"""The per-environment operation lock.

Terraform locks one state for one command; a switch is many commands over minutes (apply, bake,
apply, ...), so bgtool holds its own lock for the whole operation: a DynamoDB item in the same
table as Terraform's locks (S3 backend), or an exclusively created file (local backend). A crashed
run leaves the lock with its owner, operation and time; `bgtool unlock ENV` clears it.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from botocore.exceptions import ClientError

from bgtool.aws.session import Aws
from bgtool.config.project import state_dir
from bgtool.config.schema import Environment
from bgtool.errors import BgtoolError
from bgtool.release.history import actor, now


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


class OperationLock:
    def __init__(self, root: Path, env: str, config: Environment, aws: Aws) -> None:
        self.env = env
        self.config = config
        self.aws = aws
        self.file = state_dir(root) / "locks" / f"{env}.json"
        self.lock_id = f"bgtool-operation/{config.state.key_prefix}/{env}"

    @property
    def _dynamodb(self) -> bool:
        return self.config.state.backend == "s3"

    def current(self) -> LockInfo | None:
        if not self._dynamodb:
            return LockInfo(**json.loads(self.file.read_text())) if self.file.exists() else None
        item = self.aws.client("dynamodb").get_item(
            TableName=self.config.state.lock_table, Key={"LockID": {"S": self.lock_id}}, ConsistentRead=True
        ).get("Item")
        return LockInfo(**json.loads(item["Info"]["S"])) if item else None

    def acquire(self, operation: str) -> LockInfo:
        info = LockInfo(actor(), operation, now(), socket.gethostname(), os.getpid())
        if self._dynamodb:
            self._acquire_item(info)
        else:
            self._acquire_file(info)
        return info

    def _acquire_item(self, info: LockInfo) -> None:
        try:
            self.aws.client("dynamodb").put_item(
                TableName=self.config.state.lock_table,
                Item={"LockID": {"S": self.lock_id}, "Info": {"S": json.dumps(asdict(info))}},
                ConditionExpression="attribute_not_exists(LockID)",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            holder = self.current()
            if holder is None:  # released between our put and our read: try once more
                return self._acquire_item(info)
            raise LockHeld(self.env, holder) from None

    def _acquire_file(self, info: LockInfo) -> None:
        self.file.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = self.current()
            if holder is None:
                return self._acquire_file(info)
            raise LockHeld(self.env, holder) from None
        with os.fdopen(fd, "w") as handle:
            json.dump(asdict(info), handle)

    def release(self, info: LockInfo | None = None) -> None:
        """Release; with `info`, only if we still hold it (never someone else's lock)."""
        if self._dynamodb:
            kwargs: dict[str, object] = {}
            if info is not None:
                kwargs = {"ConditionExpression": "Info = :info",
                          "ExpressionAttributeValues": {":info": {"S": json.dumps(asdict(info))}}}
            try:
                self.aws.client("dynamodb").delete_item(
                    TableName=self.config.state.lock_table, Key={"LockID": {"S": self.lock_id}}, **kwargs
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
            return
        if info is None or self.current() == info:
            self.file.unlink(missing_ok=True)

    @contextmanager
    def held(self, operation: str) -> Iterator[LockInfo]:
        info = self.acquire(operation)
        try:
            yield info
        finally:
            self.release(info)

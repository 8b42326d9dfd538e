"""Where an environment's release bookkeeping lives: the operation lock and the history.

Chosen once, from the state backend, so the lock and the history can never disagree about where
they are: with the S3 backend the history is an S3 object beside the Terraform state and the lock a
DynamoDB item in Terraform's lock table (shared by every operator and CI job); with the local backend
both are files under `.bgtool/` (for experiments on one machine).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from botocore.exceptions import ClientError

from bgtool.aws.session import Aws
from bgtool.config.project import state_dir
from bgtool.config.schema import Environment


class EnvironmentStore(Protocol):
    def read_history(self) -> str | None:
        """The history document, or None when nothing was recorded yet."""

    def write_history(self, text: str) -> None: ...

    def read_lock(self) -> str | None:
        """The lock holder's description, or None when unlocked."""

    def create_lock(self, text: str) -> bool:
        """Take the lock atomically; False when somebody holds it."""

    def delete_lock(self, expected: str | None) -> None:
        """Release; with `expected`, only while the lock still holds exactly that (never another's)."""


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class RemoteStore:
    """S3 object + DynamoDB item, next to the Terraform state and its locks."""

    def __init__(self, env: str, config: Environment, aws: Aws) -> None:
        self.aws, self.bucket, self.table = aws, config.state.bucket, config.state.lock_table
        self.key = f"{config.state.key_prefix}/{env}/history.json"
        self.lock_id = f"bgtool-operation/{config.state.key_prefix}/{env}"

    def read_history(self) -> str | None:
        try:
            body = self.aws.client("s3").get_object(Bucket=self.bucket, Key=self.key)["Body"]
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                return None
            raise
        return body.read().decode("utf-8")

    def write_history(self, text: str) -> None:
        self.aws.client("s3").put_object(Bucket=self.bucket, Key=self.key, Body=text.encode(),
                                         ContentType="application/json")

    def read_lock(self) -> str | None:
        item = self.aws.client("dynamodb").get_item(
            TableName=self.table, Key={"LockID": {"S": self.lock_id}}, ConsistentRead=True).get("Item")
        return item["Info"]["S"] if item else None

    def create_lock(self, text: str) -> bool:
        try:
            self.aws.client("dynamodb").put_item(
                TableName=self.table, Item={"LockID": {"S": self.lock_id}, "Info": {"S": text}},
                ConditionExpression="attribute_not_exists(LockID)")
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def delete_lock(self, expected: str | None) -> None:
        condition: dict[str, object] = {}
        if expected is not None:
            condition = {"ConditionExpression": "Info = :info",
                         "ExpressionAttributeValues": {":info": {"S": expected}}}
        try:
            self.aws.client("dynamodb").delete_item(TableName=self.table, Key={"LockID": {"S": self.lock_id}},
                                                    **condition)
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise


class FileStore:
    """Files under .bgtool/: an exclusively created lock file and a history file."""

    def __init__(self, root: Path, env: str) -> None:
        self.history = state_dir(root) / "history" / f"{env}.json"
        self.lock = state_dir(root) / "locks" / f"{env}.json"

    def read_history(self) -> str | None:
        return self.history.read_text() if self.history.exists() else None

    def write_history(self, text: str) -> None:
        self.history.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.history.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(self.history)

    def read_lock(self) -> str | None:
        try:
            return self.lock.read_text()
        except FileNotFoundError:
            return None

    def create_lock(self, text: str) -> bool:
        self.lock.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        return True

    def delete_lock(self, expected: str | None) -> None:
        if expected is None or self.read_lock() == expected:
            self.lock.unlink(missing_ok=True)


def store_for(root: Path, env: str, config: Environment, aws: Aws) -> EnvironmentStore:
    """The one place that decides where the lock and the history of ENV live."""
    if config.state.backend == "s3":
        return RemoteStore(env, config, aws)
    return FileStore(root, env)

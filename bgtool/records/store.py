"""Where an environment's release bookkeeping lives: the operation lock and the history.

Chosen once, from the state backend, so the lock and the history can never disagree about where
they are: with the S3 backend the history is S3 objects beside the Terraform state and the lock a
DynamoDB item in Terraform's lock table (shared by every operator and CI job); with the local backend
both are files under `.bgtool/` (for experiments on one machine).

Each history record is an object (a file) of its own, under a name no other writer can pick (the
time, then random bits): two runs that record at once both keep their record, whatever the lock
says. Earlier versions kept the whole history in one document (`history.json`); it is still read,
before the records, and never rewritten.
"""

from __future__ import annotations

import os
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from botocore.exceptions import ClientError

from bgtool.aws.session import Aws
from bgtool.config.project import state_dir
from bgtool.config.schema import Environment


class EnvironmentStore(Protocol):
    lock_key: str
    """Where the lock lives, the same for every store of one environment (one process joins its own lock)."""

    def read_history(self) -> str | None:
        """The single history document of earlier versions, or None when there is none."""

    def read_records(self) -> list[str]:
        """Every record added with add_record, oldest first."""

    def add_record(self, text: str) -> None:
        """Store one record under a name of its own: never overwrites another writer's record."""

    def read_lock(self) -> str | None:
        """The lock holder's description (as written, possibly damaged), or None when unlocked."""

    def lock_written_at(self) -> datetime | None:
        """When the lock was written, where the store knows it (for a lock whose content is damaged)."""

    def create_lock(self, text: str) -> bool:
        """Take the lock atomically; False when somebody holds it."""

    def delete_lock(self, expected: str | None) -> None:
        """Release; with `expected`, only while the lock still holds exactly that (never another's)."""


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def record_name() -> str:
    """Sorts by time (microseconds, UTC); the random part keeps two writers of the same instant apart."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(8)}.json"


class RemoteStore:
    """S3 object + DynamoDB item, next to the Terraform state and its locks."""

    def __init__(self, env: str, config: Environment, aws: Aws) -> None:
        self.aws, self.bucket, self.table = aws, config.state.bucket, config.state.lock_table
        self.key = f"{config.state.key_prefix}/{env}/history.json"
        self.records = f"{config.state.key_prefix}/{env}/history/"
        self.lock_id = f"bgtool-operation/{config.state.key_prefix}/{env}"
        self.lock_key = f"dynamodb:{self.table}:{self.lock_id}"

    def read_history(self) -> str | None:
        return self._get(self.key)

    def read_records(self) -> list[str]:
        keys: list[str] = []
        for page in self.aws.client("s3").get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.records):
            keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".json")]
        return [text for key in sorted(keys) if (text := self._get(key)) is not None]

    def add_record(self, text: str) -> None:
        self.aws.client("s3").put_object(Bucket=self.bucket, Key=self.records + record_name(), Body=text.encode(),
                                         ContentType="application/json")

    def _get(self, key: str) -> str | None:
        try:
            body = self.aws.client("s3").get_object(Bucket=self.bucket, Key=key)["Body"]
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                return None
            raise
        return body.read().decode("utf-8")

    def read_lock(self) -> str | None:
        item = self.aws.client("dynamodb").get_item(
            TableName=self.table, Key={"LockID": {"S": self.lock_id}}, ConsistentRead=True).get("Item")
        return item.get("Info", {}).get("S", "") if item else None

    def lock_written_at(self) -> datetime | None:
        return None

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
    """Files under .bgtool/: a lock file that appears with its content, and a file per history record."""

    def __init__(self, root: Path, env: str) -> None:
        self.history = state_dir(root) / "history" / f"{env}.json"
        self.records = state_dir(root) / "history" / env
        self.lock = state_dir(root) / "locks" / f"{env}.json"
        self.lock_key = f"file:{self.lock.resolve()}"

    def read_history(self) -> str | None:
        return self.history.read_text() if self.history.exists() else None

    def read_records(self) -> list[str]:
        if not self.records.is_dir():
            return []
        return [path.read_text() for path in sorted(self.records.glob("[!.]*.json"))]

    def add_record(self, text: str) -> None:
        self.records.mkdir(parents=True, exist_ok=True)
        name = record_name()
        tmp = self.records / f".{name}.tmp"  # hidden until complete: a reader never sees half a record
        tmp.write_text(text)
        tmp.rename(self.records / name)

    def read_lock(self) -> str | None:
        try:
            return self.lock.read_text()
        except FileNotFoundError:
            return None

    def lock_written_at(self) -> datetime | None:
        try:
            return datetime.fromtimestamp(self.lock.stat().st_mtime, UTC)
        except FileNotFoundError:
            return None

    def create_lock(self, text: str) -> bool:
        """Written aside, then linked into place: the lock never exists empty (a crash between creating
        and writing it would leave a lock nobody can read)."""
        self.lock.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.lock.with_name(f".{self.lock.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        tmp.write_text(text)
        try:
            os.link(tmp, self.lock)
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)
        return True

    def delete_lock(self, expected: str | None) -> None:
        if expected is None or self.read_lock() == expected:
            self.lock.unlink(missing_ok=True)


def store_for(root: Path, env: str, config: Environment, aws: Aws) -> EnvironmentStore:
    """The one place that decides where the lock and the history of ENV live."""
    if config.state.backend == "s3":
        return RemoteStore(env, config, aws)
    return FileStore(root, env)

"""The release history of an environment: one record per deploy, switch, rollback, retire.

Stored beside the Terraform state (an S3 object per environment, or a file with the local
backend) so that it is shared by every operator and CI job, not kept on one laptop. Writers hold
the operation lock, so read-modify-write is safe.
"""

from __future__ import annotations

import getpass
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from bgtool.aws.session import Aws
from bgtool.config.project import state_dir
from bgtool.config.schema import Environment

CI_ACTOR_VARIABLES = ("BGTOOL_ACTOR", "GITHUB_ACTOR", "GITLAB_USER_LOGIN", "BUILDKITE_BUILD_CREATOR", "CI_ACTOR")


def actor() -> str:
    for name in CI_ACTOR_VARIABLES:
        if os.environ.get(name):
            return f"{os.environ[name]} (ci)" if name != "BGTOOL_ACTOR" else os.environ[name]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Record:
    operation: str  # deploy | switch | rollback | retire
    result: str  # succeeded | failed | rolled-back | refused
    from_color: str | None = None
    to_color: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    at: str = field(default_factory=now)
    actor: str = field(default_factory=actor)


class History:
    def __init__(self, root: Path, env: str, config: Environment, aws: Aws) -> None:
        self.env = env
        self.config = config
        self.aws = aws
        self.file = state_dir(root) / "history" / f"{env}.json"
        self.key = f"{config.state.key_prefix}/{env}/history.json"

    def read(self) -> list[Record]:
        raw = self._load()
        return [Record(**item) for item in raw]

    def append(self, record: Record) -> Record:
        items = self._load()
        items.append(asdict(record))
        self._store(items)
        return record

    def last(self, operation: str, result: str | None = None) -> Record | None:
        for record in reversed(self.read()):
            if record.operation == operation and (result is None or record.result == result):
                return record
        return None

    def _load(self) -> list[dict[str, Any]]:
        if self.config.state.backend == "local":
            return json.loads(self.file.read_text()) if self.file.exists() else []
        try:
            body = self.aws.client("s3").get_object(Bucket=self.config.state.bucket, Key=self.key)["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return []
            raise
        return json.loads(body.read() or b"[]")

    def _store(self, items: list[dict[str, Any]]) -> None:
        text = json.dumps(items, indent=1)
        if self.config.state.backend == "local":
            self.file.parent.mkdir(parents=True, exist_ok=True)
            self.file.write_text(text)
            return
        self.aws.client("s3").put_object(
            Bucket=self.config.state.bucket, Key=self.key, Body=text.encode(), ContentType="application/json"
        )

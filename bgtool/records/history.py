"""The release history of an environment: one record per apply, deploy, switch, rollback, retire.

Stored beside the Terraform state (S3 objects, or files with the local backend) so that it is
shared by every operator and CI job, not kept on one laptop. A record is added as an object of its
own, never by rewriting the history: a writer that does not hold the operation lock (a failure
recorded after the lock was lost or cleared, a second process) cannot lose anyone's record.
"""

from __future__ import annotations

import getpass
import json
import os
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from bgtool.aws.session import Aws
from bgtool.config.schema import Environment
from bgtool.records.store import store_for
from bgtool.terraform.workspace import Workspace

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
    operation: str  # apply | deploy | switch | rollback | retire | release
    result: str  # succeeded | failed | rolled-back | refused
    from_color: str | None = None
    to_color: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    at: str = field(default_factory=now)
    actor: str = field(default_factory=actor)
    wrote: dict[str, Any] = field(default_factory=dict)
    """The release-owned values the operation left in the environment file, when it changed them
    (bgtool.records.provenance.release_values); empty when it wrote nothing."""
    source: dict[str, Any] = field(default_factory=dict)
    """Where the operation ran from: in a git checkout the commit (`git rev-parse HEAD`) and whether
    the environment file had uncommitted changes when it started."""

    @classmethod
    def from_dict(cls, item: dict[str, Any]) -> Record:
        """Keys this version does not know (written by a newer bgtool) are ignored, not fatal."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in item.items() if k in known})


class History:
    def __init__(self, root: Path, env: str, config: Environment, aws: Aws) -> None:
        self.env = env
        self.store = store_for(root, env, config, aws)

    @classmethod
    def of(cls, ws: Workspace) -> History:
        return cls(ws.root, ws.env, ws.config, ws.aws)

    def read(self) -> list[Record]:
        """The single document earlier versions wrote (oldest), then one record per object."""
        items: list[dict[str, Any]] = json.loads(self.store.read_history() or "[]")
        items += [json.loads(text) for text in self.store.read_records()]
        return [Record.from_dict(item) for item in items]

    def append(self, record: Record) -> Record:
        self.store.add_record(json.dumps(asdict(record), indent=1))
        return record

    def last(self, operation: str, result: str | None = None) -> Record | None:
        for record in reversed(self.read()):
            if record.operation == operation and (result is None or record.result == result):
                return record
        return None


def applied_from(records: list[Record]) -> str | None:
    """The commit the environment was last applied from as a whole: the newest `apply` that succeeded
    over every layer, run from a commit whose environment file had no uncommitted changes. A deploy,
    switch, rollback or retire moves a color or the traffic, not the templates, modules and the rest of
    the file, so none of them says the environment is up to date with a commit; a dirty file applied
    values no commit holds."""
    for record in reversed(records):
        if record.operation == "apply" and record.result == "succeeded" and record.details.get("complete"):
            commit = record.source.get("commit")
            if commit and not record.source.get("dirty"):
                return str(commit)
    return None


def read_applied_from(root: Path, env: str, config: Environment) -> str | None:
    """applied_from of ENV's stored history; None when its state bucket does not exist yet (never applied)."""
    try:
        return applied_from(History(root, env, config, Aws(config)).read())
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code", "")) in ("NoSuchBucket", "404"):
            return None
        raise

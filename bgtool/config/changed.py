"""Which environments a change touches: the input of the pull-request and merge pipelines.

An environment file touches its environment; templates, modules, bgtool's own code and its
packaging touch every environment (they change what every environment renders to). A deleted
environment file is reported as deleted: there is nothing left to plan or apply, and destroying
an environment is a deliberate act, never a side effect of a merge.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from bgtool.config.schema import ENV_NAME, list_environments
from bgtool.errors import BgtoolError

SHARED_PREFIXES = ("templates/", "modules/", "bgtool/")
SHARED_FILES = ("pyproject.toml",)
LAST = ("prod", "production")


@dataclass
class Changed:
    env: str
    status: str  # "changed" | "deleted"
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"env": self.env, "status": self.status, "reasons": self.reasons}


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BgtoolError(f"git {' '.join(args)} failed: {done.stderr.strip()}",
                          hint="Is this a git checkout with the base ref fetched (fetch-depth: 0)?")
    return done.stdout


def changed_files(root: Path, base: str) -> list[tuple[str, str]]:
    """(status letter, path) since the merge base of BASE and HEAD, working tree and untracked included."""
    merge_base = git(root, "merge-base", base, "HEAD").strip()
    prefix = git(root, "rev-parse", "--show-prefix").strip()
    out = []
    for line in git(root, "diff", "--name-status", "--no-renames", merge_base, "--", ".").splitlines():
        status, _, path = line.partition("\t")
        out.append((status[:1], path))
    out += [("A", prefix + p) for p in git(root, "ls-files", "--others", "--exclude-standard", "--", ".").splitlines()]
    return [(s, p[len(prefix):] if prefix and p.startswith(prefix) else p) for s, p in out]


def classify(files: list[tuple[str, str]], existing: list[str]) -> list[Changed]:
    """Pure: changed paths (relative to the project root) → affected environments, prod last."""
    found: dict[str, Changed] = {}
    shared = [p for _, p in files if p.startswith(SHARED_PREFIXES) or p in SHARED_FILES]
    for status, path in files:
        parts = path.split("/")
        if len(parts) == 2 and parts[0] == "environments" and parts[1].endswith(".yaml"):
            env = parts[1][: -len(".yaml")]
            if not ENV_NAME.match(env):
                continue
            deleted = status == "D" and env not in existing
            found[env] = Changed(env, "deleted" if deleted else "changed", [path])
    if shared:
        reason = f"shared: {', '.join(sorted(shared)[:5])}" + (" ..." if len(shared) > 5 else "")
        for env in existing:
            found.setdefault(env, Changed(env, "changed")).reasons.append(reason)
    return sorted(found.values(), key=lambda c: (c.env in LAST, c.env))


def changed_environments(root: Path, base: str) -> list[Changed]:
    return classify(changed_files(root, base), list_environments(root))

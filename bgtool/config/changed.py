"""Which environments a change touches: the input of the pull-request and merge pipelines.

An environment file touches its environment; templates, modules, bgtool's own code and its
packaging touch every environment (they change what every environment renders to). A deleted
environment file is reported as deleted: there is nothing left to plan or apply, and destroying
an environment is a deliberate act, never a side effect of a merge.

An environment whose file targets the embedded AWS (`aws.endpoint`: a moto server on loopback) is
reported apart, as embedded: a pipeline's runner has no embedded AWS running and its state would die
with the job, so the pipelines leave such environments out (with a notice) rather than let them fail
or block a real environment. `bgtool local up` and the test suite rehearse them instead.

The merge pipeline asks per environment (`since_applied`): what differs between the commit that
environment was last applied from (its history says) and HEAD. A run that was replaced in the
queue, failed or cancelled applied nothing new, so the next run still finds those changes.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bgtool.config.schema import ENV_NAME, list_environments, load_environment
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


def every_environment(root: Path) -> list[Changed]:
    """Every environment file, prod last: what the nightly drift check covers."""
    return sorted((Changed(env, "changed", ["every environment"]) for env in list_environments(root)),
                  key=lambda c: (c.env in LAST, c.env))


def is_embedded(root: Path, env: str) -> bool:
    """The file targets the embedded AWS. A file that does not load counts as real: the pipeline's own
    job then reports what is wrong with it, instead of the file being skipped."""
    try:
        return load_environment(root, env).config.embedded
    except BgtoolError:
        return False


def split_embedded(found: Iterable[Changed], embedded: Iterable[str]) -> tuple[list[Changed], list[Changed]]:
    """Pure: (real environments, embedded ones), each in the order given."""
    names = set(embedded)
    found = list(found)
    return [c for c in found if c.env not in names], [c for c in found if c.env in names]


def commit_known(root: Path, commit: str) -> bool:
    done = subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=root, capture_output=True,
                          check=False)
    return done.returncode == 0


def files_between(root: Path, commit: str) -> list[tuple[str, str]]:
    """(status letter, path) that differ between COMMIT and HEAD (what applying HEAD would change)."""
    prefix = git(root, "rev-parse", "--show-prefix").strip()
    out = []
    for line in git(root, "diff", "--name-status", "--no-renames", commit, "HEAD", "--", ".").splitlines():
        status, _, path = line.partition("\t")
        out.append((status[:1], path[len(prefix):] if prefix and path.startswith(prefix) else path))
    return out


def since_applied(root: Path, applied: Mapping[str, str | None], existing: list[str]) -> list[Changed]:
    """For each environment of APPLIED (name → the commit it was last applied from, None: never, or not
    from a commit), whether HEAD changes its file or the shared code since that commit; prod last.
    A commit this repository does not know (applied from another clone's unpushed commit, or
    history rewritten) counts as changed: only an apply from HEAD's own history proves anything."""
    found: list[Changed] = []
    diffs: dict[str, list[Changed]] = {}
    for env, commit in applied.items():
        if commit is None:
            found.append(Changed(env, "changed", ["never applied from a commit (no apply in its history)"]))
        elif not commit_known(root, commit):
            found.append(Changed(env, "changed", [f"last applied from {commit[:12]}, unknown to this repository"]))
        else:
            if commit not in diffs:
                diffs[commit] = classify(files_between(root, commit), existing)
            hit = next((c for c in diffs[commit] if c.env == env and c.status == "changed"), None)
            if hit is not None:
                found.append(Changed(env, "changed", [f"since {commit[:12]}: {r}" for r in hit.reasons]))
    return sorted(found, key=lambda c: (c.env in LAST, c.env))

"""Does the environment file know about the last release? And the git side of a release's file change.

A switch, rollback or deploy run from a terminal rewrites `environments/ENV.yaml` in that checkout.
Until that change is merged, every other checkout (main, the GitOps pipeline) still has the old
values, and `bgtool apply ENV` there would "reconcile" production back to them: a silent revert. So
every release record carries what it wrote into the file (`release_values`: active_color, each
color's version and retired flag, the only keys bgtool owns in that file) and where it ran from (the
commit, and whether the file had uncommitted changes). Before the GitOps path moves traffic, and
before a deploy, `stale_file_error` compares the file with the last record that wrote the file.

The rule (`file_is_newer`), in this order:
1. The file's release-owned values equal what the last record wrote: nothing to decide, go on.
   Anything else in the file (comments, other keys, capacity) is never compared.
2. In a git checkout, find the commit that gave the file its current release-owned values (the
   oldest commit of the unbroken run, newest first, of commits touching the file whose values
   equal today's; an edit of a comment does not count). If the record's start commit is known to
   this repository, the file is newer exactly when that commit is NOT an ancestor of the record's
   start commit (`git merge-base --is-ancestor`): the operator already had those values when they
   ran the release, so the release replaced them and they are stale.
3. Otherwise (the record's commit is unknown here: another clone), compare the time that commit
   was made with the record's time.
4. A file with uncommitted changes to these values, or outside git: the file's mtime against the
   record's time.
5. A shallow clone whose history ends before the values were introduced cannot tell: refuse, and
   say to fetch the full history.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from bgtool.config.schema import Color, Environment
from bgtool.errors import BgtoolError
from bgtool.records.history import Record
from bgtool.terraform.workspace import Workspace

# A file whose history is longer than this without a change of its release values is old enough
# that only the record's time matters; the walk stays cheap on a long-lived repository.
MAX_COMMITS_WALKED = 200

# --------------------------------------------------------------------------------------------
# What the release owns in the file (pure)
# --------------------------------------------------------------------------------------------


def release_values(config: Environment) -> dict[str, Any]:
    """The values of the file that releases write; everything else in the file is people's."""
    return {
        "active_color": config.active_color.value,
        "versions": {c.value: config.colors.of(c).version for c in Color},
        "retired": {c.value: config.colors.of(c).retired for c in Color},
    }


def release_values_of_text(text: str) -> dict[str, Any] | None:
    """The same values from a file's text at some commit (not validated: old commits may predate
    today's schema); None when the text is not a readable environment file."""
    try:
        doc = YAML(typ="safe").load(text)
    except YAMLError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("colors"), dict):
        return None
    colors = doc["colors"]

    def color(c: Color) -> dict[str, Any]:
        entry = colors.get(c.value)
        return entry if isinstance(entry, dict) else {}

    return {
        "active_color": str(doc.get("active_color")),
        "versions": {c.value: str(color(c).get("version")) for c in Color},
        "retired": {c.value: bool(color(c).get("retired", False)) for c in Color},
    }


def differences(file: dict[str, Any], wrote: dict[str, Any]) -> list[str]:
    """Release-owned values where the file and a record disagree, in words ("green version: ...")."""
    out = []
    if file.get("active_color") != wrote.get("active_color"):
        out.append(f"active_color: the file says {file.get('active_color')}, "
                   f"production was set to {wrote.get('active_color')}")
    for key, word in (("versions", "version"), ("retired", "retired")):
        mine, theirs = file.get(key) or {}, wrote.get(key) or {}
        for c in Color:
            if c.value in theirs and mine.get(c.value) != theirs.get(c.value):
                out.append(f"{c.value} {word}: the file says {mine.get(c.value)}, "
                           f"the release wrote {theirs.get(c.value)}")
    return out


def last_change(records: list[Record]) -> Record | None:
    """The newest record that wrote release-owned values into the file."""
    for record in reversed(records):
        if record.wrote:
            return record
    return None


@dataclass(frozen=True)
class Origin:
    """When the file's current release-owned values came to be."""

    commit: str | None = None
    """The commit that introduced them (None: uncommitted edit, or not a git checkout)."""
    time: datetime | None = None
    """That commit's time, or the file's mtime."""
    unknown: bool = False
    """A shallow clone's history ends before they were introduced."""

    def describe(self) -> str:
        when = self.time.isoformat(timespec="seconds") if self.time else "unknown"
        return f"commit {self.commit[:12]} of {when}" if self.commit else f"file modified {when}"


Ancestry = Callable[[str, str], bool | None]
"""is_ancestor(a, b): True/False, or None when either commit is unknown to the repository."""


def parse_time(text: str) -> datetime:
    at = datetime.fromisoformat(text)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def file_is_newer(origin: Origin, record: Record, is_ancestor: Ancestry) -> bool | None:
    """Rules 2-5 of the module docstring; None when it cannot be decided."""
    start = record.source.get("commit")
    if origin.commit and start:
        verdict = is_ancestor(origin.commit, start)
        if verdict is not None:
            return not verdict
    if origin.unknown or origin.time is None:
        return None
    return origin.time > parse_time(record.at)


def stale_file_error(env: str, file: dict[str, Any], records: list[Record], origin: Callable[[], Origin],
                     is_ancestor: Ancestry, *, action: str) -> BgtoolError | None:
    """The refusal when the file predates the last release that wrote it; None when it may be used.

    `origin` is only asked for when the file disagrees with that release (it costs git calls)."""
    last = last_change(records)
    if last is None:
        return None
    diffs = differences(file, last.wrote)
    if not diffs:
        return None
    found = origin()
    newer = file_is_newer(found, last, is_ancestor)
    if newer:
        return None
    return _refusal(env, last, diffs, found, newer, action)


def _refusal(env: str, last: Record, diffs: list[str], origin: Origin, newer: bool | None,
             action: str) -> BgtoolError:
    wrote = last.wrote
    versions = ", ".join(f"{c} {v}" for c, v in (wrote.get("versions") or {}).items())
    started = last.source.get("commit")
    where = f" from commit {started[:12]}" if started else ""
    why = ("the repository is a shallow clone whose history does not show when the file got these values"
           if newer is None else f"the file's values date from {origin.describe()}, before that {last.operation}")
    color = wrote.get("active_color")
    return BgtoolError(
        f"refusing to {action}: environments/{env}.yaml predates the last release of {env}. "
        f"{last.actor} ran {last.operation} ({last.result}) at {last.at}{where}, which left active_color "
        f"{color} ({versions}) in the file; here {'; '.join(diffs)}; {why}. Nothing was changed.",
        hint=f"Either merge the file change that {last.operation} made (in the checkout it ran in: "
             f"'git diff environments/{env}.yaml', or run releases with --commit), or, to really move "
             f"production, run 'bgtool switch {env} --to COLOR' deliberately."
             + (" In CI, check out the full history (fetch-depth: 0)." if newer is None else ""),
    )


def commit_message(env: str, operation: str, before: Environment, after: Environment) -> str:
    """The subject line of a release's commit: environment, colors and versions."""
    def versions(config: Environment) -> str:
        return ", ".join(f"{c.value} {config.colors.of(c).version}" for c in Color)

    if operation == "deploy":
        changed = [c for c in Color if before.colors.of(c).version != after.colors.of(c).version]
        detail = ", ".join(f"{c.value} {before.colors.of(c).version} → {after.colors.of(c).version}"
                           for c in changed) or versions(after)
        return f"{env}: deploy {detail} (live {after.active_color.value})"
    moved = (f"{before.active_color.value} → {after.active_color.value}"
             if before.active_color is not after.active_color else f"stays {after.active_color.value}")
    return f"{env}: {operation} {moved} ({versions(after)})"


# --------------------------------------------------------------------------------------------
# Operations: stamp their records, refuse a stale file
# --------------------------------------------------------------------------------------------


def begin(ws: Workspace) -> dict[str, Any]:
    """Where an operation starts from; taken at its start, before it makes the file dirty."""
    return source(ws.loaded.path)


def stamp(config: Environment, started: dict[str, Any], wrote: bool) -> dict[str, Any]:
    """`wrote` and `source` of an operation's record. WROTE: the operation set the release-owned values
    (even to what the file already said: a deliberate switch to the file's color counts)."""
    return {"wrote": release_values(config) if wrote else {}, "source": started}


def refuse_stale(ws: Workspace, records: list[Record], action: str) -> None:
    """Raise the refusal when WS's file predates the last release that wrote it."""
    path = ws.loaded.path
    error = stale_file_error(ws.env, release_values(ws.config), records, lambda: origin(path),
                             is_ancestor(path.parent), action=action)
    if error is not None:
        raise error


# --------------------------------------------------------------------------------------------
# Git (I/O)
# --------------------------------------------------------------------------------------------


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str] | None:
    """None when git itself is not installed."""
    try:
        return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, check=False,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        return None


def _out(cwd: Path, *args: str) -> str | None:
    done = _git(cwd, *args)
    return done.stdout if done is not None and done.returncode == 0 else None


def git_root(path: Path) -> Path | None:
    """The work tree holding PATH, or None outside git (or without git)."""
    top = _out(path.parent, "rev-parse", "--show-toplevel")
    return Path(top.strip()) if top else None


def _relative(path: Path, root: Path) -> str:
    return path.resolve().relative_to(root.resolve()).as_posix()


def tracked(path: Path) -> bool:
    return _out(path.parent, "ls-files", "--error-unmatch", "--", path.name) is not None


def dirty(path: Path) -> bool:
    """The file differs from HEAD (or is not committed at all)."""
    status = _out(path.parent, "status", "--porcelain", "--", path.name)
    return bool(status and status.strip())


def source(path: Path) -> dict[str, Any]:
    """Where an operation on PATH starts from: {} outside git."""
    if git_root(path) is None:
        return {}
    head = _out(path.parent, "rev-parse", "HEAD")
    return {"commit": head.strip() if head else None, "dirty": dirty(path)}


def is_ancestor(cwd: Path) -> Ancestry:
    def check(a: str, b: str) -> bool | None:
        done = _git(cwd, "merge-base", "--is-ancestor", a, b)
        if done is None or done.returncode not in (0, 1):
            return None  # 128: a commit this repository does not have
        return done.returncode == 0

    return check


def _mtime(path: Path) -> Origin:
    return Origin(None, datetime.fromtimestamp(path.stat().st_mtime, UTC))


def origin(path: Path) -> Origin:
    """When the file's current release-owned values were introduced (rules 2-5)."""
    root = git_root(path)
    current = release_values_of_text(path.read_text(encoding="utf-8"))
    if root is None or not tracked(path):
        return _mtime(path)
    rel = _relative(path, root)
    if dirty(path) and release_values_of_text(_out(root, "show", f"HEAD:{rel}") or "") != current:
        return _mtime(path)  # the values were edited here and not committed yet
    log = _out(root, "log", f"-{MAX_COMMITS_WALKED}", "--format=%H %ct", "--", rel) or ""
    found: Origin | None = None
    commits = [line.split() for line in log.splitlines() if line.strip()]
    for sha, stamp in commits:
        if release_values_of_text(_out(root, "show", f"{sha}:{rel}") or "") != current:
            break
        found = Origin(sha, datetime.fromtimestamp(int(stamp), UTC))
    else:
        if found is not None and _shallow(root, found.commit):
            return Origin(found.commit, found.time, unknown=True)
    return found or _mtime(path)


def _shallow(root: Path, commit: str | None) -> bool:
    """COMMIT is where a shallow clone's history is cut off."""
    name = _out(root, "rev-parse", "--git-path", "shallow")
    if not name or not commit:
        return False
    shallow = Path(name.strip())
    shallow = shallow if shallow.is_absolute() else root / shallow
    return shallow.exists() and commit in shallow.read_text().split()


def file_diff(path: Path) -> list[str] | None:
    """The changed lines of PATH against HEAD ("-old", "+new"); None outside git, [] for a file git
    does not track yet (all of it is new: no one-line diff to show)."""
    root = git_root(path)
    if root is None:
        return None
    rel = _relative(path, root)
    if not tracked(path):
        return []
    text = _out(root, "diff", "--no-color", "--no-ext-diff", "-U0", "HEAD", "--", rel) or ""
    return [line for line in text.splitlines()
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def require_git(path: Path, flag: str = "--commit") -> None:
    """Refuse FLAG up front (before anything changes) when PATH is not in a git checkout."""
    if git_root(path) is None:
        raise BgtoolError(f"{flag}: {path} is not in a git checkout; nothing was changed",
                          hint=f"Run without {flag}, or from a git checkout of the project.")


def commit_file(path: Path, message: str) -> str:
    """Commit PATH alone (other staged or modified files stay as they are); never pushes."""
    root = git_root(path)
    if root is None:
        raise BgtoolError(f"{path} is not in a git checkout")
    rel = _relative(path, root)
    for args in (("add", "--", rel), ("commit", "--quiet", "-m", message, "--only", "--", rel)):
        done = _git(root, *args)
        if done is None or done.returncode != 0:
            error = done.stderr.strip() if done is not None else "git is not installed"
            raise BgtoolError(f"git {args[0]} of {rel} failed: {error}",
                              hint=f"The file is written; commit it yourself: git commit -m '{message}' -- {rel}")
    head = _out(root, "rev-parse", "HEAD")
    return head.strip() if head else ""

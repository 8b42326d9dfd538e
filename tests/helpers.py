"""Shared test helpers: a throwaway copy of the project to act on."""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path

from bgtool.config import envfile
from bgtool.config.schema import Color, load_environment
from bgtool.records.provenance import release_values, release_values_of_text

REPO = Path(__file__).resolve().parents[1]
IGNORED = shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "*.tfstate*")


def copy_project(dest: Path) -> Path:
    """Copy what bgtool reads (environments, templates, modules) so tests never touch the repo.

    The copied environment files carry the committed release-owned values (see `_as_committed`)."""
    for name in ("environments", "templates", "modules", "tests/hosts", "db"):
        src = REPO / name
        if src.exists():
            shutil.copytree(src, dest / name, symlinks=True, ignore=IGNORED)
    for path in sorted((dest / "environments").glob("*.yaml")):
        _as_committed(dest, path)
    return dest


@cache
def _committed_text(name: str) -> str | None:
    """environments/NAME as committed at HEAD; None outside git or for a file git does not track."""
    try:
        done = subprocess.run(["git", "-C", str(REPO), "show", f"HEAD:environments/{name}"],
                              capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return None
    return done.stdout if done.returncode == 0 else None


def _as_committed(root: Path, path: Path) -> None:
    """Give the copy the committed release-owned values (active_color, versions, retired).

    `make demo`, or any switch or deploy run from this checkout, rewrites them in the working tree;
    tests must not depend on that. Deliberate, uncommitted edits of other keys are kept.
    """
    committed = release_values_of_text(_committed_text(path.name) or "")
    if committed is None:
        return
    loaded = load_environment(root, path.stem)
    if release_values(loaded.config) == committed:
        return
    envfile.set_active_color(loaded, Color(committed["active_color"]))
    for color in Color:  # each write decides on the file as the previous one left it
        envfile.set_version(load_environment(root, path.stem), color, committed["versions"][color.value])
        loaded = load_environment(root, path.stem)
        if loaded.config.colors.of(color).retired != committed["retired"][color.value]:
            envfile.set_retired(loaded, color, committed["retired"][color.value])


def edit_yaml(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def basic_gate(path: Path) -> None:
    """Reduce an environment file's gate to capacity, target health and alarms (no smoke requests, host
    checks or load): for tests of what happens around a switch, which do not need the local data plane."""
    text = path.read_text()
    start = text.index("\ngate:\n") + 1
    rest = text[start:].splitlines(keepends=True)
    end = next((i for i, line in enumerate(rest[1:], 1) if line[:1] not in (" ", "#", "\n")), len(rest))
    # The step's traffic is still judged, with the embedded AWS's latency tolerance (response times here
    # are estimates from HAProxy averages on a shared CPU, as environments/local.yaml says).
    gate = "gate:\n  min_healthy: 1\n  wait_seconds: 120\n  analysis:\n    latency_tolerance_ms: 300\n\n"
    path.write_text(text[:start] + gate + "".join(rest[end:]))


def git(cwd: Path, *args: str) -> str:
    """git in CWD with a committer identity of its own (a test machine may have none); its stdout."""
    done = subprocess.run(["git", "-c", "user.name=dev", "-c", "user.email=dev@example.com", *args], cwd=cwd,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()

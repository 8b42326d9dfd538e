"""Where a bgtool project lives on disk.

The project root is the directory holding `environments/`; commands find it from the working
directory upwards (as git finds `.git`), or from BGTOOL_ROOT, so `make` targets, CI jobs and
people in a subdirectory all act on the same files.
"""

from __future__ import annotations

import os
from pathlib import Path

from bgtool.errors import BgtoolError


def find_root(start: Path | None = None) -> Path:
    explicit = os.environ.get("BGTOOL_ROOT")
    if explicit:
        root = Path(explicit).resolve()
        if not (root / "environments").is_dir():
            raise BgtoolError(f"BGTOOL_ROOT={explicit}: no environments/ directory there")
        return root
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "environments").is_dir():
            return candidate
    raise BgtoolError(
        f"no bgtool project found from {here}: no environments/ directory here or above",
        hint="Run bgtool inside a project, or set BGTOOL_ROOT.",
    )


def state_dir(root: Path) -> Path:
    """Machine-local working files (embedded AWS pid/log, CLI config, local state and locks)."""
    path = root / ".bgtool"
    path.mkdir(parents=True, exist_ok=True)
    return path

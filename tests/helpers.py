"""Shared test helpers: a throwaway copy of the project to act on."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
IGNORED = shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "*.tfstate*")


def copy_project(dest: Path) -> Path:
    """Copy what bgtool reads (environments, templates, modules) so tests never touch the repo."""
    for name in ("environments", "templates", "modules", "tests/hosts"):
        src = REPO / name
        if src.exists():
            shutil.copytree(src, dest / name, symlinks=True, ignore=IGNORED)
    return dest


def edit_yaml(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))

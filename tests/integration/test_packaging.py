"""`pip install .` in a clean virtual environment, without the local/test extras, gives a working CLI.

This is what the GitHub workflows and a user do. The wheel is built from a copy of the sources
(building in the tree would write build/ and *.egg-info into the repository) and installed with
its declared dependencies only, from PyPI or pip's cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO


def run(*cmd: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None,
        timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, text=True, capture_output=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, check=False)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment minus anything that would let the development venv leak in."""
    drop = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "BGTOOL_ROOT", "BGTOOL_AWS_ENDPOINT")
    return {**{k: v for k, v in os.environ.items() if k not in drop}, "PIP_DISABLE_PIP_VERSION_CHECK": "1", **extra}


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("packaging")
    src = work / "src"
    shutil.copytree(REPO / "bgtool", src / "bgtool", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", work / "dist", src, env=clean_env())
    assert built.returncode == 0, built.stderr
    [wheel] = (work / "dist").glob("bgtool-*.whl")
    created = run(sys.executable, "-m", "venv", work / "venv", env=clean_env())
    assert created.returncode == 0, created.stderr
    installed = run(work / "venv/bin/python", "-m", "pip", "install", "-q", wheel, env=clean_env())
    assert installed.returncode == 0, installed.stderr
    return work / "venv"


def test_declared_dependencies_cover_every_import(venv: Path) -> None:
    """Every module of the package imports with only the declared dependencies installed."""
    code = ("import importlib, pkgutil, bgtool\n"
            "names = [m.name for m in pkgutil.walk_packages(bgtool.__path__, 'bgtool.')]\n"
            "[importlib.import_module(n) for n in names]\n"
            "print(len(names))\n")
    done = run(venv / "bin/python", "-c", code, cwd=venv, env=clean_env())
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 20
    assert run(venv / "bin/python", "-m", "pip", "check", env=clean_env()).returncode == 0


def test_the_cli_does_not_need_click(venv: Path) -> None:
    done = run(venv / "bin/python", "-c", "import importlib.util; print(importlib.util.find_spec('click'))",
               env=clean_env())
    assert done.stdout.strip() == "None", "click is installed in the clean venv: this test proves nothing then"
    requires = run(venv / "bin/python", "-c", "from importlib.metadata import requires; print(requires('bgtool'))",
                   env=clean_env())
    assert "click" not in requires.stdout


def test_help_usage_error_and_json_error_document(venv: Path, tmp_path: Path) -> None:
    bgtool = venv / "bin/bgtool"
    (tmp_path / "environments").mkdir()
    env = clean_env(BGTOOL_ROOT=str(tmp_path))

    helped = run(bgtool, "--help", cwd=tmp_path, env=env)
    assert helped.returncode == 0, helped.stderr
    for command in ("plan", "apply", "switch", "rollback", "status", "unlock", "drift"):
        assert command in helped.stdout

    for argv in (["status"], ["nosuchcommand"], ["status", "x", "--no-such-option"]):
        usage = run(bgtool, *argv, cwd=tmp_path, env=env)
        assert usage.returncode == 3, (argv, usage.stderr)
        assert "Usage: bgtool" in usage.stderr and "Traceback" not in usage.stderr

    failed = run(bgtool, "status", "nosuchenv", "--json", cwd=tmp_path, env=env)
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    doc = json.loads(failed.stdout)
    assert doc["ok"] is False and doc["error"]["kind"] == "config"
    assert "nosuchenv" in doc["error"]["message"] and doc["error"]["exit_code"] == 1

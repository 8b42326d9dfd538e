"""The embedded AWS for the integration tests, and `local` applied once for the whole run.

Applying `local` takes minutes (creating the load balancer alone about one), so the first worker
that needs it applies it and saves it (`bgtool local save`); every module that needs an applied
`local` gets a project of its own restored from that archive in seconds (`bgtool local restore`),
on an embedded AWS that stops when the module is done. Modules that test other shapes of an
environment add their own to the module's `project` (add_environment).
"""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from bgtool.aws.session import Aws
from bgtool.config.schema import load_environment
from bgtool.embedded import server as embedded
from bgtool.embedded import snapshot
from tests.helpers import copy_project

BGTOOL = str(Path(sys.executable).with_name("bgtool"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Project:
    root: Path
    endpoint: str

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "BGTOOL_ROOT": str(self.root), "BGTOOL_AWS_ENDPOINT": self.endpoint}

    def run(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """Run the installed bgtool command, exactly as a person or CI would."""
        return subprocess.run(
            [BGTOOL, *args], cwd=self.root, env=self.env, text=True, capture_output=True,
            timeout=timeout, stdin=subprocess.DEVNULL, check=False,
        )

    def ok(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        done = self.run(*args, timeout=timeout)
        assert done.returncode == 0, f"bgtool {' '.join(args)} exited {done.returncode}\n{done.stderr}\n{done.stdout}"
        return done

    def aws(self, env: str = "local") -> Aws:
        return Aws(load_environment(self.root, env, endpoint_override=self.endpoint).config)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """An embedded AWS of the module's own, empty: it stops hosting what the module made once the module is done."""
    root = copy_project(tmp_path_factory.mktemp("project"))
    info, _ = embedded.up(root, free_port())
    try:
        yield Project(root, info.endpoint)
    finally:
        embedded.down(root)


def _shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory the workers of this run share, and no other run."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def standard_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`local` applied once for the run and saved; the first worker to ask applies it, the others wait."""
    shared = _shared(tmp_path_factory)
    archive, failed = shared / "local-applied.tar.gz", shared / "local-applied.failed"
    with (shared / "local-applied.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if failed.exists():
            pytest.fail(failed.read_text(), pytrace=False)
        if not archive.exists():
            try:
                _apply_and_save(copy_project(shared / "local-applied"), archive)
            except BaseException as exc:
                failed.write_text(f"applying and saving `local` failed: {exc}")
                raise
    return archive


def _apply_and_save(root: Path, archive: Path) -> None:
    info, _ = embedded.up(root, free_port())
    try:
        project = Project(root, info.endpoint)
        if project.run("apply", "local", "--yes", timeout=1500).returncode != 0:  # a dropped connection
            project.ok("apply", "local", "--yes", timeout=1500)
        project.ok("local", "save", str(archive))
    finally:
        embedded.down(root)


@contextmanager
def restored(archive: Path, root: Path) -> Iterator[Project]:
    """A project at ROOT with ARCHIVE's environment, on an embedded AWS of its own while the block runs."""
    done = snapshot.restore(copy_project(root), archive, free_port())
    try:
        yield Project(root, done.info.endpoint)
    finally:
        embedded.down(root)


@pytest.fixture(scope="module")
def applied(standard_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """A project of this module's own with `local` applied (restored from the run's one apply)."""
    with restored(standard_archive, tmp_path_factory.mktemp("applied")) as project:
        yield project


def add_environment(project: Project, env: str, octet: int, *, backend: str = "s3") -> str:
    """A second embedded environment beside `local`: own name, VPC range and state keys.

    For tests that change an environment (deploys, switches, out-of-band edits) without
    disturbing the shared `local` one; apply it with `project.ok("apply", env, "--yes")`.
    `backend="local"` keeps its state and locks in files under the project's .bgtool/.
    """
    text = (project.root / "environments/local.yaml").read_text()
    text = text.replace("name: bgtool-local", f"name: bgtool-{env}").replace("10.20.", f"10.{octet}.")
    text = text.replace("backend: s3", f"backend: {backend}", 1)
    (project.root / f"environments/{env}.yaml").write_text(text)
    return env

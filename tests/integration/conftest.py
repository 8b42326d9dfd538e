"""One embedded AWS and one applied `local` environment for the whole session.

Creating an ALB on the embedded AWS takes about a minute, so the environment is applied once and
shared; tests that change it restore what they changed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bgtool.aws.session import Aws
from bgtool.config.schema import load_environment
from bgtool.embedded import server as embedded
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


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    root = copy_project(tmp_path_factory.mktemp("project"))
    info, _ = embedded.up(root, free_port())
    try:
        yield Project(root, info.endpoint)
    finally:
        embedded.down(root)


@pytest.fixture(scope="session")
def applied(project: Project) -> Project:
    project.ok("apply", "local", "--yes")
    return project


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

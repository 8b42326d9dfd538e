"""`bgtool plan` on a machine without a way to the registry, with nothing set: bgtool finds the mirror.

What `make demo` leaves behind must work when run by hand: `.venv/bin/bgtool plan local` on an
offline machine, without BGTOOL_PROVIDER_MIRROR in the environment. The registry is made unreachable
even on a connected machine (HTTPS goes through a proxy that does not exist; the embedded AWS is
plain HTTP on the loopback, which no proxy is used for), so only a mirror bgtool found itself can
install the AWS provider.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bgtool.terraform.cliconfig import MIRROR_ENV, find_mirror
from tests.helpers import copy_project
from tests.integration.conftest import BGTOOL, Project, add_environment

ENV = "mirrorcheck"
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens there


def test_plan_installs_providers_from_a_conventional_mirror_with_nothing_set(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"  # not the ~/.terraform.d of whoever runs the tests: the system's mirror only
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    mirror = find_mirror()
    if mirror is None:
        pytest.skip("this machine has no provider mirror in a conventional place")
    # A project of its own (its CLI config and layers), on the session's embedded AWS.
    own = Project(copy_project(tmp_path / "project"), project.endpoint)
    add_environment(own, ENV, 64, backend="local")
    env = {k: v for k, v in own.env.items() if k != MIRROR_ENV}
    env.update(HOME=str(home), HTTPS_PROXY=UNREACHABLE, https_proxy=UNREACHABLE)

    done = subprocess.run([BGTOOL, "plan", ENV, "--layer", "base"], cwd=own.root, env=env, text=True,
                          capture_output=True, timeout=900, stdin=subprocess.DEVNULL, check=False)

    assert done.returncode == 2, f"bgtool plan exited {done.returncode}:\n{done.stderr}\n{done.stdout}"  # 2: to create
    assert f'path    = "{mirror}"' in (own.root / ".bgtool/terraform.rc").read_text()
    assert (own.root / f"build/{ENV}/base/.terraform/providers/registry.terraform.io/hashicorp/aws").is_dir()

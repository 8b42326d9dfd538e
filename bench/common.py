"""What every benchmark shares: a throwaway copy of the project with an embedded AWS of its own,
and the floor every Terraform-driven operation is compared with (a bare one-resource apply)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bgtool.aws.session import EMBEDDED_CREDENTIALS  # noqa: E402
from bgtool.embedded import server as embedded  # noqa: E402
from bgtool.terraform.cliconfig import MIRROR_ENV, find_mirror  # noqa: E402
from tests.helpers import copy_project  # noqa: E402
from tests.integration.conftest import free_port  # noqa: E402

BGTOOL = str(Path(sys.executable).with_name("bgtool"))

_FLOOR_PROVIDER = """
terraform {
  backend "local" {}
  required_providers {
    aws = { source = "hashicorp/aws", version = ">= 5.60, < 6.0" }
  }
}
provider "aws" {
  region                      = "us-east-1"
  max_retries                 = 1
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  skip_requesting_account_id  = true
  endpoints {
%(endpoints)s
  }
}
"""


def floor_config(endpoint: str, services: list[str], resources: str) -> str:
    """A one-resource configuration with the same provider against the same embedded AWS."""
    width = max(len(s) for s in services)
    endpoints = "\n".join(f'    {s.ljust(width)} = "{endpoint}"' for s in services)
    return _FLOOR_PROVIDER % {"endpoints": endpoints} + resources


def use_provider_mirror() -> None:
    """As `make` does: an air-gapped machine installs providers from its mirror."""
    if os.environ.get(MIRROR_ENV):
        return
    found = find_mirror()
    if found is not None:
        os.environ[MIRROR_ENV] = str(found)


@contextmanager
def embedded_project(prefix: str, *, keep: bool = False) -> Iterator[tuple[Path, str]]:
    """(project root, embedded AWS endpoint); everything is stopped and removed afterwards."""
    use_provider_mirror()
    root = copy_project(Path(tempfile.mkdtemp(prefix=prefix)))
    info, _ = embedded.up(root, free_port())
    try:
        yield root, info.endpoint
    finally:
        embedded.down(root)
        if keep:
            print(f"project kept in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


LOG_GROUP_FLOOR = """variable "stamp" { type = string }
resource "aws_cloudwatch_log_group" "floor" {
  name = "bgtool-bench-floor"
  tags = { stamp = var.stamp }
}
"""
"""The generic floor: one tag of one log group (`-var stamp=...`), services cloudwatchlogs + sts."""


class BenchProject:
    """Whole CLI runs in a benchmark's project, and the bare-Terraform floor beside them."""

    def __init__(self, root: Path, endpoint: str, reps: int) -> None:
        self.root, self.endpoint, self.reps = root, endpoint, reps
        self.env = {**os.environ, "BGTOOL_ROOT": str(root), "BGTOOL_AWS_ENDPOINT": endpoint}

    def bgtool(self, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
        started = time.perf_counter()
        done = subprocess.run([BGTOOL, *args], cwd=self.root, env=self.env, text=True, capture_output=True,
                              stdin=subprocess.DEVNULL, check=False)
        took = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"bgtool {' '.join(args)} exited {done.returncode}\n{done.stderr[-3000:]}")
        return took, done

    def apply(self, env: str) -> None:
        print(f"applying {env} (the embedded AWS takes about a minute per load balancer) ...", file=sys.stderr)
        self.bgtool("apply", env, "--yes")

    def floor(self, cli_config: Path, config_text: str, var: str, values: list[str]) -> list[float]:
        """Apply CONFIG_TEXT once with values[0], then time one apply per further value."""
        work = Path(tempfile.mkdtemp(prefix="floor-", dir=self.root))
        (work / "main.tf").write_text(config_text)
        env = {**os.environ, **EMBEDDED_CREDENTIALS, "AWS_REGION": "us-east-1", "TF_IN_AUTOMATION": "1",
               "CHECKPOINT_DISABLE": "1", "TF_CLI_CONFIG_FILE": str(cli_config), "AWS_EC2_METADATA_DISABLED": "true"}

        def tf(*args: str) -> None:
            done = subprocess.run(["terraform", *args], cwd=work, env=env, text=True, capture_output=True, check=False)
            if done.returncode != 0:
                raise SystemExit(f"terraform {' '.join(args)} failed:\n{done.stderr}{done.stdout[-2000:]}")

        tf("init", "-input=false")
        tf("apply", "-auto-approve", "-input=false", "-json", f"-var={var}={values[0]}")
        return [timed(lambda v=v: tf("apply", "-auto-approve", "-input=false", "-json", f"-var={var}={v}"))
                for v in values[1:]]

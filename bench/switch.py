"""Benchmark: how long moving production traffic takes, against the floor of one terraform apply.

Run with `.venv/bin/python bench/switch.py` (or `make bench`). It starts its own embedded AWS
(moto) on a free port in a temporary copy of the project, applies a small environment and one
with much bigger color layers, then measures side by side, median of --reps runs:

- `bgtool switch ENV --steps 100 --bake 0 --monitor 0 --yes` (whole CLI run, gate included)
- `bgtool rollback ENV --yes`
- the flip of `bgtool rollback ENV --yes --break-glass` (as the command reports it)
- a bare boto3 ModifyListener of the production listener
- the floor: a bare `terraform apply` that updates one resource (a CloudWatch log group's tag) of
  a one-resource configuration, local backend, same provider, same embedded AWS

and prints each as a ratio to the floor. Targets: switch and rollback <= 1.2x the floor whatever
the stack size; break-glass flip <= 0.1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bgtool.aws.session import EMBEDDED_CREDENTIALS, Aws  # noqa: E402
from bgtool.config.schema import load_environment  # noqa: E402
from bgtool.embedded import server as embedded  # noqa: E402
from bgtool.release.traffic import production_listeners  # noqa: E402
from bgtool.terraform.workspace import Workspace  # noqa: E402

BGTOOL = str(Path(sys.executable).with_name("bgtool"))
SIZES = {"small": ("bsmall", 41, 2, 4), "big": ("bbig", 42, 24, 30)}
"""label -> (env, second octet, desired per color, max per color)."""

FLOOR_TF = """
terraform {
  backend "local" {}
  required_providers {
    aws = { source = "hashicorp/aws", version = ">= 5.60, < 6.0" }
  }
}
variable "stamp" { type = string }
provider "aws" {
  region                      = "us-east-1"
  max_retries                 = 1
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  skip_requesting_account_id  = true
  endpoints {
    cloudwatchlogs = "%(endpoint)s"
    sts            = "%(endpoint)s"
  }
}
resource "aws_cloudwatch_log_group" "floor" {
  name = "bgtool-bench-floor"
  tags = { stamp = var.stamp }
}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def copy_project(dest: Path) -> Path:
    ignore = shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "*.tfstate*")
    for name in ("environments", "templates", "modules"):
        shutil.copytree(REPO / name, dest / name, symlinks=True, ignore=ignore)
    return dest


def add_environment(root: Path, env: str, octet: int, desired: int, maximum: int) -> None:
    text = (root / "environments/local.yaml").read_text()
    text = text.replace("name: bgtool-local", f"name: bgtool-{env}").replace("10.20.", f"10.{octet}.")
    text = text.replace("desired: 2", f"desired: {desired}").replace("max_size: 4", f"max_size: {maximum}")
    (root / f"environments/{env}.yaml").write_text(text)


class Bench:
    def __init__(self, root: Path, endpoint: str, reps: int) -> None:
        self.root = root
        self.endpoint = endpoint
        self.reps = reps
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

    def measure_env(self, env: str) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {"switch": [], "rollback": [], "break-glass flip": [], "boto3 ModifyListener": []}
        for rep in range(self.reps):
            print(f"  {env}: round {rep + 1}/{self.reps}", file=sys.stderr)
            out["switch"].append(self.bgtool("switch", env, "--steps", "100", "--bake", "0", "--monitor", "0",
                                             "--yes")[0])
            out["rollback"].append(self.bgtool("rollback", env, "--yes")[0])
            self.bgtool("switch", env, "--steps", "100", "--bake", "0", "--monitor", "0", "--yes")
            _, done = self.bgtool("rollback", env, "--yes", "--break-glass", "--json")
            out["break-glass flip"].append(json.loads(done.stdout)["flip"]["flip_seconds"])
        out["boto3 ModifyListener"] = self.bare_modify(env)
        return out

    def bare_modify(self, env: str) -> list[float]:
        loaded = load_environment(self.root, env, endpoint_override=self.endpoint)
        aws = Aws(loaded.config)
        (listener,) = production_listeners(aws, loaded.config)
        elbv2 = aws.client("elbv2")
        actions = elbv2.describe_listeners(ListenerArns=[listener.arn])["Listeners"][0]["DefaultActions"]
        actions = [{k: v for k, v in a.items() if k != "TargetGroupArn" or "ForwardConfig" not in a} for a in actions]
        return [_timed(lambda: elbv2.modify_listener(ListenerArn=listener.arn, DefaultActions=actions))
                for _ in range(max(self.reps, 5))]

    def floor(self, cli_config: Path) -> list[float]:
        work = Path(tempfile.mkdtemp(prefix="floor-", dir=self.root))
        (work / "main.tf").write_text(FLOOR_TF % {"endpoint": self.endpoint})
        env = {**os.environ, **EMBEDDED_CREDENTIALS, "AWS_REGION": "us-east-1", "TF_IN_AUTOMATION": "1",
               "CHECKPOINT_DISABLE": "1", "TF_CLI_CONFIG_FILE": str(cli_config), "AWS_EC2_METADATA_DISABLED": "true"}

        def tf(*args: str) -> None:
            done = subprocess.run(["terraform", *args], cwd=work, env=env, text=True, capture_output=True, check=False)
            if done.returncode != 0:
                raise SystemExit(f"terraform {' '.join(args)} failed:\n{done.stderr}{done.stdout[-2000:]}")

        tf("init", "-input=false")
        tf("apply", "-auto-approve", "-input=false", "-json", "-var=stamp=initial")
        return [_timed(lambda i=i: tf("apply", "-auto-approve", "-input=false", "-json", f"-var=stamp=r{i}"))
                for i in range(max(self.reps, 3))]


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def report(floor: float, results: dict[str, dict[str, list[float]]]) -> None:
    labels = list(results)
    head = f"{'operation':24}" + "".join(f"{lbl + ' (s)':>14}{'x floor':>9}" for lbl in labels)
    print(head)
    print("-" * len(head))
    print(f"{'terraform apply (floor)':24}" + "".join(f"{floor:>14.3f}{1.0:>9.2f}" for _ in labels))
    for op in results[labels[0]]:
        row = f"{op:24}"
        for lbl in labels:
            med = statistics.median(results[lbl][op])
            row += f"{med:>14.3f}{med / floor:>9.3f}"
        print(row)
    print("\ntargets: switch and rollback <= 1.2x the floor; break-glass flip <= 0.1 s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="runs per measurement (median is reported)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary project (path is printed)")
    args = parser.parse_args()
    root = copy_project(Path(tempfile.mkdtemp(prefix="bgtool-bench-")))
    info, _ = embedded.up(root, free_port())
    try:
        for env, octet, desired, maximum in SIZES.values():
            add_environment(root, env, octet, desired, maximum)
        bench = Bench(root, info.endpoint, args.reps)
        os.environ["BGTOOL_AWS_ENDPOINT"] = info.endpoint
        Workspace(root, SIZES["small"][0]).prepare()  # the shared bucket and lock table, once, before both applies
        with ThreadPoolExecutor(max_workers=len(SIZES)) as pool:
            list(pool.map(bench.apply, [env for env, *_ in SIZES.values()]))
        cli_config = _cli_config(root)
        floor = statistics.median(bench.floor(cli_config))
        results = {label: bench.measure_env(env) for label, (env, *_) in SIZES.items()}
        report(floor, results)
    finally:
        embedded.down(root)
        if args.keep:
            print(f"project kept in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


def _cli_config(root: Path) -> Path:
    """The CLI config bgtool wrote for this project (provider mirror or registry)."""
    ws = Workspace(root, SIZES["small"][0])
    return ws.cli_config


if __name__ == "__main__":
    raise SystemExit(main())

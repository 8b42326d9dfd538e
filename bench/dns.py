"""Benchmark: a DNS-mode switch against a listener-mode switch and the bare Terraform floors.

Run with `.venv/bin/python bench/dns.py [--reps N]`. It starts its own embedded AWS on a free port
in a temporary copy of the project, applies one listener-mode environment (`blst`, from
environments/local.yaml) and one DNS-mode environment (`bdns`, from environments/local-dns.yaml,
CNAMEs with a 1 s TTL) in parallel, then measures side by side, median of --reps runs:

- `bgtool switch ENV --steps 100 --bake 0 --monitor 0 --yes` and `bgtool rollback ENV --yes`
  (whole CLI runs; in DNS mode the switch also bakes 2 x TTL and watches the old color drain)
- the traffic-layer apply inside that switch (what the step itself cost, from `--json`)
- the floors: a bare `terraform apply` changing one tag of a CloudWatch log group, and one changing
  the weight of one weighted Route 53 record, each a one-resource configuration with a local
  backend, the same provider and the same embedded AWS

Each Route 53 change takes ~15 s on the embedded AWS (the provider waits for INSYNC), which is why
the DNS columns are compared with the Route 53 floor as well as the generic one.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from switch import FLOOR_TF, _timed, free_port  # noqa: E402

from bgtool.aws.session import EMBEDDED_CREDENTIALS  # noqa: E402
from bgtool.embedded import server as embedded  # noqa: E402
from bgtool.terraform.workspace import Workspace  # noqa: E402

BGTOOL = str(Path(sys.executable).with_name("bgtool"))
ENVS = {"listener": ("blst", "local.yaml", "bgtool-local", "10.20.", 43),
        "dns": ("bdns", "local-dns.yaml", "bgtool-ldns", "10.60.", 44)}
"""mode -> (env, source file, its name, its VPC prefix, second octet)."""

ROUTE53_FLOOR_TF = """
terraform {
  backend "local" {}
  required_providers {
    aws = { source = "hashicorp/aws", version = ">= 5.60, < 6.0" }
  }
}
variable "weight" { type = number }
provider "aws" {
  region                      = "us-east-1"
  max_retries                 = 1
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  skip_requesting_account_id  = true
  endpoints {
    route53 = "%(endpoint)s"
    sts     = "%(endpoint)s"
  }
}
resource "aws_route53_zone" "floor" {
  name          = "floor.bench.test"
  force_destroy = true
}
resource "aws_route53_record" "floor" {
  zone_id        = aws_route53_zone.floor.zone_id
  name           = "app.floor.bench.test"
  type           = "CNAME"
  ttl            = 1
  records        = ["target.floor.bench.test"]
  set_identifier = "blue"
  weighted_routing_policy {
    weight = var.weight
  }
}
"""


def copy_project(dest: Path) -> Path:
    ignore = shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "*.tfstate*")
    for name in ("environments", "templates", "modules"):
        shutil.copytree(REPO / name, dest / name, symlinks=True, ignore=ignore)
    return dest


def add_environment(root: Path, env: str, source: str, name: str, prefix: str, octet: int) -> None:
    text = (root / "environments" / source).read_text()
    text = text.replace(f"name: {name}", f"name: bgtool-{env}").replace(prefix, f"10.{octet}.")
    text = text.replace("bgtool.test", f"{env}.test")
    if "  load: #" in text:  # the listener example's gate sends load and waits for metrics: not what is measured
        text = text[:text.index("  load: #")] + text[text.index("local:\n"):]
    if "  host_checks:" in text:  # the DNS example has none: compare like with like
        start = text.index("  host_checks:")
        end = text.index("  wait_seconds:", start)
        text = text[:start] + text[end:]
    if "# Migrations ship" in text:
        text = text[:text.index("# Migrations ship")] + text[text.index("tags:\n"):]
    (root / f"environments/{env}.yaml").write_text(text)


class Bench:
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
        print(f"applying {env} ...", file=sys.stderr)
        self.bgtool("apply", env, "--yes")

    def measure(self, env: str) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {"switch (CLI)": [], "  traffic apply in it": [], "  drain watched": [],
                                       "rollback (CLI)": []}
        for rep in range(self.reps):
            print(f"  {env}: round {rep + 1}/{self.reps}", file=sys.stderr)
            took, done = self.bgtool("switch", env, "--steps", "100", "--bake", "0", "--monitor", "0", "--yes",
                                     "--json")
            outcome = json.loads(done.stdout)
            out["switch (CLI)"].append(took)
            out["  traffic apply in it"].append(outcome["steps"][0]["apply_seconds"])
            out["  drain watched"].append(float((outcome.get("drain") or {}).get("seconds") or 0.0))
            out["rollback (CLI)"].append(self.bgtool("rollback", env, "--yes")[0])
        return out

    def floor(self, cli_config: Path, text: str, var: str, values: list[str]) -> list[float]:
        work = Path(tempfile.mkdtemp(prefix="floor-", dir=self.root))
        (work / "main.tf").write_text(text % {"endpoint": self.endpoint})
        env = {**os.environ, **EMBEDDED_CREDENTIALS, "AWS_REGION": "us-east-1", "TF_IN_AUTOMATION": "1",
               "CHECKPOINT_DISABLE": "1", "TF_CLI_CONFIG_FILE": str(cli_config), "AWS_EC2_METADATA_DISABLED": "true"}

        def tf(*args: str) -> None:
            done = subprocess.run(["terraform", *args], cwd=work, env=env, text=True, capture_output=True, check=False)
            if done.returncode != 0:
                raise SystemExit(f"terraform {' '.join(args)} failed:\n{done.stderr}{done.stdout[-2000:]}")

        tf("init", "-input=false")
        tf("apply", "-auto-approve", "-input=false", "-json", f"-var={var}={values[0]}")
        return [_timed(lambda v=v: tf("apply", "-auto-approve", "-input=false", "-json", f"-var={var}={v}"))
                for v in values[1:]]


def report(floors: dict[str, float], results: dict[str, dict[str, list[float]]]) -> None:
    generic, route53 = floors["terraform apply, 1 log group tag"], floors["terraform apply, 1 Route 53 weight"]
    head = f"{'operation':30}" + "".join(f"{mode + ' (s)':>16}" for mode in results) + \
        f"{'dns / listener':>16}{'dns / R53 floor':>17}"
    print(head)
    print("-" * len(head))
    for label, value in floors.items():
        print(f"{label:30}" + "".join(f"{value:>16.2f}" for _ in results))
    for op in results["listener"]:
        lst, dns = statistics.median(results["listener"][op]), statistics.median(results["dns"][op])
        ratio = f"{dns / lst:>16.2f}" if lst else f"{'-':>16}"
        print(f"{op:30}{lst:>16.2f}{dns:>16.2f}{ratio}{dns / route53:>17.2f}")
    print(f"\nlistener switch / generic floor: "
          f"{statistics.median(results['listener']['switch (CLI)']) / generic:.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="runs per measurement (median is reported)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary project (path is printed)")
    args = parser.parse_args()
    root = copy_project(Path(tempfile.mkdtemp(prefix="bgtool-bench-dns-")))
    info, _ = embedded.up(root, free_port())
    try:
        for env, source, name, prefix, octet in ENVS.values():
            add_environment(root, env, source, name, prefix, octet)
        bench = Bench(root, info.endpoint, args.reps)
        os.environ["BGTOOL_AWS_ENDPOINT"] = info.endpoint
        Workspace(root, ENVS["listener"][0]).prepare()  # the shared bucket and lock table, once
        with ThreadPoolExecutor(max_workers=len(ENVS)) as pool:
            list(pool.map(bench.apply, [env for env, *_ in ENVS.values()]))
        cli_config = Workspace(root, ENVS["listener"][0]).cli_config
        n = max(args.reps, 3)
        floors = {
            "terraform apply, 1 log group tag": statistics.median(
                bench.floor(cli_config, FLOOR_TF, "stamp", [f"r{i}" for i in range(n + 1)])),
            "terraform apply, 1 Route 53 weight": statistics.median(
                bench.floor(cli_config, ROUTE53_FLOOR_TF, "weight", [str(10 + i) for i in range(n + 1)])),
        }
        results = {mode: bench.measure(env) for mode, (env, *_) in ENVS.items()}
        report(floors, results)
    finally:
        embedded.down(root)
        if args.keep:
            print(f"project kept in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

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
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import LOG_GROUP_FLOOR, BenchProject, embedded_project, floor_config
from bgtool.terraform.workspace import Workspace

ENVS = {"listener": ("blst", "local.yaml", "bgtool-local", "10.20.", 43),
        "dns": ("bdns", "local-dns.yaml", "bgtool-ldns", "10.60.", 44)}
"""mode -> (env, source file, its name, its VPC prefix, second octet)."""

ROUTE53_FLOOR = """variable "weight" { type = number }
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


class Bench(BenchProject):
    def measure(self, env: str) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {"switch (CLI)": [], "  traffic apply in it": [], "  drain watched": [],
                                       "rollback (CLI)": []}
        for rep in range(self.reps):
            print(f"  {env}: round {rep + 1}/{self.reps}", file=sys.stderr)
            took, done = self.bgtool("switch", env, "--steps", "100", "--bake", "0", "--monitor", "0", "--yes",
                                     "--accept-inconclusive", "--json")  # no production traffic here
            outcome = json.loads(done.stdout)
            out["switch (CLI)"].append(took)
            out["  traffic apply in it"].append(outcome["steps"][0]["apply_seconds"])
            out["  drain watched"].append(float((outcome.get("drain") or {}).get("seconds") or 0.0))
            out["rollback (CLI)"].append(self.bgtool("rollback", env, "--yes")[0])
        return out


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
    with embedded_project("bgtool-bench-dns-", keep=args.keep) as (root, endpoint):
        for env, source, name, prefix, octet in ENVS.values():
            add_environment(root, env, source, name, prefix, octet)
        bench = Bench(root, endpoint, args.reps)
        os.environ["BGTOOL_AWS_ENDPOINT"] = endpoint
        Workspace(root, ENVS["listener"][0]).prepare()  # the shared bucket and lock table, once
        with ThreadPoolExecutor(max_workers=len(ENVS)) as pool:
            list(pool.map(bench.apply, [env for env, *_ in ENVS.values()]))
        cli_config = Workspace(root, ENVS["listener"][0]).cli_config
        n = max(args.reps, 3)
        generic = floor_config(endpoint, ["cloudwatchlogs", "sts"], LOG_GROUP_FLOOR)
        route53 = floor_config(endpoint, ["route53", "sts"], ROUTE53_FLOOR)
        floors = {
            "terraform apply, 1 log group tag": statistics.median(
                bench.floor(cli_config, generic, "stamp", [f"r{i}" for i in range(n + 1)])),
            "terraform apply, 1 Route 53 weight": statistics.median(
                bench.floor(cli_config, route53, "weight", [str(10 + i) for i in range(n + 1)])),
        }
        results = {mode: bench.measure(env) for mode, (env, *_) in ENVS.items()}
        report(floors, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

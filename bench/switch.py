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
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import LOG_GROUP_FLOOR, BenchProject, embedded_project, floor_config, timed
from bgtool.aws.session import Aws
from bgtool.config.schema import load_environment
from bgtool.terraform.workspace import Workspace
from bgtool.traffic.listener import production_listeners

QUICK = ("--steps", "100", "--bake", "0", "--monitor", "0", "--yes", "--accept-inconclusive")
"""One step, no bake: no production traffic here to judge it by."""

SIZES = {"small": ("bsmall", 41, 2, 4), "big": ("bbig", 42, 24, 30)}
"""label -> (env, second octet, desired per color, max per color)."""


def add_environment(root: Path, env: str, octet: int, desired: int, maximum: int) -> None:
    text = (root / "environments/local.yaml").read_text()
    text = text.replace("name: bgtool-local", f"name: bgtool-{env}").replace("10.20.", f"10.{octet}.")
    text = text.replace("desired: 2", f"desired: {desired}").replace("max_size: 4", f"max_size: {maximum}")
    (root / f"environments/{env}.yaml").write_text(text)


class Bench(BenchProject):
    def measure_env(self, env: str) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {"switch": [], "rollback": [], "break-glass flip": [], "boto3 ModifyListener": []}
        for rep in range(self.reps):
            print(f"  {env}: round {rep + 1}/{self.reps}", file=sys.stderr)
            out["switch"].append(self.bgtool("switch", env, *QUICK)[0])
            out["rollback"].append(self.bgtool("rollback", env, "--yes")[0])
            self.bgtool("switch", env, *QUICK)
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
        return [timed(lambda: elbv2.modify_listener(ListenerArn=listener.arn, DefaultActions=actions))
                for _ in range(max(self.reps, 5))]


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
    with embedded_project("bgtool-bench-", keep=args.keep) as (root, endpoint):
        for env, octet, desired, maximum in SIZES.values():
            add_environment(root, env, octet, desired, maximum)
        bench = Bench(root, endpoint, args.reps)
        os.environ["BGTOOL_AWS_ENDPOINT"] = endpoint
        Workspace(root, SIZES["small"][0]).prepare()  # the shared bucket and lock table, once, before both applies
        with ThreadPoolExecutor(max_workers=len(SIZES)) as pool:
            list(pool.map(bench.apply, [env for env, *_ in SIZES.values()]))
        floor_text = floor_config(endpoint, ["cloudwatchlogs", "sts"], LOG_GROUP_FLOOR)
        stamps = [f"r{i}" for i in range(max(args.reps, 3) + 1)]
        floor = statistics.median(bench.floor(Workspace(root, SIZES["small"][0]).cli_config, floor_text, "stamp",
                                              stamps))
        results = {label: bench.measure_env(env) for label, (env, *_) in SIZES.items()}
        report(floor, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

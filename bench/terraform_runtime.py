"""What the Go runtime settings of `terraform` and its AWS provider cost: CPU seconds per command.

Every Terraform command here spends most of its CPU starting the 675 MiB provider and loading its schema,
and a Go program's garbage collector runs often while it allocates that much. GOGC (how much the heap may
grow between collections) and GOMEMLIMIT (a soft memory ceiling that keeps a GOGC=off heap bounded) trade
memory for collector CPU. This runs the same one-resource `terraform plan` and `apply` against one
embedded AWS under each setting, interleaved so that load on the machine falls on all of them alike, and
reports CPU seconds (the process tree's user + system time, which CPU contention barely moves) and wall
seconds, each as a ratio to the default.

    .venv/bin/python bench/terraform_runtime.py [--reps 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import LOG_GROUP_FLOOR, embedded_project, floor_config

from bgtool.aws.session import EMBEDDED_CREDENTIALS
from bgtool.terraform.cliconfig import resolve_mirror, write_cli_config
from bgtool.terraform.runner import GO_RUNTIME

SETTINGS: dict[str, dict[str, str]] = {
    "default (GOGC=100)": {"GOGC": "100"},
    "GOGC=200": {"GOGC": "200"},
    "GOGC=400": {"GOGC": "400"},
    "GOGC=800, GOMEMLIMIT=1536MiB": {"GOGC": "800", "GOMEMLIMIT": "1536MiB"},
    "GOGC=off, GOMEMLIMIT=1GiB": {"GOGC": "off", "GOMEMLIMIT": "1GiB"},
    "bgtool's (" + ", ".join(f"{k}={v}" for k, v in GO_RUNTIME.items()) + ")": dict(GO_RUNTIME),
}

# Runs one command and reports its process tree's CPU seconds and the largest resident set (KiB) in it.
_MEASURE = ("import resource, subprocess, sys\n"
            "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
            "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
            "print(done.returncode, u.ru_utime + u.ru_stime, u.ru_maxrss)\n"
            "sys.stderr.write(done.stderr[-2000:] if done.returncode not in (0, 2) else '')\n")


def run(work: Path, env: dict[str, str], *args: str) -> tuple[float, float, float]:
    """(CPU seconds, wall seconds, peak MiB) of one terraform command and every process it started."""
    wall = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _MEASURE, "terraform", *args], cwd=work, env=env, text=True,
                          capture_output=True, check=False)
    took = time.perf_counter() - wall
    code, cpu, rss = done.stdout.split()
    if int(code) not in (0, 2):
        raise SystemExit(f"terraform {' '.join(args)} failed:\n{done.stderr}")
    return float(cpu), took, int(rss) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    reps = parser.parse_args().reps
    with embedded_project("bench-goruntime-") as (root, endpoint):
        work = Path(tempfile.mkdtemp(prefix="goruntime-", dir=root))
        (work / "main.tf").write_text(floor_config(endpoint, ["cloudwatchlogs", "sts"], LOG_GROUP_FLOOR))
        cli_config = write_cli_config(root, resolve_mirror(None))
        base = {k: v for k, v in os.environ.items() if k not in ("GOGC", "GOMEMLIMIT")}
        base = {**base, **EMBEDDED_CREDENTIALS, "AWS_REGION": "us-east-1", "TF_IN_AUTOMATION": "1",
                "CHECKPOINT_DISABLE": "1", "TF_CLI_CONFIG_FILE": str(cli_config), "AWS_EC2_METADATA_DISABLED": "true"}
        run(work, base, "init", "-input=false")
        run(work, base, "apply", "-auto-approve", "-input=false", "-var=stamp=0")
        results: dict[str, dict[str, list[tuple[float, float, float]]]] = {
            s: {"plan": [], "apply": []} for s in SETTINGS}
        for rep in range(reps):
            for name, extra in SETTINGS.items():
                env = {**base, **extra}
                results[name]["plan"].append(run(work, env, "plan", "-input=false", "-var=stamp=0"))
                results[name]["apply"].append(
                    run(work, env, "apply", "-auto-approve", "-input=false", f"-var=stamp={rep}-{len(name)}"))
            print(f"rep {rep + 1}/{reps} done", file=sys.stderr)
    report(results)


def report(results: dict[str, dict[str, list[tuple[float, float, float]]]]) -> None:
    default = next(iter(results))
    med = {s: {c: tuple(statistics.median(x[i] for x in r) for i in range(3)) for c, r in by.items()}
           for s, by in results.items()}
    print("| setting | plan CPU s | plan wall s | apply CPU s | apply wall s | peak MiB "
          "| CPU vs default (plan, apply) |")
    print("|---|---|---|---|---|---|---|")
    for s, by in med.items():
        ratios = ", ".join(f"{by[c][0] / med[default][c][0]:.2f}" for c in ("plan", "apply"))
        peak = max(by["plan"][2], by["apply"][2])
        print(f"| {s} | {by['plan'][0]:.2f} | {by['plan'][1]:.2f} | {by['apply'][0]:.2f} | {by['apply'][1]:.2f} "
              f"| {peak:.0f} | {ratios} |")


if __name__ == "__main__":
    main()

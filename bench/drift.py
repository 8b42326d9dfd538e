"""Benchmark: what a drift check costs against a plan of the same environment.

Run with `.venv/bin/python bench/drift.py` (or `make bench`). It starts its own embedded AWS (moto)
on a free port in a temporary copy of the project, applies one small environment, then runs side
by side, alternating which goes first, --reps times each (the median is reported):

- `bgtool plan ENV`  (every layer planned, nothing applied)
- `bgtool drift ENV` (every layer planned once, plus bgtool's own checks: the file's active_color
  against the live weights, blue/green parity rendered and live, unmanaged rules, stale locks)

and prints drift / plan. Target: <= 1.2x. Both whole CLI runs, as a person or a pipeline runs them.

Besides wall-clock time it reports the CPU time (user + system) of each command's whole process
tree (bgtool, terraform, the provider): on a machine shared with other work, wall-clock time
mostly measures the neighbours, while CPU time still compares the work each command does.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import BGTOOL, embedded_project  # noqa: E402
from bench.switch import add_environment  # noqa: E402

ENV, OCTET, DESIRED, MAXIMUM = "bdrift", 43, 2, 4
TARGET = 1.2
COMMANDS = {"plan": ("plan", ENV), "drift": ("drift", ENV)}
"""label -> bgtool arguments; both exit 0 on an environment that was just applied (2 is tolerated)."""


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float
    exit_code: int


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(root: Path, endpoint: str, *args: str, ok: tuple[int, ...] = (0, 2)) -> Run:
    """One whole CLI run; CPU time counts bgtool and every process it waited for (terraform, provider)."""
    env = {**os.environ, "BGTOOL_ROOT": str(root), "BGTOOL_AWS_ENDPOINT": endpoint}
    cpu, started = _children_cpu(), time.perf_counter()
    done = subprocess.run([BGTOOL, *args], cwd=root, env=env, text=True, capture_output=True,
                          stdin=subprocess.DEVNULL, check=False)
    took = Run(time.perf_counter() - started, _children_cpu() - cpu, done.returncode)
    if done.returncode not in ok:
        raise SystemExit(f"bgtool {' '.join(args)} exited {done.returncode}\n{done.stderr[-3000:]}")
    return took


def measure(root: Path, endpoint: str, reps: int) -> dict[str, list[Run]]:
    out: dict[str, list[Run]] = {label: [] for label in COMMANDS}
    for rep in range(reps):
        order = list(COMMANDS) if rep % 2 == 0 else list(reversed(COMMANDS))
        for label in order:
            done = run(root, endpoint, *COMMANDS[label])
            out[label].append(done)
            print(f"  round {rep + 1}/{reps}: {label} {done.wall:.2f} s, CPU {done.cpu:.2f} s "
                  f"(exit {done.exit_code})", file=sys.stderr)
    return out


def report(results: dict[str, list[Run]]) -> float:
    """Prints both medians and ratios; returns the wall-clock ratio (the target's measure)."""
    def median(label: str, field: str) -> float:
        return statistics.median(getattr(r, field) for r in results[label])

    print(f"{'command':22}{'wall median (s)':>16}{'CPU median (s)':>16}  {'runs wall / CPU (s)':<44}{'exits':>6}")
    for label, runs in results.items():
        cmd = f"bgtool {' '.join(COMMANDS[label])}"
        each = " ".join(f"{r.wall:.1f}/{r.cpu:.1f}" for r in runs)
        codes = ",".join(str(r.exit_code) for r in runs)
        print(f"{cmd:22}{median(label, 'wall'):>16.2f}{median(label, 'cpu'):>16.2f}  {each:<44}{codes:>6}")
    ratio = median("drift", "wall") / median("plan", "wall")
    cpu_ratio = median("drift", "cpu") / median("plan", "cpu")
    verdict = "met" if ratio <= TARGET else "missed"
    print(f"\ndrift / plan = {ratio:.2f}x wall-clock (target <= {TARGET}x: {verdict}), {cpu_ratio:.2f}x CPU time")
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="runs per command (median is reported)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary project (path is printed)")
    args = parser.parse_args()
    with embedded_project("bgtool-bench-drift-", keep=args.keep) as (root, endpoint):
        add_environment(root, ENV, OCTET, DESIRED, MAXIMUM)
        print(f"applying {ENV} (the embedded AWS takes about a minute per load balancer) ...", file=sys.stderr)
        run(root, endpoint, "apply", ENV, "--yes", ok=(0,))
        report(measure(root, endpoint, args.reps))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

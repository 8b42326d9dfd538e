"""Benchmark: zero downtime, measured. A steady, bounded stream of requests on the local production
URL while production goes through, in order:

1. switch      blue -> green in steps 10, 50, 100
2. rollback    back to blue through Terraform (`bgtool rollback`)
3. break-glass to green again (--steps 100, not measured), then `bgtool rollback --break-glass`
4. restore     a switch to green whose new version starts answering errors after its first step
               (`bgtool local fault green --errors 50`); the switch detects it and restores blue

Per phase it prints the requests sent, the failed ones (no answer, a timeout, or an error the
application did not inject: what the proxy or a dying process would cause), the injected 500s, the
share of each version per step against the step's weight, the time from the rollback command to the
first and to 100% old-version answers, and for the restore the time from the failure's detection (the
switch's "failed:" line) to 100% old-version answers.

Targets: 0 failed requests in every phase; detection to safety <= 1 s; each step's share within 5 points
of its weight at >= 500 requests a step; break-glass to 100% old version <= 1 s.

It also draws the run (bench/timeline.py): answers per second by answering version and failed requests per
second by kind, over time, each phase a labelled band and each weight change a line, written as one
self-contained HTML page and, when Chromium is installed, a PNG of it: build/bench/zero-downtime.html
and .png (`--out DIR` for another folder).

Run with `.venv/bin/python bench/zero_downtime.py` (own embedded AWS and environment in a temporary
copy of the project, ~15 min on 2 cores, most of it Terraform), or against an applied environment
whose idle color runs a newer version: `--root DIR --env ENV --endpoint URL`. `--compute ecs` runs the
same phases on ECS Fargate colors (environments/local-ecs.yaml: each color's tasks are processes of
their own behind `ip` targets) and names the files zero-downtime-ecs.*.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.timeline import bucket, render_html, screenshot  # noqa: E402
from bgtool.aws.live import find_alb, target_group_arns  # noqa: E402
from bgtool.aws.session import Aws  # noqa: E402
from bgtool.config.schema import load_environment  # noqa: E402
from bgtool.embedded import server as embedded  # noqa: E402
from bgtool.embedded.dataplane import local_url  # noqa: E402

BGTOOL = str(Path(sys.executable).with_name("bgtool"))
ENV, OCTET = "bzd", 52
SETTLE = 0.5
"""Seconds after a weight change before answers count for the new step (the data plane follows moto)."""
MAX_SECONDS = 3600
"""The stream stops by itself after this long, whatever happens to the benchmark."""
OUT = REPO / "build" / "bench"


@dataclass(frozen=True)
class Answer:
    sent: float
    done: float
    outcome: str  # "ok", "injected", or what failed
    version: str


@dataclass
class Stream:
    """RATE requests a second on URL from WORKERS threads, until stopped (or MAX_SECONDS)."""

    url: str
    rate: float = 60
    workers: int = 4
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _run(self, offset: int) -> None:
        interval = self.workers / self.rate
        start = time.monotonic() + offset / self.rate
        with httpx.Client(timeout=5) as client:
            n = 0
            while not self._stop.is_set() and time.monotonic() - start < MAX_SECONDS:
                delay = start + n * interval - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                n += 1
                sent = time.monotonic()
                try:
                    r = client.get(f"{self.url}/version")
                    version = r.headers.get("x-bgtool-version", "")
                    outcome = _outcome(r)
                except httpx.HTTPError as exc:
                    version, outcome = "", type(exc).__name__
                self.answers.append(Answer(sent, time.monotonic(), outcome, version))

    @contextmanager
    def running(self) -> Iterator[Stream]:
        threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(self.workers)]
        for t in threads:
            t.start()
        try:
            yield self
        finally:
            self._stop.set()
            for t in threads:
                t.join(10)

    def between(self, start: float, end: float) -> list[Answer]:
        return [a for a in self.answers if start <= a.sent < end]


def _outcome(r: httpx.Response) -> str:
    if r.status_code == 200:
        return "ok"
    return "injected" if r.status_code == 500 and r.text.startswith("injected error") else f"HTTP {r.status_code}"


@dataclass
class WeightWatch:
    """The production listener's weights as moto holds them, sampled every 50 ms: when each step began."""

    aws: Aws
    listener_arn: str
    names: dict[str, str]  # target group arn -> color
    changes: list[tuple[float, dict[str, int]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _read(self) -> dict[str, int]:
        listener = self.aws.client("elbv2").describe_listeners(ListenerArns=[self.listener_arn])["Listeners"][0]
        groups = listener["DefaultActions"][0].get("ForwardConfig", {}).get("TargetGroups", [])
        return {self.names.get(g["TargetGroupArn"], "?"): int(g.get("Weight", 0)) for g in groups}

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                weights = self._read()
            except Exception:  # a busy moto: try again on the next sample
                weights = None
            if weights is not None and (not self.changes or self.changes[-1][1] != weights):
                self.changes.append((time.monotonic(), weights))
            self._stop.wait(0.05)

    @contextmanager
    def running(self) -> Iterator[WeightWatch]:
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(5)


@dataclass
class Phase:
    """One measured command: its answers (sent while it ran and a second after), per-step shares, timings."""

    name: str
    answers: list[Answer]
    steps: list[tuple[int, int, float]] = field(default_factory=list)
    """(weight of the new version, requests, its share) per step."""
    first_old: float | None = None
    all_old: float | None = None
    detect_to_old: float | None = None
    note: str = ""
    start: float = 0.0
    end: float = 0.0
    """When its command started and ended (monotonic seconds): its band on the timeline."""

    @property
    def failed(self) -> int:
        return sum(1 for a in self.answers if a.outcome not in ("ok", "injected"))

    @property
    def injected(self) -> int:
        return sum(1 for a in self.answers if a.outcome == "injected")


def bgtool(project: dict[str, Any], *args: str, lines: list[tuple[float, str]] | None = None) -> tuple[int, str]:
    """Run a command; with LINES, record each stderr line with the time it arrived."""
    proc = subprocess.Popen([BGTOOL, *args], cwd=project["root"], env=project["env"], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.append(proc.stdout.read() if proc.stdout else ""), daemon=True)
    reader.start()
    assert proc.stderr is not None
    for line in proc.stderr:
        if lines is not None:
            lines.append((time.monotonic(), line.rstrip()))
    proc.wait()
    reader.join()
    return proc.returncode, "".join(out)


def steps_of(stream: Stream, watch: WeightWatch, start: float, end: float, new: str) -> list[tuple[int, int, float]]:
    """Per weight held between START and END: the new version's share of the answers sent while it held."""
    changes = [c for c in watch.changes if c[0] < end]
    out = []
    for i, (at, weights) in enumerate(changes):
        until = changes[i + 1][0] if i + 1 < len(changes) else end
        lo, hi = max(at + SETTLE, start), until
        if hi <= lo:
            continue
        answered = [a for a in stream.between(lo, hi) if a.version]
        if answered:
            share = sum(1 for a in answered if a.version == new) / len(answered)
            out.append((weights.get("green", 0), len(answered), share))
    return out


def old_times(answers: list[Answer], since: float, old: str) -> tuple[float | None, float | None]:
    """Seconds from SINCE to the first old-version answer, and to the point after which every answer is old."""
    after = [a for a in answers if a.done >= since]
    first = next((a.done - since for a in after if a.version == old), None)
    last_new = max((a.done for a in after if a.version and a.version != old), default=None)
    if last_new is None:
        return first, first
    later_old = [a.done for a in after if a.version == old and a.sent > last_new]
    return first, (min(later_old) - since) if later_old else None


@dataclass
class Measured:
    """What a run leaves for the table and the timeline."""

    phases: list[Phase]
    answers: list[Answer]
    changes: list[tuple[float, dict[str, int]]]
    """The production weights as they changed (WeightWatch), the first entry the weights at the start."""
    colors: dict[str, str]
    """Version -> the color that runs it."""


def run(project: dict[str, Any], env: str, rate: float) -> Measured:
    config = load_environment(Path(project["root"]), env, endpoint_override=project["endpoint"]).config
    aws = Aws(config)
    old, new = config.colors.blue.version, config.colors.green.version
    assert config.active_color.value == "blue" and old != new, "needs blue live and a newer version on green"
    alb = find_alb(aws, config)
    assert alb is not None, f"{env} has no load balancer: apply it first"
    tgs = {arn: color for color, arn in target_group_arns(aws, config).items()}
    listener = next(lst for lst in aws.client("elbv2").describe_listeners(LoadBalancerArn=alb["LoadBalancerArn"])[
        "Listeners"] if lst["Port"] == config.listeners.production_port)
    port = config.listeners.production_port
    url = local_url(Path(project["root"]), project["endpoint"], alb["LoadBalancerArn"], port)
    stream, watch = Stream(url, rate), WeightWatch(aws, listener["ListenerArn"], tgs)
    phases = []
    with stream.running(), watch.running():
        time.sleep(2)
        start = time.monotonic()
        code, _ = bgtool(project, "switch", env, "--steps", "10,50,100", "--bake", "8", "--monitor", "10", "--yes")
        end = time.monotonic()
        phase = Phase("switch 10 -> 50 -> 100", stream.between(start, end + 1), note=f"exit {code}", start=start,
                      end=end)
        phase.steps = steps_of(stream, watch, start, end, new)
        phases.append(phase)

        start = time.monotonic()
        code, _ = bgtool(project, "rollback", env, "--yes")
        end = time.monotonic()
        phase = Phase("rollback (Terraform)", stream.between(start, end + 1), note=f"exit {code}", start=start,
                      end=end)
        phase.first_old, phase.all_old = old_times(stream.answers, start, old)
        phases.append(phase)

        bgtool(project, "switch", env, "--steps", "100", "--bake", "0", "--monitor", "0", "--yes")
        time.sleep(2)
        start, lines = time.monotonic(), []
        code, _ = bgtool(project, "rollback", env, "--break-glass", "--yes", lines=lines)
        end = time.monotonic()
        phase = Phase("rollback --break-glass", stream.between(start, end + 1), note=f"exit {code}", start=start,
                      end=end)
        phase.first_old, phase.all_old = old_times(stream.answers, start, old)
        flipped = next((t for t, text in lines if "break glass:" in text), None)
        if flipped is not None:
            _, after_flip = old_times(stream.answers, flipped, old)
            phase.note += (f"; the command reported the flip {flipped - start:.2f} s after it started; "
                           f"100% old {after_flip:.2f} s after that" if after_flip is not None else "")
        phases.append(phase)

        phases.append(_restore_phase(project, env, stream, watch, old, new))
        time.sleep(2)
    return Measured(phases, list(stream.answers), list(watch.changes), {old: "blue", new: "green"})


def _restore_phase(project: dict[str, Any], env: str, stream: Stream, watch: WeightWatch, old: str,
                   new: str) -> Phase:
    """A switch whose new color starts answering errors once its first step serves."""
    lines: list[tuple[float, str]] = []
    injected = threading.Event()

    def inject() -> None:
        while not injected.is_set():
            if any("step 1/3: production" in text for _, text in list(lines)):
                bgtool(project, "local", "fault", "green", "--env", env, "--errors", "50")
                injected.set()
            time.sleep(0.1)

    threading.Thread(target=inject, daemon=True).start()
    start = time.monotonic()
    try:
        code, _ = bgtool(project, "switch", env, "--steps", "10,50,100", "--bake", "40", "--monitor", "5",
                         "--yes", lines=lines)
    finally:
        injected.set()
        bgtool(project, "local", "fault", "green", "--env", env, "--clear")
    end = time.monotonic()
    phase = Phase("restore (errors in the new color)", stream.between(start, end + 1), note=f"exit {code}",
                  start=start, end=end)
    phase.steps = steps_of(stream, watch, start, end, new)
    detected = next(((t, text) for t, text in lines if " failed: " in text and ("bake" in text or "monitor" in text)),
                    None)
    if detected is not None:
        _, phase.detect_to_old = old_times(stream.answers, detected[0], old)
        phase.note += f"; detected: {detected[1].strip()[:140]}"
    return phase


def table(phases: list[Phase]) -> list[list[str]]:
    """The summary per phase, header first: printed as markdown and shown above the timeline."""
    def sec(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f} s"

    rows = [["phase", "requests", "failed", "injected 500s", "new version's share per step (weight)",
             "to first old", "to 100% old", "detection to 100% old"]]
    for p in phases:
        steps = ", ".join(f"{share:.1%} of {n} ({w}%)" for w, n, share in p.steps) or "-"
        rows.append([p.name, str(len(p.answers)), str(p.failed), str(p.injected), steps, sec(p.first_old),
                     sec(p.all_old), sec(p.detect_to_old)])
    return rows


def print_table(phases: list[Phase]) -> None:
    head, *rows = table(phases)
    print("| " + " | ".join(head) + " |")
    print("|---|---:|---:|---:|---|---:|---:|---:|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    for p in phases:
        kinds = Counter(a.outcome for a in p.answers if a.outcome not in ("ok", "injected"))
        failed = f"; failed: {', '.join(f'{k} x{n}' for k, n in kinds.most_common())}" if kinds else ""
        print(f"  {p.name}: {p.note}{failed}")
    failed = sum(p.failed for p in phases)
    print(f"failed requests in all phases: {failed}" + ("" if failed == 0 else " (target: 0)"))


def weight_marks(changes: list[tuple[float, dict[str, int]]]) -> list[tuple[float, str]]:
    """Every change of the production weights after the first reading, labelled with the new weights."""
    return [(at, " / ".join(f"{c} {w}%" for c, w in sorted(weights.items()))) for at, weights in changes[1:]]


def draw(measured: Measured, out: Path, compute: str = "autoscaling") -> list[Path]:
    """The timeline of the run as OUT/zero-downtime[-ecs].html and, with Chromium, .png: the files written."""
    out.mkdir(parents=True, exist_ok=True)
    buckets = bucket(measured.answers, [(p.name, p.start, p.end) for p in measured.phases],
                     weight_marks(measured.changes))
    ecs = compute != "autoscaling"
    stem = f"zero-downtime-{compute}" if ecs else "zero-downtime"
    page = out / f"{stem}.html"
    title = "Zero downtime, measured: requests through a release" + (f" ({compute})" if ecs else "")
    page.write_text(render_html(title, buckets, measured.colors, table(measured.phases)))
    png = out / f"{stem}.png"
    problem = screenshot(page, png)
    if problem:
        print(f"no PNG of the timeline: {problem}", file=sys.stderr)
    return [page] if problem else [page, png]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Per compute kind: the example environment the benchmark's own copies, its name and its VPC's /16 prefix.
SOURCES = {"autoscaling": ("local", "bgtool-local", "10.20."), "ecs": ("local-ecs", "bgtool-ecs", "10.30.")}


def own_project(tmp: Path, compute: str = "autoscaling") -> dict[str, Any]:
    """A copy of the project with its own embedded AWS, and ENV applied with 1.1.0 on the idle green."""
    sys.path.insert(0, str(REPO))
    from tests.helpers import copy_project

    root = copy_project(tmp)
    info, _ = embedded.up(root, free_port())
    source, name, prefix = SOURCES[compute]
    text = (root / f"environments/{source}.yaml").read_text()
    text = text.replace(f"name: {name}", f"name: bgtool-{ENV}").replace(prefix, f"10.{OCTET}.")
    (root / f"environments/{ENV}.yaml").write_text(text)
    project = {"root": str(root), "endpoint": info.endpoint,
               "env": {**os.environ, "BGTOOL_ROOT": str(root), "BGTOOL_AWS_ENDPOINT": info.endpoint}}
    for args in (("apply", ENV, "--yes"), ("deploy", ENV, "1.1.0", "--yes")):
        code, _ = bgtool(project, *args)
        if code != 0:
            raise SystemExit(f"bgtool {' '.join(args)} failed (exit {code})")
    return project


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", help="an applied project (with --env and --endpoint) instead of a fresh one")
    parser.add_argument("--env", default=ENV)
    parser.add_argument("--endpoint", help="its embedded AWS endpoint")
    parser.add_argument("--rate", type=float, default=60, help="requests a second on the production URL")
    parser.add_argument("--compute", choices=sorted(SOURCES), default="autoscaling",
                        help="the compute kind of the benchmark's own environment (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="also print the phases as JSON")
    parser.add_argument("--out", type=Path, default=OUT, help="where the timeline goes (default: %(default)s)")
    args = parser.parse_args()
    if os.environ.get("BGTOOL_PROVIDER_MIRROR") is None:
        found = subprocess.run([str(REPO / "scripts/find-provider-mirror")], capture_output=True, text=True)
        if found.stdout.strip():
            os.environ["BGTOOL_PROVIDER_MIRROR"] = found.stdout.strip()
    tmp = None
    if args.root:
        project = {"root": args.root, "endpoint": args.endpoint,
                   "env": {**os.environ, "BGTOOL_ROOT": args.root, "BGTOOL_AWS_ENDPOINT": args.endpoint}}
    else:
        tmp = Path(tempfile.mkdtemp(prefix="bgtool-bench-zd-"))
        project = own_project(tmp, args.compute)
    try:
        measured = run(project, args.env, args.rate)
    finally:
        if tmp is not None:
            embedded.down(tmp)
            shutil.rmtree(tmp, ignore_errors=True)
    phases = measured.phases
    print_table(phases)
    for path in draw(measured, args.out, args.compute):
        print(f"timeline: {path}", file=sys.stderr)
    if args.json:
        print(json.dumps([{**p.__dict__, "answers": len(p.answers), "failed": p.failed, "injected": p.injected}
                          for p in phases], indent=1))
    return 0 if all(p.failed == 0 for p in phases) else 1


if __name__ == "__main__":
    sys.exit(main())

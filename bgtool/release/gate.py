"""The health gate: may this color take traffic?

Every check carries evidence (counts, target ids, alarm names, HTTP statuses, failing host tests),
because a gate that only says "no" at 3 a.m. sends people to the console to find out why. The
verdicts (`evaluate`) are pure so they are unit-tested; `run_gate` gathers their inputs from AWS
with boto3, from HTTP requests through the test listener and from testinfra host checks.
"""

from __future__ import annotations

import math
import os
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bgtool.aws.live import ColorLive, color_alb, find_alb, listener_weights, target_group_arns
from bgtool.aws.metrics import MetricsReader, metrics_resolution
from bgtool.compute import compute_for
from bgtool.config.schema import Color, Environment, HostChecks, SmokeCheck
from bgtool.embedded import dataplane
from bgtool.errors import BgtoolError
from bgtool.events import Note
from bgtool.release.analysis import Judgement, Verdict, judge_load, judge_traffic, production_rate
from bgtool.release.load import LoadPlan, LoadResult, run_load
from bgtool.terraform.workspace import Workspace

HOST_CHECK_TIMEOUT = 600
SETTLED_SHARE = 0.95
"""The analysis judges once CloudWatch holds this share of the load's answered requests (or at settle_seconds)."""
SETTLE_POLL_SECONDS = 2.0


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    evidence: str
    inconclusive: bool = False
    """Not passed for want of data (the analysis): only --accept-inconclusive lets a switch go on."""
    details: dict[str, Any] | None = None

    @property
    def verdict(self) -> str:
        return "pass" if self.passed else "inconclusive" if self.inconclusive else "fail"

    def to_dict(self) -> dict[str, Any]:
        out = {"name": self.name, "passed": self.passed, "verdict": self.verdict, "evidence": self.evidence}
        return {**out, "details": self.details} if self.details is not None else out

    @classmethod
    def of(cls, name: str, judgement: Judgement) -> Check:
        return cls(name, judgement.passed, judgement.evidence, judgement.verdict is Verdict.INCONCLUSIVE,
                   judgement.numbers or None)


@dataclass(frozen=True)
class GateReport:
    color: str
    checks: list[Check]

    @property
    def passed(self) -> bool:
        """No checks at all is not a pass: a gate that checked nothing proves nothing."""
        return bool(self.checks) and all(c.passed for c in self.checks)

    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    @property
    def only_inconclusive(self) -> bool:
        """Every check that did not pass lacked data rather than failed: --accept-inconclusive may go on."""
        failures = self.failures()
        return bool(self.checks) and bool(failures) and all(c.inconclusive for c in failures)

    def to_dict(self) -> dict[str, Any]:
        return {"color": self.color, "passed": self.passed, "checks": [c.to_dict() for c in self.checks]}


# --------------------------------------------------------------------------------------------
# Verdicts (pure)
# --------------------------------------------------------------------------------------------


def evaluate(config: Environment, color: Color, live: ColorLive, smoke: list[Check], hosts: list[Check],
             traffic: list[Check] | None = None) -> list[Check]:
    """The gate's verdicts from already-gathered facts; no I/O. TRAFFIC: the load and analysis rows."""
    checks = [_in_service(live)] + ([_rollout(live)] if live.rollout else [])
    checks += [_targets(config, live), _alarms(config, color, live)]
    checks += smoke or [Check("smoke", True, "none configured (gate.smoke is empty)")]
    if hosts:
        checks += hosts
    elif config.gate.host_checks is None:
        checks.append(Check("host checks", True, "none configured (gate.host_checks is not set)"))
    else:
        checks.append(Check("host checks", False, f"{config.gate.host_checks.module} configured but not run"))
    if traffic:
        checks += traffic
    elif config.gate.load is not None:
        checks.append(Check("load", False, "gate.load configured but not run"))
    return checks


def _in_service(live: ColorLive) -> Check:
    name = "in service == desired"
    groups = ", ".join(live.asg_names)
    if not live.asg_names:
        return Check(name, False, f"no {live.group_label} of {live.color} found: is the layer applied?")
    if live.desired <= 0:
        return Check(name, False, f"desired capacity is 0 in {groups} (retired or scaled to zero)")
    ok = live.in_service == live.desired
    return Check(name, ok, f"{live.in_service}/{live.desired} {live.member_label} in {groups}")


def _rollout(live: ColorLive) -> Check:
    """ECS: the service's primary deployment; a rollout its circuit breaker gave up on is a failed color."""
    name = "deployment"
    shown = f"primary deployment of {live.task_definition or '?'} ({live.image or 'no image'}): {live.rollout}"
    if live.rollout == "FAILED":
        return Check(name, False, f"{shown}" + (f" ({live.rollout_reason})" if live.rollout_reason else ""))
    return Check(name, True, shown)


def _targets(config: Environment, live: ColorLive) -> Check:
    name = "targets healthy"
    minimum = config.gate.min_healthy
    bad = [t for t in live.targets if t.state != "healthy"]
    healthy = live.healthy_targets
    summary = f"{healthy}/{len(live.targets)} registered targets healthy (min_healthy {minimum})"
    if bad:
        listed = ", ".join(f"{t.id} {t.state}" + (f" ({t.reason})" if t.reason else "") for t in bad)
        return Check(name, False, f"{summary}; unhealthy: {listed}")
    if healthy < minimum or not live.targets:
        return Check(name, False, f"{summary}; below min_healthy" if live.targets else f"{summary}; none registered")
    return Check(name, True, summary)


def _alarms(config: Environment, color: Color, live: ColorLive) -> Check:
    name = "alarms"
    if live.alarms_firing:
        return Check(name, False, f"in ALARM: {', '.join(live.alarms_firing)}")
    if not live.alarms:
        return Check(name, False, f"no alarms named {config.name}-{color.value}-*: nothing watches this color")
    return Check(name, True, f"{len(live.alarms)} alarms, none in ALARM ({', '.join(live.alarms)})")


def smoke_verdict(check: SmokeCheck, url: str, status: int | None, body: str, error: str, version: str) -> Check:
    """Compare one smoke response with what the environment file expects."""
    name = f"smoke {check.path}"
    if status is None:
        return Check(name, False, f"GET {url}: {error}")
    problems = []
    if status != check.expect_status:
        problems.append(f"status {status}, expected {check.expect_status}")
    if check.expect_body is not None and check.expect_body not in body:
        problems.append(f"body lacks {check.expect_body!r}")
    if check.expect_version and version not in body:
        problems.append(f"body lacks version {version!r}")
    snippet = body.strip().replace("\n", " ")[:80]
    if problems:
        return Check(name, False, f"GET {url}: {'; '.join(problems)} (body: {snippet!r})")
    return Check(name, True, f"GET {url}: {status}" + (f", body {snippet!r}" if snippet else ""))


# --------------------------------------------------------------------------------------------
# Gathering facts
# --------------------------------------------------------------------------------------------


def run_gate(ws: Workspace, color: Color) -> GateReport:
    """Read the color's live state, send smoke requests and run host checks; then judge."""
    color = Color(color)
    config = ws.config
    tg_arns = target_group_arns(ws.aws, config)
    live = compute_for(ws).live(color)
    smoke = run_smoke(ws, color, tg_arns) if config.gate.smoke else []
    hosts = run_host_checks(ws, color, live) if config.gate.host_checks else []
    traffic = run_traffic(ws, color, tg_arns) if config.gate.load else []
    return GateReport(color.value, evaluate(config, color, live, smoke, hosts, traffic))


def run_smoke(ws: Workspace, color: Color, tg_arns: dict[str, str]) -> list[Check]:
    """Smoke requests through the listener that sends all its traffic to COLOR (the test one for idle)."""
    try:
        base, _ = listener_url(ws, color, tg_arns)
    except BgtoolError as exc:
        return [Check("smoke", False, exc.message)]
    version = ws.config.colors.of(color).version
    return [_smoke_one(check, f"{base}{check.path}", version) for check in ws.config.gate.smoke]


def listener_url(ws: Workspace, color: Color, tg_arns: dict[str, str], *, test_only: bool = False) -> tuple[str, str]:
    """(base URL, load balancer ARN) of the listener that sends all its traffic to COLOR: the test
    listener, or (unless TEST_ONLY) the production one. Raises BgtoolError saying what is missing."""
    config = ws.config
    if config.traffic.mode == "dns":
        return _own_load_balancer_url(ws, color)
    alb = find_alb(ws.aws, config)
    if alb is None:
        raise BgtoolError(f"load balancer {config.name} not found")
    port = _listener_for(ws, alb["LoadBalancerArn"], tg_arns, color, test_only)
    if port is None:
        which = "the test listener" if test_only else "no listener"
        raise BgtoolError(f"{which} (port {config.listeners.test_port}) does not forward 100% to {color.value}: "
                          "is the traffic layer applied, and is the color idle?")
    scheme = "https" if config.listeners.certificate_arn else "http"
    if config.embedded:
        # The embedded ALB's DNS name resolves nowhere: its listeners are served on loopback ports.
        return dataplane.local_url(ws.root, config.aws.endpoint, alb["LoadBalancerArn"], port), alb["LoadBalancerArn"]
    return f"{scheme}://{alb['DNSName']}:{port}", alb["LoadBalancerArn"]


def _own_load_balancer_url(ws: Workspace, color: Color) -> tuple[str, str]:
    """DNS mode: each color has its own load balancer, so the idle color's is its test endpoint."""
    config = ws.config
    alb = color_alb(ws.aws, config, color)
    if alb is None:
        raise BgtoolError(f"load balancer {config.name}-{color.value} not found", hint=f"Run 'bgtool apply {ws.env}'.")
    port = config.listeners.production_port
    if config.embedded:
        return dataplane.local_url(ws.root, config.aws.endpoint, alb["LoadBalancerArn"], port), alb["LoadBalancerArn"]
    scheme = "https" if config.listeners.certificate_arn else "http"
    return f"{scheme}://{alb['DNSName']}:{port}", alb["LoadBalancerArn"]


def _listener_for(ws: Workspace, alb_arn: str, tg_arns: dict[str, str], color: Color,
                  test_only: bool = False) -> int | None:
    ports = {lw.port: lw for lw in listener_weights(ws.aws, alb_arn, tg_arns)}
    wanted = [ws.config.listeners.test_port] + ([] if test_only else [ws.config.listeners.production_port])
    for port in wanted:
        if port in ports and ports[port].live_color == color.value:
            return port
    return None


def _smoke_one(check: SmokeCheck, url: str, version: str) -> Check:
    # The ALB's certificate names the public host, not the ALB's DNS name: verify the chain only.
    context = ssl.create_default_context()
    context.check_hostname = False
    try:
        with urllib.request.urlopen(url, timeout=check.timeout_seconds, context=context) as resp:
            return smoke_verdict(check, url, resp.status, resp.read(65536).decode("utf-8", "replace"), "", version)
    except urllib.error.HTTPError as exc:
        body = exc.read(65536).decode("utf-8", "replace") if exc.fp else ""
        return smoke_verdict(check, url, exc.code, body, "", version)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return smoke_verdict(check, url, None, "", f"no response ({reason})", version)


# --------------------------------------------------------------------------------------------
# Load through the test listener, then the load balancer's own metrics for that window
# --------------------------------------------------------------------------------------------


def run_traffic(ws: Workspace, color: Color, tg_arns: dict[str, str], *,
                sleep: Callable[[float], None] = time.sleep,
                clock: Callable[[], float] = time.monotonic) -> list[Check]:
    """The load row and the analysis row (when gate.analysis.enabled)."""
    settings = ws.config.gate.load
    assert settings is not None
    live = color.other
    try:
        base, lb_arn = listener_url(ws, color, tg_arns, test_only=True)
    except BgtoolError as exc:
        return [Check("load", False, f"cannot send load to {color.value}: {exc.message}")]
    reader = MetricsReader(ws.aws, lb_arn, metrics_resolution(ws.config))
    rate = settings.rps
    if rate == "production":
        peak = reader.peak_rate(tg_arns[live.value], settings.lookback_minutes) if live.value in tg_arns else None
        sized = production_rate(peak, settings.factor, live.value, settings.lookback_minutes)
        if not sized.passed:
            return [Check.of("load", sized)]
        rate = float(sized.numbers["rate"])
    plan = LoadPlan(base, float(rate), settings.seconds, settings.concurrency,
                    settings.max_requests or 10_000_000, settings.timeout_seconds,
                    [(p.path, p.weight) for p in settings.paths])
    ws.emit(Note(f"load: {plan.total} requests at {plan.rate:g}/s for {plan.seconds:g}s through the test listener "
                 f"to {color.value} ({base})"))
    result = run_load(plan)
    checks = [Check.of("load", judge_load(result, settings))]
    if ws.config.gate.analysis.enabled:
        checks.append(_analysis(ws, reader, color, tg_arns, result, sleep, clock))
    return checks


def _analysis(ws: Workspace, reader: MetricsReader, color: Color, tg_arns: dict[str, str], result: LoadResult,
              sleep: Callable[[float], None], clock: Callable[[], float]) -> Check:
    """Wait (up to settle_seconds) for the load's requests to show in CloudWatch, then judge."""
    settings = ws.config.gate.analysis
    if color.value not in tg_arns:
        return Check("analysis", False, f"no target group for {color.value}")
    expected = math.floor(result.answered * SETTLED_SHARE)
    deadline = clock() + settings.settle_seconds
    waited = False
    while True:
        new = reader.window(tg_arns[color.value], result.started_at, result.ended_at)
        if new.requests >= expected or clock() >= deadline:
            break
        if not waited:
            ws.emit(Note(f"analysis: waiting up to {settings.settle_seconds:g}s for the load's metrics in CloudWatch"))
            waited = True
        sleep(min(SETTLE_POLL_SECONDS, max(0.0, deadline - clock())))
    other = color.other.value
    old = reader.window(tg_arns[other], result.started_at, result.ended_at) if other in tg_arns else None
    judged = judge_traffic(new, old, settings, new_color=color.value, old_color=other,
                           need_baseline=settings.require_baseline)
    window = f"window {result.started_at:%H:%M:%S}-{result.ended_at:%H:%M:%S} UTC"
    return Check.of("analysis", Judgement(judged.verdict, f"{judged.evidence} ({window})", judged.numbers))


# --------------------------------------------------------------------------------------------
# Host checks (testinfra)
# --------------------------------------------------------------------------------------------


def host_check_module(root: Path, module: str) -> Path:
    """The module path is relative to the project root, like every path in the environment file."""
    path = (root / module).resolve()
    if path.is_file():
        return path
    raise BgtoolError(
        f"gate.host_checks.module {module!r} not found under {root}",
        hint="The path is relative to the project root (the directory holding environments/).",
    )


def host_specs(ws: Workspace, settings: HostChecks, live: ColorLive) -> list[str]:
    """testinfra host specs: the Auto Scaling group's instances over ssh, or this machine."""
    if settings.connection == "local":
        return ["local://"]
    if not live.instance_ids:
        return []
    reservations = ws.aws.client("ec2").describe_instances(InstanceIds=live.instance_ids)["Reservations"]
    addresses = [i.get("PrivateIpAddress") for r in reservations for i in r["Instances"]]
    return [f"ssh://{settings.ssh_user}@{ip}" for ip in addresses if ip]


def run_host_checks(ws: Workspace, color: Color, live: ColorLive) -> list[Check]:
    settings = ws.config.gate.host_checks
    assert settings is not None
    name = f"host checks {settings.module}"
    try:
        module = host_check_module(ws.root, settings.module)
    except BgtoolError as exc:
        return [Check(name, False, exc.message)]
    hosts = host_specs(ws, settings, live)
    if not hosts:
        return [Check(name, False, "no in-service instances to check")]
    return [_run_pytest(ws, color, module, settings, hosts, name, live.instance_ids)]


def _run_pytest(ws: Workspace, color: Color, module: Path, settings: HostChecks, hosts: list[str], name: str,
                instances: list[str]) -> Check:
    with tempfile.TemporaryDirectory(prefix="bgtool-hosts-") as tmp:
        report = Path(tmp) / "report.xml"
        cmd = [sys.executable, "-m", "pytest", str(module), "-q", "-p", "no:cacheprovider", "--noconftest",
               f"--rootdir={module.parent}", f"--hosts={','.join(hosts)}", f"--junitxml={report}"]
        if settings.ssh_key:
            cmd.append(f"--ssh-identity-file={(ws.root / settings.ssh_key).expanduser()}")
        try:
            done = subprocess.run(cmd, cwd=ws.root, env=_host_env(ws, color, instances), text=True, capture_output=True,
                                  timeout=HOST_CHECK_TIMEOUT, stdin=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired:
            return Check(name, False, f"timed out after {HOST_CHECK_TIMEOUT}s on {', '.join(hosts)}")
        passed, failed = _junit_results(report)
    return _host_verdict(name, done, hosts, passed, failed)


def _host_verdict(name: str, done: subprocess.CompletedProcess[str], hosts: list[str],
                  passed: int, failed: list[str]) -> Check:
    where = ", ".join(hosts)
    if done.returncode == 0 and passed:
        return Check(name, True, f"{passed} passed on {where}")
    if failed:
        return Check(name, False, f"failed on {where}: {', '.join(failed)}")
    tail = " | ".join((done.stdout + done.stderr).strip().splitlines()[-3:])
    return Check(name, False, f"pytest exited {done.returncode} with no test results on {where}: {tail}")


def _junit_results(report: Path) -> tuple[int, list[str]]:
    if not report.exists():
        return 0, []
    passed, failed = 0, []
    for case in ET.parse(report).getroot().iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(case.get("name", "?"))
        elif case.find("skipped") is None:
            passed += 1
    return passed, failed


def _host_env(ws: Workspace, color: Color, instances: list[str]) -> dict[str, str]:
    """What a host-check module may need to know, as environment variables."""
    config = ws.config
    local: dict[str, str] = {}
    if config.embedded:
        # The processes of the color's in-service instances on the local data plane (not those of
        # instances a deploy just replaced, which drain for a moment): what a host check of `local` looks at.
        targets = [t for t in dataplane.color_targets(ws.root, ws.env, color.value)
                   if t.get("instance_id") in instances]
        local = {"BGTOOL_TARGET_PORTS": ",".join(str(t["port"]) for t in targets),
                 "BGTOOL_TARGET_PIDS": ",".join(str(t["pid"] or "") for t in targets)}
    return {
        **os.environ,
        **local,
        "BGTOOL_ENV": ws.env,
        "BGTOOL_COLOR": color.value,
        "BGTOOL_VERSION": config.colors.of(color).version,
        "BGTOOL_APP_PORT": str(config.app.port),
        "BGTOOL_HEALTH_PATH": config.app.health_check_path,
        "BGTOOL_AWS_ENDPOINT": config.aws.endpoint or "",
    }

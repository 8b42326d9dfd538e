"""The health gate: may this color take traffic?

Every check carries evidence (counts, target ids, alarm names, HTTP statuses, failing host tests),
because a gate that only says "no" at 3 a.m. sends people to the console to find out why. The
verdicts (`evaluate`) are pure so they are unit-tested; `run_gate` gathers their inputs from AWS
with boto3, from HTTP requests through the test listener and from testinfra host checks.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bgtool.aws.live import ColorLive, color_live, find_alb, listener_weights, target_group_arns
from bgtool.config.schema import Color, Environment, HostChecks, SmokeCheck
from bgtool.errors import BgtoolError
from bgtool.terraform.workspace import Workspace

HOST_CHECK_TIMEOUT = 600


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    evidence: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "evidence": self.evidence}


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

    def to_dict(self) -> dict[str, Any]:
        return {"color": self.color, "passed": self.passed, "checks": [c.to_dict() for c in self.checks]}


# --------------------------------------------------------------------------------------------
# Verdicts (pure)
# --------------------------------------------------------------------------------------------


def evaluate(config: Environment, color: Color, live: ColorLive, smoke: list[Check], hosts: list[Check]) -> list[Check]:
    """The gate's verdicts from already-gathered facts; no I/O."""
    checks = [_in_service(live), _targets(config, live), _alarms(config, color, live)]
    checks += smoke or [Check("smoke", True, "none configured (gate.smoke is empty)")]
    if hosts:
        checks += hosts
    elif config.gate.host_checks is None:
        checks.append(Check("host checks", True, "none configured (gate.host_checks is not set)"))
    else:
        checks.append(Check("host checks", False, f"{config.gate.host_checks.module} configured but not run"))
    return checks


def _in_service(live: ColorLive) -> Check:
    name = "in service == desired"
    groups = ", ".join(live.asg_names) or "no Auto Scaling group"
    if not live.asg_names:
        return Check(name, False, f"no Auto Scaling group tagged bgtool:color={live.color}: is the layer applied?")
    if live.desired <= 0:
        return Check(name, False, f"desired capacity is 0 in {groups} (retired or scaled to zero)")
    ok = live.in_service == live.desired
    return Check(name, ok, f"{live.in_service}/{live.desired} instances InService in {groups}")


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
    live = color_live(ws.aws, config, ws.env, color, tg_arns.get(color.value))
    smoke = run_smoke(ws, color, tg_arns) if config.gate.smoke else []
    hosts = run_host_checks(ws, color, live) if config.gate.host_checks else []
    return GateReport(color.value, evaluate(config, color, live, smoke, hosts))


def run_smoke(ws: Workspace, color: Color, tg_arns: dict[str, str]) -> list[Check]:
    """Smoke requests through the listener that sends all its traffic to COLOR (the test one for idle)."""
    config = ws.config
    alb = find_alb(ws.aws, config)
    if alb is None:
        return [Check("smoke", False, f"load balancer {config.name} not found")]
    port = _listener_for(ws, alb["LoadBalancerArn"], tg_arns, color)
    if port is None:
        return [Check("smoke", False, f"no listener forwards 100% to {color.value} (test port "
                                      f"{config.listeners.test_port}): is the traffic layer applied?")]
    scheme = "https" if config.listeners.certificate_arn else "http"
    version = config.colors.of(color).version
    base = f"{scheme}://{alb['DNSName']}:{port}"
    return [_smoke_one(check, f"{base}{check.path}", version) for check in config.gate.smoke]


def _listener_for(ws: Workspace, alb_arn: str, tg_arns: dict[str, str], color: Color) -> int | None:
    ports = {lw.port: lw for lw in listener_weights(ws.aws, alb_arn, tg_arns)}
    for port in (ws.config.listeners.test_port, ws.config.listeners.production_port):
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
    return [_run_pytest(ws, color, module, settings, hosts, name)]


def _run_pytest(ws: Workspace, color: Color, module: Path, settings: HostChecks, hosts: list[str], name: str) -> Check:
    with tempfile.TemporaryDirectory(prefix="bgtool-hosts-") as tmp:
        report = Path(tmp) / "report.xml"
        cmd = [sys.executable, "-m", "pytest", str(module), "-q", "-p", "no:cacheprovider", "--noconftest",
               f"--rootdir={module.parent}", f"--hosts={','.join(hosts)}", f"--junitxml={report}"]
        if settings.ssh_key:
            cmd.append(f"--ssh-identity-file={(ws.root / settings.ssh_key).expanduser()}")
        try:
            done = subprocess.run(cmd, cwd=ws.root, env=_host_env(ws, color), text=True, capture_output=True,
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


def _host_env(ws: Workspace, color: Color) -> dict[str, str]:
    """What a host-check module may need to know, as environment variables."""
    config = ws.config
    return {
        **os.environ,
        "BGTOOL_ENV": ws.env,
        "BGTOOL_COLOR": color.value,
        "BGTOOL_VERSION": config.colors.of(color).version,
        "BGTOOL_APP_PORT": str(config.app.port),
        "BGTOOL_HEALTH_PATH": config.app.health_check_path,
        "BGTOOL_AWS_ENDPOINT": config.aws.endpoint or "",
    }

"""Target processes: one per running instance registered in a target group.

A process is started when its instance appears in a target group, stopped (after a short drain
with no new requests) when the instance leaves, and never restarted behind the operator's back:
a crashed application is exactly what the health checks and the gate must see. `bgtool local
restart` (SIGHUP to the daemon) starts the dead ones again. Each process runs in a session of its
own, with its pid and log under `.bgtool/dataplane/targets/`, so `local down` can stop it even
when the daemon is gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bgtool.embedded.layout import ProcessView
from bgtool.embedded.model import TargetSpec
from bgtool.embedded.procs import exists, identity, is_recorded

START_TIMEOUT = 20.0
DRAIN_SECONDS = 2.0
STOP_SECONDS = 3.0
INITIAL_GRACE = 5.0
PLACEHOLDERS = ("{port}", "{version}", "{color}", "{host}")


def free_port(taken: Collection[int] = ()) -> int:
    """A port nothing listens on, and not one of TAKEN: the kernel may hand the same free port to two
    calls in a row, and a process given a port binds it only once it has started."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in taken:
            return port


def listens(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def command_for(template: str | None, spec: TargetSpec, port: int, fault_file: Path | None) -> list[str]:
    """The argv of a target: the sample application, or the user's command with its placeholders.

    The template is split like a shell would split it, and only then are the placeholders filled,
    argument by argument: a value can never become a second argument or a shell construct.
    """
    if template is None:
        argv = [sys.executable, "-m", "bgtool.embedded.sampleapp", "--port", str(port), "--version", spec.version,
                "--color", spec.color, "--health-path", spec.health_path, "--bind", spec.address]
        return [*argv, "--fault-file", str(fault_file)] if fault_file else argv
    values = {"{port}": str(port), "{version}": spec.version, "{color}": spec.color, "{host}": spec.address}
    out = []
    for arg in shlex.split(template):
        for key, value in values.items():
            arg = arg.replace(key, value)
        out.append(arg)
    return out


@dataclass
class TargetProcess:
    spec: TargetSpec
    port: int
    log: Path
    pid_file: Path
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    ready: bool = False
    ready_at: float = 0.0
    first_check_ok: bool = False
    """The supervisor's own health-path request, made the moment the process listened."""
    seen_up: bool = False
    """It listened once: from then on only the health checks judge it."""
    problem: str = ""
    draining_since: float | None = None
    stopping_since: float | None = None
    exit_code: int | None = field(default=None)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def view(self) -> ProcessView:
        return ProcessView(self.port, self.ready, self.draining_since is not None, self.spec.address)

    @property
    def failed(self) -> bool:
        """It exited, or never started."""
        return self.exit_code is not None or (self.proc is None and bool(self.problem))

    def to_dict(self) -> dict[str, object]:
        return {"instance_id": self.spec.instance_id, "env": self.spec.env, "color": self.spec.color,
                "version": self.spec.version, "address": self.spec.address, "port": self.port,
                "pid": self.pid if self.alive else None,
                "alive": self.alive, "ready": self.ready, "problem": self.problem, "log": str(self.log),
                "command": self.argv, "draining": self.draining_since is not None or self.stopping_since is not None}


CommandResolver = Callable[[TargetSpec, int], list[str]]


def workers_dir(files: object) -> Path:
    """Where the worker processes' logs and pid files live: beside the targets'."""
    return Path(files.targets).with_name("workers")  # type: ignore[attr-defined]


def worker_command_for(template: str | None, spec: TargetSpec) -> list[str]:
    """The argv of a worker: workers.command with its placeholders filled in (no shell), or the
    sample worker when the environment file is gone."""
    queue_url = getattr(spec, "queue_url", "")
    if not template:
        return [sys.executable, "-m", "bgtool.embedded.sampleworker", "--queue-url", queue_url,
                "--version", spec.version, "--color", spec.color, "--worker", spec.instance_id]
    values = {"{queue_url}": queue_url, "{version}": spec.version, "{color}": spec.color,
              "{worker}": spec.instance_id, "{python}": sys.executable}
    argv = []
    for word in shlex.split(template):
        for key, value in values.items():
            word = word.replace(key, value)
        argv.append(word)
    return argv


def app_environment(spec: TargetSpec, endpoint: str) -> dict[str, str]:
    """What the user data's /etc/bgtool-app.env gives the application on EC2, for a process here: the
    shared session store (from the instance's tags) and the embedded AWS as its endpoint. Credentials
    stand in for the instance profile's (the embedded AWS accepts any); the operator's own never
    reach an application process."""
    if not spec.session_store:
        return {}
    env = {"BGTOOL_SESSION_STORE": "dynamodb", "BGTOOL_SESSION_TABLE": spec.session_store,
           "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": spec.region or "us-east-1",
           "AWS_DEFAULT_REGION": spec.region or "us-east-1",
           "AWS_ACCESS_KEY_ID": "embedded-instance-profile", "AWS_SECRET_ACCESS_KEY": "embedded-instance-profile"}
    if spec.session_ttl_seconds:
        env["BGTOOL_SESSION_TTL_SECONDS"] = spec.session_ttl_seconds
    return env


_OPERATOR_CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                         "AWS_PROFILE")


def _inherited() -> dict[str, str]:
    """The daemon's environment without the credentials of whoever started it: an instance has its own."""
    return {k: v for k, v in os.environ.items() if k not in _OPERATOR_CREDENTIALS}


class Supervisor:
    def __init__(self, directory: Path, resolve: CommandResolver, cwd: Path,
                 environment: Callable[[TargetSpec], dict[str, str]] = lambda spec: {}) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.resolve = resolve
        self.cwd = cwd
        self.environment = environment
        self.targets: dict[str, TargetProcess] = {}

    def views(self) -> dict[str, ProcessView]:
        return {i: t.view() for i, t in self.targets.items() if t.proc is not None and t.stopping_since is None}

    def sync(self, specs: Mapping[str, TargetSpec], now: float) -> bool:
        """Start, drain and stop processes to match SPECS; True when anything changed."""
        changed = False
        for instance, spec in specs.items():
            current = self.targets.get(instance)
            if current is None:
                self._start(spec, now)
                changed = True
            elif current.draining_since is not None:
                current.draining_since = None  # registered again before it was stopped
                changed = True
        for instance, target in list(self.targets.items()):
            if instance in specs:
                continue
            if target.draining_since is None:
                target.draining_since = now
                changed = True
            elif target.stopping_since is None and now - target.draining_since >= DRAIN_SECONDS:
                target.stopping_since = now
                _signal_group(target, signal.SIGTERM)
                changed = True
            elif target.stopping_since is not None and (not target.alive or now - target.stopping_since > STOP_SECONDS):
                self._stop(target)  # SIGKILL for one that lingers; reaps it and forgets its pid file
                del self.targets[instance]
        return self._poll(now) or changed

    def _start(self, spec: TargetSpec, now: float, port: int | None = None) -> None:
        port = port or spec.port or free_port({t.port for t in self.targets.values()})
        log = self.dir / f"{spec.instance_id}.log"
        pid_file = self.dir / f"{spec.instance_id}.json"
        target = TargetProcess(spec, port, log, pid_file, [], started=now)
        self.targets[spec.instance_id] = target
        try:
            target.argv = self.resolve(spec, port)
            env = {**_inherited(), "PORT": str(port), "BGTOOL_HOST": spec.address, "BGTOOL_VERSION": spec.version,
                   "BGTOOL_COLOR": spec.color,
                   "BGTOOL_ENV": spec.env, "BGTOOL_INSTANCE_ID": spec.instance_id, **self.environment(spec)}
            with log.open("ab") as sink:
                sink.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {shlex.join(target.argv)}\n".encode())
                sink.flush()
                target.proc = subprocess.Popen(target.argv, stdout=sink, stderr=subprocess.STDOUT,
                                               stdin=subprocess.DEVNULL, cwd=self.cwd, env=env,
                                               start_new_session=True)
        except (OSError, ValueError) as exc:
            target.problem = f"could not start {spec.instance_id} ({shlex.join(target.argv) or 'no command'}): {exc}"
            return
        pid_file.write_text(json.dumps({**identity(target.proc.pid), "port": port, "instance_id": spec.instance_id}))

    def _poll(self, now: float) -> bool:
        changed = False
        for target in self.targets.values():
            if target.proc is None or target.stopping_since is not None:
                continue
            code = target.proc.poll()
            if code is not None and target.exit_code is None:
                target.exit_code = code
                when = "at start" if not target.ready else "while serving"
                target.problem = (f"the process of {target.spec.instance_id} exited {when} with code {code}; "
                                  f"see {target.log}")
                changed = True
            elif not target.ready and code is None:
                if listens(target.port, target.spec.address):
                    target.ready, target.problem, target.ready_at = True, "", now
                    target.first_check_ok = first_check(target.port, target.spec.health_path, target.spec.address)
                    changed = True
                elif now - target.started > START_TIMEOUT and not target.problem:
                    target.problem = (f"the process of {target.spec.instance_id} does not listen on port "
                                      f"{target.port} after {START_TIMEOUT:.0f} s; see {target.log}")
                    changed = True
        return changed

    def restart_dead(self, now: float) -> list[str]:
        """Start again every process that exited (on the same port, so HAProxy needs no change)."""
        restarted = []
        for instance, target in list(self.targets.items()):
            if target.alive or target.draining_since is not None:
                continue
            self._start(target.spec, now, port=target.port)
            restarted.append(instance)
        return restarted

    def _stop(self, target: TargetProcess) -> None:
        if target.proc is not None:
            stop_group(target.proc.pid, target.proc)
        target.pid_file.unlink(missing_ok=True)

    def stop_all(self) -> None:
        """SIGTERM to every process at once, then wait for them together (SIGKILL for the slow)."""
        for target in self.targets.values():
            _signal_group(target, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        while time.monotonic() < deadline and any(t.alive for t in self.targets.values()):
            time.sleep(0.05)
        for target in self.targets.values():
            self._stop(target)
        self.targets.clear()


def _signal_group(target: TargetProcess, signum: int) -> None:
    if target.proc is not None and target.proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(target.proc.pid, signum)


def stop_group(pid: int, proc: subprocess.Popen[bytes] | None = None, wait_seconds: float = 3.0) -> None:
    """SIGTERM to the process's session, SIGKILL if it lingers."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if proc is not None:
            if proc.poll() is not None:
                break
        elif not _group_alive(pid):
            break
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(1)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_leftovers(directory: Path) -> list[int]:
    """Stop every target process recorded under DIRECTORY (after a daemon that died without cleaning up).

    Only while the pid is still the process recorded, or no process has it and its session lives on
    (the kernel does not give a pid to a new process while it names a live session or group)."""
    stopped = []
    for pid_file in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            record = json.loads(pid_file.read_text())
            pid = int(record["pid"])
            ours = pid > 0 and (is_recorded(pid, record.get("start")) or not exists(pid))
            if ours and _group_alive(pid):
                stop_group(pid)
                stopped.append(pid)
        pid_file.unlink(missing_ok=True)
    return stopped


def first_check(port: int, path: str, host: str = "127.0.0.1") -> bool:
    """One health-path request as soon as a process listens, so it need not wait up to a whole check
    interval for HAProxy's first check before it counts as healthy."""
    import requests

    try:
        return 200 <= requests.get(f"http://{host}:{port}{path}", timeout=1).status_code < 400
    except requests.RequestException:
        return False


def health_verdict(target: TargetProcess | None, status: str, check_status: str, check_code: str,
                   check_desc: str, now: float = 0.0) -> tuple[str, str, str] | None:
    """What describe_target_health says for a running instance, from its process and its checks.

    None keeps moto's own answer. The reasons are AWS's: Elb.RegistrationInProgress while the
    process starts, Elb.InitialHealthChecking before the first check, Target.ResponseCodeMismatch
    for a wrong status, Target.Timeout, else Target.FailedHealthChecks.
    """
    if target is None:
        return None
    if target.draining_since is not None:
        return ("draining", "Target.DeregistrationInProgress", "Target deregistration is in progress")
    if not target.ready:
        if target.problem:
            return ("unhealthy", "Target.FailedHealthChecks", target.problem)
        return ("initial", "Elb.RegistrationInProgress", "Target registration is in progress")
    initial = ("initial", "Elb.InitialHealthChecking", "Initial health checking in progress")
    if status.startswith("UP"):
        if check_status in ("INI", "") and not target.first_check_ok:
            return initial
        return ("healthy", "", "")
    if status.startswith("DOWN"):
        # Never up yet: a check result left over from the slot's previous state, or still rising.
        fresh = target.alive and now - target.ready_at < INITIAL_GRACE
        if not target.seen_up and (check_status.startswith("L7OK") or fresh):
            return initial
        if not target.alive:
            return ("unhealthy", "Target.FailedHealthChecks", f"Health checks failed: {target.problem}")
        if check_status.startswith("L7STS") or (check_code and check_status.startswith("L7")):
            return ("unhealthy", "Target.ResponseCodeMismatch",
                    f"Health checks failed with these codes: [{check_code or '?'}]")
        if "TOUT" in check_status:
            return ("unhealthy", "Target.Timeout", "Request timed out")
        return ("unhealthy", "Target.FailedHealthChecks", f"Health checks failed ({check_desc or check_status})")
    return None

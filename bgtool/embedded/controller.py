"""The controller: every tenth of a second, make HAProxy and the target processes follow moto.

One tick reads moto's backends (bgtool.embedded.mototap), starts or drains target processes,
plans the data plane (bgtool.embedded.layout), applies runtime changes through HAProxy's admin
socket (or a seamless reload when the shape changed), publishes the health checks' verdicts to
`describe_target_health`, feeds the metrics monitor and publishes the state file.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from bgtool.config.schema import list_environments, load_environment
from bgtool.embedded import mototap
from bgtool.embedded.dataplane import Files, write_state
from bgtool.embedded.ecsagent import EcsAgent, TaskView
from bgtool.embedded.haproxy import HaproxyProcess, ServerStat, parse_stat
from bgtool.embedded.layout import Files as ConfigFiles
from bgtool.embedded.layout import (
    Layout,
    Plan,
    ServerState,
    dns_key,
    dns_names,
    dns_port_keys,
    plan,
    render_config,
    runtime_commands,
)
from bgtool.embedded.model import Forward, Redirect, Snapshot, TargetSpec, target_specs, worker_specs
from bgtool.embedded.ports import PortBook, PortClaims, allocate
from bgtool.embedded.targets import (
    Supervisor,
    app_environment,
    command_for,
    health_verdict,
    worker_command_for,
    workers_dir,
)
from bgtool.errors import BgtoolError

log = logging.getLogger("bgtool.dataplane")

COMMANDS_PER_BATCH = 40
RELOAD_RETRY_SECONDS = 5.0
SETTINGS_REFRESH_SECONDS = 5.0
MONITOR_SECONDS = 1.0


class EnvironmentSettings:
    """`local` settings of the project's environment files, re-read when a file changes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._read_at = 0.0
        self._stamp: tuple[tuple[str, float], ...] = ()
        self.app_commands: dict[str, str | None] = {}
        self.worker_commands: dict[str, str] = {}
        self.metrics_period: float | None = None

    def refresh(self, now: float) -> None:
        if now - self._read_at < SETTINGS_REFRESH_SECONDS and self._read_at:
            return
        self._read_at = now
        stamp = tuple(sorted((p.name, p.stat().st_mtime) for p in (self.root / "environments").glob("*.yaml")))
        if stamp == self._stamp:
            return
        self._stamp = stamp
        commands: dict[str, str | None] = {}
        workers: dict[str, str] = {}
        periods: list[float] = []
        for env in list_environments(self.root):
            try:
                config = load_environment(self.root, env).config
            except BgtoolError as exc:
                log.warning("environments/%s.yaml is invalid; its targets run the sample application: %s",
                            env, exc.message.splitlines()[0])
                continue
            commands[env] = config.local.app_command
            if config.workers is not None:
                workers[env] = config.workers.command
            if config.local.metrics_period_seconds:
                periods.append(config.local.metrics_period_seconds)
        self.app_commands = commands
        self.worker_commands = workers
        self.metrics_period = min(periods) if periods else None


def _fault_file(state_dir: Path, spec: TargetSpec) -> Path | None:
    try:
        from bgtool.embedded.faults import fault_file
    except ImportError:
        return None
    return fault_file(state_dir, spec.env, spec.color)


class Controller:
    def __init__(self, root: Path, files: Files, haproxy: HaproxyProcess, moto_port: int) -> None:
        self.root = root
        self.files = files
        self.haproxy = haproxy
        self.moto_port = moto_port
        self.settings = EnvironmentSettings(root)
        self.supervisor = Supervisor(files.targets, self._command, root,
                                     lambda spec: app_environment(spec, f"http://127.0.0.1:{moto_port}"))
        self.workers = Supervisor(workers_dir(files), self._worker_command, root)
        self.ecs = EcsAgent()
        self.book = PortBook(files.ports)
        self.claims = PortClaims()
        self.layout = Layout()
        self.applied: dict[str, ServerState] = {}
        self.slots: dict[str, dict[str, int]] = {}
        self.plan: Plan | None = None
        self.ports: dict[str, int] = {}
        self._port_keys: tuple[tuple[str, int], ...] = ()
        self._bad_ports: set[int] = set()
        self._reload_failed_at = 0.0
        self.problems: list[str] = []
        self._published: Any = None
        self._monitors: dict[str, Any] = {}
        self._monitor_at = 0.0
        self.stats: dict[str, ServerStat] = {}
        self.stats_csv = ""

    # ----------------------------------------------------------------------------------------
    def config_files(self) -> ConfigFiles:
        return ConfigFiles(str(self.files.admin_socket), str(self.haproxy.state_file))

    def initial_config(self) -> str:
        return render_config(Layout(), {}, self.config_files())

    def _command(self, spec: TargetSpec, port: int) -> list[str]:
        template = self.settings.app_commands.get(spec.env)
        return command_for(template, spec, port, _fault_file(self.files.dir.parent, spec))

    def _worker_command(self, spec: TargetSpec, port: int) -> list[str]:
        return worker_command_for(self.settings.worker_commands.get(spec.env), spec)

    # ----------------------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        self.settings.refresh(now)
        try:
            snap = mototap.read_snapshot()
        except RuntimeError:
            return  # moto changed a dict while it was read; the next tick reads again
        self.ecs.tick(snap, self._task_views(snap), time.time())
        servable = self.ecs.servable(snap)
        specs = {key: spec for key, spec in target_specs(snap).items() if not spec.port or key in servable}
        self.supervisor.sync(specs, now)
        self.workers.sync(worker_specs(snap), now)
        self._read_stats()
        health_up = self._health_up()
        ports = self._ports_for(snap)
        wanted = plan(snap, ports, self.supervisor.views(), health_up, self.slots, self.layout)
        for problem in wanted.problems:
            if problem not in self.problems:
                self._note(problem)  # logged once, and shown by 'bgtool local status'
        if wanted.layout != self.layout:
            if now - self._reload_failed_at >= RELOAD_RETRY_SECONDS:
                self._reload(wanted, now)
        else:
            self._apply(wanted)
        mototap.set_health(self._overrides())
        self._monitor(now)
        self._publish(snap)

    def _task_views(self, snap: Snapshot) -> dict[str, TaskView]:
        """What the ECS agent needs to know about each task's process: listening, healthy, failed, gone."""
        overrides = self._overrides()
        groups = {s.arn: s.target_group_arn for s in snap.services}
        views = {}
        for task in snap.tasks.values():
            group = groups.get(task.service_arn, "")
            target = (self.supervisor if group else self.workers).targets.get(task.address)
            if target is None:
                continue
            if group:
                verdict = overrides.get((group, task.address))
                healthy = verdict is not None and verdict[0] == "healthy"
            else:  # a worker is in no target group: healthy once its process is ready
                healthy = target.ready
            views[task.address] = TaskView(listening=target.ready, healthy=healthy, failed=target.failed, gone=False)
        return views

    def _read_stats(self) -> None:
        try:
            self.stats_csv = self.haproxy.api.run("show stat")
            self.stats = parse_stat(self.stats_csv)
        except OSError as exc:
            log.warning("HAProxy's admin socket did not answer: %s", exc)

    def _health_up(self) -> dict[tuple[str, str], bool]:
        if self.plan is None:
            return {}
        return {key: stat.status.startswith("UP")
                for key, server in self.plan.tg_slot_of.items() if (stat := self.stats.get(server))}

    def _ports_for(self, snap: Snapshot) -> dict[str, int]:
        keys = tuple(sorted([(lst.key, lst.port) for lst in snap.listeners] + dns_port_keys(snap)))
        if keys != self._port_keys:
            held = frozenset(fe.local_port for fe in self.layout.frontends)
            known = {k: v for k, v in self.book.load().items() if v not in self._bad_ports}
            self.ports = allocate(list(keys), known, str(self.root), free=self._usable, held=held)
            self.book.save(self.ports)
            self._port_keys = keys
        return self.ports

    def _usable(self, port: int) -> bool:
        """Free on this machine and claimed by this data plane (never one another data plane serves)."""
        return port not in self._bad_ports and (port in self.claims.held or _free(port)) and self.claims.claim(port)

    def _apply(self, wanted: Plan) -> None:
        commands = runtime_commands(self.applied, wanted.servers)
        try:
            for start in range(0, len(commands), COMMANDS_PER_BATCH):
                answer = self.haproxy.api.run(*commands[start:start + COMMANDS_PER_BATCH])
                _log_answer(answer)
        except OSError as exc:
            log.warning("HAProxy's admin socket refused %d commands: %s", len(commands), exc)
            return
        self.applied = dict(wanted.servers)
        self.slots, self.plan = wanted.slots, wanted

    def _reload(self, wanted: Plan, now: float) -> None:
        text = render_config(wanted.layout, wanted.servers, self.config_files())
        try:
            ok = self.haproxy.reload(text)
        except BgtoolError as exc:
            ok = False
            self._note(exc.message)
        if ok:
            log.info("HAProxy reloaded: %d frontends, %d target groups", len(wanted.layout.frontends),
                     len(wanted.layout.tg_backends))
            self.layout = wanted.layout
            self.applied = {}
            self._apply(wanted)  # the state file restored the old values: write every current one
            self.problems = [p for p in self.problems if not p.startswith("HAProxy")]
            return
        self._reload_failed_at = now
        held = {fe.local_port for fe in self.layout.frontends}
        busy = {fe.local_port for fe in wanted.layout.frontends if fe.local_port not in held
                and not _free(fe.local_port)}
        if busy:
            # Another program took a port between allocation and bind: allocate again at once.
            self._bad_ports |= busy
            self._port_keys = ()
            self._reload_failed_at = 0.0
        self._note(f"HAProxy reload failed ({self.haproxy.last_log_lines(2)}); see {self.haproxy.log}")

    def _note(self, problem: str) -> None:
        log.error(problem)
        if problem not in self.problems:
            self.problems = [*self.problems[-9:], problem]

    def _overrides(self) -> dict[tuple[str, str], mototap.HealthOverride]:
        if self.plan is None:
            return {}
        out = {}
        for (tg_arn, instance), server in self.plan.tg_slot_of.items():
            stat = self.stats.get(server)
            target = self.supervisor.targets.get(instance)
            if target is not None and stat is not None and stat.status.startswith("UP") and target.ready:
                target.seen_up = True
            verdict = health_verdict(target, stat.status if stat else "",
                                     stat.check_status if stat else "", stat.check_code if stat else "",
                                     stat.check_desc if stat else "", time.monotonic())
            if verdict is not None:
                out[(tg_arn, instance)] = verdict
        return out

    # ----------------------------------------------------------------------------------------
    def _monitor(self, now: float) -> None:
        if now - self._monitor_at < MONITOR_SECONDS or self.plan is None:
            return
        self._monitor_at = now
        try:
            from bgtool.embedded.monitor import Monitor, ServerInfo
        except ImportError:
            return
        by_region: dict[str, dict[str, Any]] = {}
        for server, owner in self.plan.owners.items():
            target = self.supervisor.targets.get(owner.instance_id)
            if target is None:
                continue
            region = owner.listener.lb_arn.split(":")[3]
            by_region.setdefault(region, {})[server] = ServerInfo(
                owner.listener.lb_arn_suffix, owner.tg_arn_suffix, target.spec.env, target.spec.color,
                owner.instance_id)
        for region, servers in by_region.items():
            key = f"{region}:{self.settings.metrics_period}"
            if key not in self._monitors:
                self._monitors = {k: m for k, m in self._monitors.items() if not k.startswith(f"{region}:")}
                self._monitors[key] = Monitor(self._cloudwatch(region), self.settings.metrics_period)
            try:
                self._monitors[key].tick(time.time(), self.stats_csv, servers)
            except Exception as exc:  # the monitor must never stop the data plane
                log.exception("metrics monitor failed: %s", exc)

    def _cloudwatch(self, region: str) -> Any:
        import boto3

        return boto3.session.Session(aws_access_key_id="bgtool", aws_secret_access_key="bgtool",
                                     region_name=region).client("cloudwatch",
                                                                endpoint_url=f"http://127.0.0.1:{self.moto_port}")

    # ----------------------------------------------------------------------------------------
    def _publish(self, snap: Snapshot) -> None:
        doc = self.document(snap)
        if doc == self._published:
            return
        self._published = doc
        write_state(self.root, {**doc, "status": "ready", "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z")})

    def document(self, snap: Snapshot) -> dict[str, Any]:
        overrides = self._overrides()
        groups = snap.target_groups
        lbs: dict[str, dict[str, Any]] = {}
        for listener in snap.listeners:
            lb = lbs.setdefault(listener.lb_arn, {"name": listener.lb_name, "arn": listener.lb_arn,
                                                  "dns_name": listener.dns_name, "listeners": []})
            port = self.ports.get(listener.key)
            served = any(fe.listener_key == listener.key for fe in self.layout.frontends)
            entry: dict[str, Any] = {"port": listener.port, "protocol": listener.protocol, "local_port": port,
                                     "url": f"http://127.0.0.1:{port}" if port and served else None}
            action = listener.action
            if isinstance(action, Forward):
                entry["action"] = "forward"
                entry["weights"] = {groups[a].name if a in groups else a: w for a, w in action.weights}
                entry["stickiness_seconds"] = action.stickiness_seconds
            else:
                entry["action"] = "redirect" if isinstance(action, Redirect) else "fixed-response"
            lb["listeners"].append(entry)
        targets = []
        for instance, target in sorted(self.supervisor.targets.items()):
            health = {groups[arn].name: overrides.get((arn, instance), ("healthy", "", ""))[0]
                      for arn in groups if any(t.id == instance for t in groups[arn].targets)}
            targets.append({**target.to_dict(), "health": health})
        problems = list(self.problems) + [t.problem for t in self.supervisor.targets.values() if t.problem]
        return {
            "pid": os.getpid(), "moto_port": self.moto_port, "endpoint": f"http://127.0.0.1:{self.moto_port}",
            "haproxy": {"pid": self.haproxy.proc.pid if self.haproxy.proc else None, "config": str(self.haproxy.config),
                        "log": str(self.haproxy.log), "admin_socket": str(self.files.admin_socket)},
            "load_balancers": list(lbs.values()), "targets": targets, "problems": problems,
            "dns_names": self._dns_document(snap),
            "workers": [w.to_dict() for _, w in sorted(self.workers.targets.items())],
            "ecs_services": _ecs_document(snap, {a for sup in (self.supervisor, self.workers)
                                                 for a, t in sup.targets.items() if t.ready}),
        }

    def _dns_document(self, snap: Snapshot) -> list[dict[str, Any]]:
        out = []
        for (name, port), answers in sorted(dns_names(snap).items()):
            local = self.ports.get(dns_key(name, port))
            served = any(fe.listener_key == dns_key(name, port) for fe in self.layout.frontends)
            out.append({"name": name, "port": port, "local_port": local,
                        "url": f"http://127.0.0.1:{local}" if local and served else None,
                        "weights": {r.set_identifier: r.weight for r, _ in answers},
                        "load_balancers": {r.set_identifier: lst.lb_name for r, lst in answers}})
        return out


def _ecs_document(snap: Snapshot, serving: set[str]) -> list[dict[str, Any]]:
    """Each ECS service with its desired count and how many of its tasks have a process that listens
    (what `local restore` waits for)."""
    out = []
    for service in snap.services:
        tasks = [t for t in snap.tasks.values() if t.service_arn == service.arn and t.wanted]
        out.append({"name": service.name, "cluster": service.cluster, "desired": service.desired,
                    "running": sum(1 for t in tasks if t.address in serving),
                    "tasks": sorted(t.address for t in tasks)})
    return out


def _free(port: int) -> bool:
    from bgtool.embedded.ports import is_free

    return is_free(port)


def _log_answer(answer: str) -> None:
    for line in answer.splitlines():
        text = line.strip()
        if text and not text.startswith(("no need to change", "IP changed", "port changed")):
            log.info("haproxy: %s", text)

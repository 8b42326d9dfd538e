"""The I/O of `bgtool drift`: one terraform plan per layer, boto3 reads, in bounded parallel.

A layer costs what `bgtool plan` costs: one normal plan, whose saved document carries both what
changed outside Terraform (`resource_drift`, found by the plan's refresh) and what the repo has
not applied yet (`resource_changes`). A separate refresh-only plan would report the same drift
at the price of a second run of the provider.

Each terraform invocation starts the ~675 MiB AWS provider several times, so the number of
terraform processes running at once is bounded by one semaphore for the whole run (`jobs`,
default: the CPU count, at least 2); environments and layers are fanned out on threads that
wait on it. boto3 reads are cheap and not bounded.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bgtool.aws.live import ListenerWeights, find_alb, listener_weights, target_group_arns
from bgtool.compute import compute_for, require_operable
from bgtool.config.schema import Color
from bgtool.drift import diff
from bgtool.drift.model import DriftItem, DriftReport, EnvReport, LayerCheck
from bgtool.errors import BgtoolError
from bgtool.records.lock import OperationLock
from bgtool.render import parity
from bgtool.render.templates import LAYERS, UPSTREAM, render_layer
from bgtool.terraform.runner import RunResult, TerraformError
from bgtool.terraform.workspace import Workspace

DRIFT_PLAN = "bgtool-drift.tfplan"
TRANSIENT = ("use of closed network connection", "connection reset by peer")
Progress = Callable[[str], None]


def default_jobs() -> int:
    return max(2, os.cpu_count() or 2)


class Checker:
    """Checks environments; one instance per `bgtool drift` run (it owns the semaphore)."""

    def __init__(self, root: Path, *, jobs: int | None = None, progress: Progress | None = None) -> None:
        self.root = root
        self.slots = threading.BoundedSemaphore(jobs or default_jobs())
        self.prepare_lock = threading.Lock()
        self.progress = progress or (lambda _msg: None)
        self.base_docs: dict[str, dict[str, Any]] = {}  # per env: base's plan document, else its state

    def run(self, envs: list[str]) -> DriftReport:
        started = datetime.now(UTC).isoformat(timespec="seconds")
        with ThreadPoolExecutor(max_workers=max(1, min(len(envs), 4)), thread_name_prefix="drift-env") as pool:
            reports = list(pool.map(self.check_env, envs))
        return DriftReport(reports, started)

    def check_env(self, env: str) -> EnvReport:
        """Never raises: an error becomes part of this environment's report."""
        report = EnvReport(env)
        try:
            self._check_env(env, report)
        except (BgtoolError, ClientError, BotoCoreError, OSError) as exc:
            report.errors.append(getattr(exc, "message", None) or str(exc))
        self.progress(f"{env}: {report.status} ({len(report.items)} drift item(s))")
        return report

    def _check_env(self, env: str, report: EnvReport) -> None:
        ws = Workspace(self.root, env)
        require_operable(ws.loaded)
        report.items += self._rendered_parity(ws, "rendered (build/ on disk)")
        with self.prepare_lock:  # the CLI config and backend are shared files/tables
            ws.prepare()
        report.items += self._template_parity(ws)
        items, checks = self._terraform(ws)
        report.layers = checks
        items += self._bgtool_checks(ws, items)
        report.items += diff.fold_security_group_drift(diff.fold_listener_drift(items))

    # -- Terraform ---------------------------------------------------------------------------
    def _terraform(self, ws: Workspace) -> tuple[list[DriftItem], list[LayerCheck]]:
        with ThreadPoolExecutor(max_workers=len(LAYERS), thread_name_prefix=f"drift-{ws.env}") as pool:
            results = list(pool.map(lambda layer: self._layer(ws, layer), LAYERS))
        pending = {layer for layer, (items, check, _doc) in zip(LAYERS, results, strict=True) if items}
        items: list[DriftItem] = []
        checks: list[LayerCheck] = []
        for layer, (layer_items, check, doc) in zip(LAYERS, results, strict=True):
            blocked = [u for u in UPSTREAM[layer] if u in pending]
            if check.status == "error" and blocked:
                check.status, check.error = "blocked", f"waits for layer {', '.join(blocked)} to be applied"
            if layer == "base":
                self.base_docs[ws.env] = doc
            items += layer_items
            checks.append(check)
        return items, checks

    def _layer(self, ws: Workspace, layer: str) -> tuple[list[DriftItem], LayerCheck, dict[str, Any]]:
        """The plan of one layer; a dropped connection (seen on a loaded embedded AWS) is retried once."""
        first = self._layer_once(ws, layer)
        if first[1].status == "error" and any(t in (first[1].error or "") for t in TRANSIENT):
            self.progress(f"{ws.env}/{layer}: transient error, retrying once")
            return self._layer_once(ws, layer)
        return first

    def _layer_once(self, ws: Workspace, layer: str) -> tuple[list[DriftItem], LayerCheck, dict[str, Any]]:
        check = LayerCheck(layer, "clean")
        try:
            with self.slots:
                tf = ws.terraform(layer)
                plan_file = tf.workdir / DRIFT_PLAN
                # Without the state lock: a drift check writes nothing, so it neither waits for a
                # running apply nor needs the drift role to write lock items.
                result = tf.plan(out=plan_file, lock=False)
                check.plan_exit = result.exit_code
                doc = tf.show_plan(plan_file) if _needs_document(result) else {}
                # The base layer's managed ids feed the unmanaged-rule check: from the plan's state
                # when it was read, else from the stored state (no provider start).
                managed = doc or (tf.state() if layer == "base" else {})
        except TerraformError as exc:
            check.status, check.error = "error", exc.message
            return [], check, {}
        items = diff.terraform_items(ws.env, layer, doc)
        check.status = "drift" if items else "clean"
        self.progress(f"{ws.env}/{layer}: {check.status}")
        return items, check, managed

    # -- bgtool-specific checks ------------------------------------------------------------------
    def _bgtool_checks(self, ws: Workspace, items: list[DriftItem]) -> list[DriftItem]:
        config, aws = ws.config, ws.aws
        out: list[DriftItem] = []
        alb = find_alb(aws, config)
        if alb is not None:
            tg_arns = target_group_arns(aws, config)
            listeners = listener_weights(aws, alb["LoadBalancerArn"], tg_arns)
            production = next((lw for lw in listeners if lw.port == config.listeners.production_port), None)
            found = diff.active_color_item(ws.env, config.active_color, production)
            out += [found] if found else []
            out += self._unmanaged_rules(ws)
        out += self._live_parity(ws)
        if config.dns is not None:  # DNS mode: the weighted records carry production, not a listener
            from bgtool.traffic.dns import live_record_sets, record_weights

            weights = record_weights(live_record_sets(ws))
            if weights is not None:
                records = ListenerWeights(config.listeners.production_port, "DNS", config.dns.record,
                                          weights.as_dict())
                found = diff.active_color_item(ws.env, config.active_color, records)
                out += [found] if found else []
        if config.workers is not None:
            from bgtool.compute.workers import running_workers

            found = diff.idle_workers_item(ws.env, config.idle_color, running_workers(ws, config.idle_color))
            out += [found] if found else []
        lock = OperationLock(self.root, ws.env, config, aws).current()
        found = diff.lock_item(ws.env, lock, config.lock.stale_after_minutes)
        return out + ([found] if found else [])

    def _unmanaged_rules(self, ws: Workspace) -> list[DriftItem]:
        """Security group rules that no Terraform resource manages.

        The rules are `aws_vpc_security_group_ingress_rule` resources, one per rule: a rule added
        by hand is a new object that no resource's refresh can see (refresh reads only the
        objects in state), so Terraform does not report it. bgtool lists the live rules of its
        groups and reports every rule id that is not in the base layer's state.
        """
        doc = self.base_docs.get(ws.env) or {}
        managed = diff.state_ids(doc)
        if not managed:
            return []
        ec2 = ws.aws.client("ec2")
        out: list[DriftItem] = []
        for suffix in ("alb", "instances"):
            name = f"{ws.config.name}-{suffix}"
            groups = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]}])["SecurityGroups"]
            for group in groups:
                if group["GroupId"] not in managed:
                    continue
                rules = ec2.describe_security_group_rules(
                    Filters=[{"Name": "group-id", "Values": [group["GroupId"]]}])["SecurityGroupRules"]
                extra = [r for r in rules if r["SecurityGroupRuleId"] not in managed and not r.get("IsEgress")]
                out += diff.unmanaged_rule_items(ws.env, name, extra)
        return out

    def _live_parity(self, ws: Workspace) -> list[DriftItem]:
        """Blue and green as AWS runs them, compared beyond color, version and (when they may differ) size."""
        config = ws.config
        compute = compute_for(ws)
        versions = [config.colors.blue.version, config.colors.green.version]
        shots = {c.value: compute.snapshot(c) for c in Color}
        if not shots["blue"] or not shots["green"]:
            return []
        sizes_compared = all(not config.colors.of(c).retired for c in Color) and _same_sizes(config)
        out = []
        for color in Color:
            shot = shots[color.value]
            sizes = shot.pop("sizes")
            if sizes_compared:
                shot["sizes"] = sizes
            live_versions = versions + shot.pop("versions")
            out.append(diff.normalize_color(shot, color.value, live_versions))
        return diff.live_parity_items(ws.env, out[0], out[1], compute.settings_label)

    # -- rendered parity ------------------------------------------------------------------------
    def _rendered_parity(self, ws: Workspace, where: str) -> list[DriftItem]:
        build = self.root / "build" / ws.env
        blue, green = parity.read_layer(build / "blue"), parity.read_layer(build / "green")
        if not blue or not green:
            return []
        return diff.rendered_parity_items(ws.env, parity.layer_differences(blue, green), where)

    def _template_parity(self, ws: Workspace) -> list[DriftItem]:
        blue = render_layer(self.root, ws.loaded, "blue")
        green = render_layer(self.root, ws.loaded, "green")
        return diff.rendered_parity_items(ws.env, parity.layer_differences(blue, green), "templates: rendered")


def _needs_document(result: RunResult) -> bool:
    """Whether the saved plan must be read back (`show -json` starts the provider once more).

    Only a plan that would act (exit 2) can hold a finding. A resource deleted outside Terraform
    is planned for creation and a configured attribute changed outside it is planned back, so
    both make the plan act. What a plan with nothing to do may still list in `resource_drift` is
    refresh bookkeeping (computed values filled in; seen on every clean layer) or attributes the
    configuration tells Terraform to ignore (`lifecycle.ignore_changes`): neither is drift.
    """
    return result.exit_code == 2


def _same_sizes(config: Any) -> bool:
    b, g = config.colors.blue, config.colors.green
    return (b.desired, b.min_size, b.max_size) == (g.desired, g.min_size, g.max_size)

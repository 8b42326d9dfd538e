"""The status report: what the file says against what AWS serves.

Built as a plain document first (also the `--json` output), then printed, so people and scripts
see the same facts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bgtool.aws.live import LiveState
from bgtool.config.dashboard import dashboard_name, dashboard_url
from bgtool.config.schema import Color, Environment
from bgtool.records.history import Record
from bgtool.records.lock import LockInfo
from bgtool.release.retire import retention_left, retire_allowed_at


def build_status(
    env: str,
    config: Environment,
    live: LiveState,
    *,
    lock: LockInfo | None = None,
    last_switch: Record | None = None,
    at: datetime | None = None,
    dns: dict[str, Any] | None = None,
    workers: dict[str, int] | None = None,
    dashboard_found: bool | None = None,
) -> dict[str, Any]:
    """The status document; `lock` and `last_switch` are optional so callers without them still work.

    `dashboard_found` is None when nobody looked: the dashboard's name and address are still given,
    since they follow from the file alone.
    """
    at = at or datetime.now(UTC)
    listeners = []
    for port in (config.listeners.production_port, config.listeners.test_port):
        lw = live.listener(port)
        listeners.append({
            "port": port,
            "role": "production" if port == config.listeners.production_port else "test",
            "found": lw is not None,
            "weights": lw.weights if lw else {},
            "live_color": lw.live_color if lw else None,
        })
    production = dns if dns is not None else listeners[0]  # DNS mode: the weighted records carry production
    agrees = production["live_color"] == config.active_color.value
    colors = {}
    for color in Color:
        cl = live.colors[color.value]
        wanted = config.colors.of(color)
        colors[color.value] = {
            "role": "active" if color is config.active_color else "idle",
            "version_in_file": wanted.version,
            "versions_live": cl.versions,
            "desired": cl.desired,
            "in_service": cl.in_service,
            "targets": len(cl.targets),
            "healthy_targets": cl.healthy_targets,
            "alarms_firing": cl.alarms_firing,
            "asg_names": cl.asg_names,
        }
        if cl.task_definition:
            colors[color.value].update(task_definition=cl.task_definition, image=cl.image)
        if workers is not None:
            colors[color.value]["workers"] = workers.get(color.value, 0)
    return {
        "env": env,
        "active_color_in_file": config.active_color.value,
        "live_color": production["live_color"],
        "file_matches_live": agrees,
        "alb_found": live.alb_found if dns is None else dns["found"],
        "alb_dns_name": live.alb_dns_name,
        "listeners": listeners,
        "colors": colors,
        "lock": lock_doc(config, lock, at),
        "last_switch": _switch_doc(last_switch),
        "retention": retention_doc(config, last_switch, at),
        "dashboard": dashboard_doc(config, dashboard_found),
        **({"dns": dns} if dns is not None else {}),
    }


def dashboard_doc(config: Environment, found: bool | None) -> dict[str, Any]:
    """The environment's CloudWatch dashboard (both colors' graphs): where a person looks during a switch."""
    return {"name": dashboard_name(config), "url": dashboard_url(config), "found": found}


def lock_doc(config: Environment, lock: LockInfo | None, at: datetime) -> dict[str, Any]:
    """A lock older than lock.stale_after_minutes probably belongs to a crashed run: say so."""
    if lock is None:
        return {"held": False}
    age = lock.age_seconds(at)  # unknown for a lock whose content cannot be read: reported as stale
    minutes = None if age is None else age / 60
    return {"held": True, "owner": lock.owner, "operation": lock.operation, "since": lock.since,
            "host": lock.host, "pid": lock.pid, "age_minutes": None if minutes is None else round(minutes, 1),
            "stale": minutes is None or minutes > config.lock.stale_after_minutes}


def _switch_doc(record: Record | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {"operation": record.operation, "at": record.at, "from": record.from_color, "to": record.to_color,
            "versions": record.versions, "actor": record.actor}


def retention_doc(config: Environment, last_switch: Record | None, at: datetime) -> dict[str, Any]:
    allowed = retire_allowed_at(last_switch.at if last_switch else None, config.retention_hours)
    left = retention_left(allowed, at)
    return {"idle_color": config.idle_color.value, "retention_hours": config.retention_hours,
            "retire_allowed_from": allowed.astimezone(UTC).isoformat(timespec="seconds") if allowed else None,
            "seconds_left": int(left.total_seconds()),
            "retired": config.colors.of(config.idle_color).retired}

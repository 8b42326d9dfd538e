"""The status report: what the file says against what AWS serves.

Built as a plain document first (also the `--json` output), then printed, so people and scripts
see the same facts.
"""

from __future__ import annotations

from typing import Any

from bgtool import ui
from bgtool.config import Color, Environment
from bgtool.live import LiveState


def build_status(env: str, config: Environment, live: LiveState) -> dict[str, Any]:
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
    production = listeners[0]
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
    return {
        "env": env,
        "active_color_in_file": config.active_color.value,
        "live_color": production["live_color"],
        "file_matches_live": agrees,
        "alb_found": live.alb_found,
        "alb_dns_name": live.alb_dns_name,
        "listeners": listeners,
        "colors": colors,
    }


def print_status(doc: dict[str, Any]) -> None:
    c = ui.console
    c.print(f"[bold]{doc['env']}[/]: active color in file: [bold]{doc['active_color_in_file']}[/]; "
            f"live on the production listener: [bold]{doc['live_color'] or 'split/none'}[/]")
    if not doc["alb_found"]:
        c.print("[yellow]the load balancer does not exist yet: run 'bgtool apply "
                f"{doc['env']}'[/]")
    elif not doc["file_matches_live"]:
        c.print(f"[red]the file and the live weights disagree[/]: 'bgtool apply {doc['env']}' "
                "performs the guarded switch to the file's color")
    ui.table("listeners", ["port", "role", "blue", "green"], [
        [lst["port"], lst["role"], lst["weights"].get("blue", "-"), lst["weights"].get("green", "-")]
        if lst["found"] else [lst["port"], lst["role"], "missing", "missing"]
        for lst in doc["listeners"]
    ])
    ui.table("colors", ["color", "role", "version (file)", "version (live)", "desired", "in service",
                        "healthy targets", "alarms firing"], [
        [name, v["role"], v["version_in_file"], ",".join(v["versions_live"]) or "-", v["desired"],
         v["in_service"], f"{v['healthy_targets']}/{v['targets']}", ",".join(v["alarms_firing"]) or "none"]
        for name, v in doc["colors"].items()
    ])

"""How `bgtool status` looks to a person: the status document (bgtool.release.status) as text."""

from __future__ import annotations

from typing import Any

from bgtool.cli import ui


def print_status(doc: dict[str, Any]) -> None:
    c = ui.console
    c.print(f"[bold]{ui.safe(doc['env'])}[/]: active color in file: [bold]{doc['active_color_in_file']}[/]; "
            f"live on the production listener: [bold]{ui.safe(doc['live_color'] or 'split/none')}[/]")
    if not doc["alb_found"]:
        c.print("[yellow]the load balancer does not exist yet: run 'bgtool apply "
                f"{doc['env']}'[/]")
    elif not doc["file_matches_live"]:
        c.print(f"[red]the file and the live weights disagree[/]: 'bgtool apply {doc['env']}' "
                "performs the guarded switch to the file's color")
    _print_operations(doc)
    _print_dashboard(doc)
    if doc.get("dns"):
        _print_dns(doc["dns"])
    ui.table("listeners", ["port", "role", "blue", "green"], [
        [lst["port"], lst["role"], lst["weights"].get("blue", "-"), lst["weights"].get("green", "-")]
        if lst["found"] else [lst["port"], lst["role"], "missing", "missing"]
        for lst in doc["listeners"]
    ])
    workers = any("workers" in v for v in doc["colors"].values())
    ui.table("colors", ["color", "role", "version (file)", "version (live)", "desired", "in service",
                        "healthy targets", "alarms firing"] + (["workers"] if workers else []), [
        [name, v["role"], v["version_in_file"], ",".join(v["versions_live"]) or "-", v["desired"],
         v["in_service"], f"{v['healthy_targets']}/{v['targets']}", ",".join(v["alarms_firing"]) or "none"]
        + ([v.get("workers", 0)] if workers else [])
        for name, v in doc["colors"].items()
    ])
    if any("task_definition" in v for v in doc["colors"].values()):  # app.compute ecs: what each service runs
        ui.table("ECS services", ["color", "service", "task definition", "image", "running/desired"], [
            [name, ",".join(v["asg_names"]) or "-", v.get("task_definition") or "-", v.get("image") or "-",
             f"{v['in_service']}/{v['desired']}"]
            for name, v in doc["colors"].items()
        ])


def _print_operations(doc: dict[str, Any]) -> None:
    c, lock, switch, keep = ui.console, doc.get("lock") or {}, doc.get("last_switch"), doc.get("retention") or {}
    if lock.get("held"):
        stale = " [red](stale: probably a crashed run; 'bgtool unlock " + doc["env"] + "')[/]" if lock["stale"] else ""
        held = f"by {lock['owner']} on {lock['host']} (pid {lock['pid']}) since {lock['since'] or '?'}"
        age = "?" if lock["age_minutes"] is None else format(lock["age_minutes"], ".0f")
        c.print(f"operation lock: [bold]{ui.safe(lock['operation'])}[/] {ui.safe(held)}, {age} min{stale}")
    else:
        c.print("operation lock: none")
    if switch:
        c.print(ui.safe(f"last {switch['operation']}: {switch['at']} {switch['from'] or '?'} → {switch['to'] or '?'}"))
    else:
        c.print("last switch: none recorded")
    if keep.get("retired"):
        c.print(f"idle color {keep['idle_color']}: retired")
    elif keep.get("seconds_left", 0) > 0:
        c.print(f"idle color {keep['idle_color']}: kept for rollback another {keep['seconds_left'] / 3600:.1f} h "
                f"(retire allowed from {keep['retire_allowed_from']} UTC)")
    else:
        c.print(f"idle color {keep.get('idle_color')}: retention over, 'bgtool retire {doc['env']}' may scale it to 0")


def _print_dashboard(doc: dict[str, Any]) -> None:
    board = doc.get("dashboard")
    if not board:
        return
    where = f": {board['url']}" if board.get("url") else ""
    missing = f" [yellow](not created yet: 'bgtool apply {doc['env']}')[/]" if board.get("found") is False else ""
    ui.console.print(f"dashboard: [bold]{ui.safe(board['name'])}[/]{ui.safe(where)}{missing}", soft_wrap=True)


def _print_dns(dns: dict[str, Any]) -> None:
    weights, prop = dns["weights"], dns["propagation"]
    shown = ", ".join(f"{c} {w}" for c, w in sorted(weights.items())) if weights else "missing"
    ui.console.print(f"DNS record {ui.safe(dns['record'])}: {ui.safe(shown)}; TTL {dns['ttl_seconds']} s "
                     f"(guard {dns['max_ttl_seconds']} s)")
    if prop.get("changed_at") is None:
        return
    state = "propagated" if prop.get("complete") else f"propagating, about {prop.get('seconds_left', '?')} s left"
    ui.console.print(f"last change {ui.safe(prop['changed_at'])}: expected to reach every client within "
                     f"{prop['expected_seconds']} s (Route 53 + TTL): {state}")

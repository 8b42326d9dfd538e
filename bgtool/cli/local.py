"""`bgtool local up|down|status|restart|save|restore`: the embedded AWS and the data plane that serves its traffic."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import typer

from bgtool.cli import ui
from bgtool.cli.app import app
from bgtool.config.project import find_root, state_dir
from bgtool.config.schema import load_environment
from bgtool.embedded import server as embedded
from bgtool.embedded import snapshot
from bgtool.embedded.dataplane import listener_urls, read_state
from bgtool.errors import BgtoolError

local_app = typer.Typer(help="Start, stop or inspect the embedded AWS (moto on 127.0.0.1) and its data plane "
                             "(HAProxy and one process per instance or ECS task).", no_args_is_help=True)
app.add_typer(local_app, name="local")

PORT = typer.Option(embedded.DEFAULT_PORT, "--port", help="Port on 127.0.0.1.")
JSON = typer.Option(False, "--json", help="Print one JSON document on stdout.")
ENV = typer.Option("local", "--env", help="Environment whose load balancer's listeners `listeners` maps.")


def _doc(info: embedded.ServerInfo | None) -> dict[str, object]:
    if info is None:
        return {"running": False}
    return {"running": True, "pid": info.pid, "port": info.port, "endpoint": info.endpoint, "log": str(info.log)}


@local_app.command("up")
def up(port: int = PORT, as_json: bool = JSON) -> int:
    """Start the embedded AWS and its data plane, or do nothing if they run; waits until they answer.

    Installs HAProxy with apt-get when it is missing on a Debian-like machine (as root).
    """
    ui.set_json_mode(as_json)
    info, started = embedded.up(find_root(), port, install=True)
    ui.console.print(f"embedded AWS {'started' if started else 'already running'} at {ui.safe(info.endpoint)} "
                     f"(pid {info.pid}, log {ui.safe(info.log)}); its load balancers are served on 127.0.0.1: "
                     "'bgtool local status' lists the URLs")
    if as_json:
        ui.emit_json({**_doc(info), "started": started})
    return 0


@local_app.command("down")
def down(as_json: bool = JSON) -> int:
    """Stop the embedded AWS this project started, its HAProxy and every target process; its data is gone."""
    ui.set_json_mode(as_json)
    info = embedded.down(find_root())
    ui.console.print(f"stopped the embedded AWS (pid {info.pid})" if info else "the embedded AWS was not running")
    if as_json:
        ui.emit_json({"stopped": info is not None})
    return 0


@local_app.command("status")
def status(env: str = ENV, as_json: bool = JSON) -> int:
    """Endpoint, every listener with its local URL, targets, faults; exit 1 when the endpoint does not answer."""
    ui.set_json_mode(as_json)
    root = find_root()
    info = embedded.status(root)
    answering = bool(info and embedded.answers(info.port))
    doc: dict[str, Any] = {**_doc(info), "answering": answering}
    plane = read_state(root) if info else None
    if info and plane and plane.get("pid") == info.pid:
        doc.update(_plane_doc(root, env, plane))
    if not info:
        ui.console.print("not running")
    elif not answering:
        ui.console.print(f"pid {info.pid} is alive but port {info.port} does not answer; see {ui.safe(info.log)}")
    else:
        _show(info, doc)
    if as_json:
        ui.emit_json(doc)
    return 0 if answering else 1


@local_app.command("restart")
def restart() -> int:
    """Start again the target processes that exited (the data plane never restarts them by itself)."""
    info = embedded.status(find_root())
    if info is None:
        raise BgtoolError("the embedded AWS is not running", hint="Start it with 'bgtool local up'.")
    os.kill(info.pid, signal.SIGHUP)
    ui.console.print(f"asked the data plane (pid {info.pid}) to start every exited target process again; "
                     "'bgtool local status' shows them")
    return 0


@local_app.command("save")
def save(archive: Path = typer.Argument(..., help="The archive to write (.tar.gz)."), as_json: bool = JSON) -> int:
    """Save the running embedded AWS (every resource, the state bucket, the locks) and the project's files
    under .bgtool/ into ARCHIVE, so `bgtool local restore` brings an applied environment back in seconds."""
    ui.set_json_mode(as_json)
    with ui.console.status("saving the embedded AWS"):
        saved = snapshot.save(find_root(), archive.resolve())
    ui.console.print(f"saved the embedded AWS and {saved.files} project files to {ui.safe(saved.path)} "
                     f"({saved.bytes / 1e6:.1f} MB); 'bgtool local restore {ui.safe(archive)}' brings them back")
    if as_json:
        ui.emit_json({"archive": str(saved.path), "bytes": saved.bytes, "files": saved.files})
    return 0


@local_app.command("restore")
def restore(archive: Path = typer.Argument(..., exists=True, dir_okay=False, help="An archive `bgtool local save` "
                                           "wrote on this machine (it holds Python objects: never restore "
                                           "one from elsewhere)."),
            port: int = PORT, as_json: bool = JSON) -> int:
    """Start the embedded AWS with what ARCHIVE saved, replacing the project's files under .bgtool/; waits until
    every target is healthy and every listener served. The embedded AWS must be stopped first."""
    ui.set_json_mode(as_json)
    with ui.console.status("restoring the embedded AWS"):
        done = snapshot.restore(find_root(), archive.resolve(), port)
    ui.console.print(f"restored {ui.safe(archive)}: the embedded AWS runs at {ui.safe(done.info.endpoint)} "
                     f"(pid {done.info.pid}) with {done.targets} healthy targets and {done.listeners} listeners "
                     "served; 'bgtool local status' lists the URLs")
    if as_json:
        ui.emit_json({**_doc(done.info), "targets": done.targets, "listeners": done.listeners})
    return 0


def _plane_doc(root: Path, env: str, plane: dict[str, Any]) -> dict[str, Any]:
    lb_name, problems = None, list(plane.get("problems", []))
    try:
        lb_name = load_environment(root, env).config.name
    except BgtoolError as exc:
        problems.append(exc.message.splitlines()[0])
    listeners = listener_urls(plane, lb_name) if lb_name else {}
    return {
        "env": env,
        "listeners": {str(port): url for port, url in sorted(listeners.items())},
        "load_balancers": plane.get("load_balancers", []),
        "dns_names": plane.get("dns_names", []),
        "targets": plane.get("targets", []),
        "ecs_services": plane.get("ecs_services", []),
        "haproxy": plane.get("haproxy", {}),
        "faults": _faults(root),
        "problems": problems,
    }


def _faults(root: Path) -> list[dict[str, Any]]:
    try:
        from bgtool.embedded.faults import read_faults
    except ImportError:
        return []
    return [{"env": env, "color": color, "fault": fault.describe() if hasattr(fault, "describe") else str(fault)}
            for (env, color), fault in sorted(read_faults(state_dir(root)).items())]


def _show(info: embedded.ServerInfo, doc: dict[str, Any]) -> None:
    ui.console.print(f"embedded AWS at {ui.safe(info.endpoint)} (pid {info.pid}, log {ui.safe(info.log)})")
    rows = []
    for lb in doc.get("load_balancers", []):
        for lst in lb.get("listeners", []):
            what = lst.get("action", "")
            if lst.get("weights"):
                what += " " + ", ".join(f"{name} {w}" for name, w in lst["weights"].items())
            rows.append([lb.get("name"), lst.get("port"), lst.get("url") or "not served yet", what])
    if rows:
        ui.table("listeners", ["load balancer", "port", "local URL", "action"], rows)
    names = [[n.get("name"), n.get("port"), n.get("url") or "not served yet",
              ", ".join(f"{rid} {w} → {n.get('load_balancers', {}).get(rid, '?')}" for rid, w in n["weights"].items())]
             for n in doc.get("dns_names", [])]
    if names:
        ui.table("weighted DNS names (per connection)", ["name", "port", "local URL", "records"], names)
    targets = [[t.get("instance_id"), t.get("env"), t.get("color"), t.get("version"), t.get("port"),
                t.get("pid") or "exited", ", ".join(f"{g}: {h}" for g, h in (t.get("health") or {}).items())]
               for t in doc.get("targets", [])]
    if targets:
        ui.table("targets", ["instance or task", "env", "color", "version", "port", "pid", "health"], targets)
    for fault in doc.get("faults", []):
        ui.console.print(ui.safe(f"fault on {fault['env']} {fault['color']}: {fault['fault']}"))
    for problem in doc.get("problems", []):
        ui.console.print(f"[yellow]problem:[/] {ui.safe(problem)}", soft_wrap=True)

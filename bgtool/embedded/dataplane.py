"""Where the local data plane keeps its files, and what it publishes for the rest of bgtool.

The daemon writes `.bgtool/dataplane/state.json` whenever something changes: every load
balancer listener with the local URL that serves it, every target process with its pid, port,
version and health. Commands read that file instead of asking the daemon, so a smoke check or
`local status` works the same whether it runs beside the daemon or from another shell.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bgtool.config.project import state_dir
from bgtool.embedded.procs import private_dir
from bgtool.errors import BgtoolError

UNIX_PATH_MAX = 80  # HAProxy binds "<path>.<pid>.tmp" first: leave room for the suffix


@dataclass(frozen=True)
class Files:
    dir: Path
    state: Path
    ports: Path
    targets: Path
    sockets: Path

    @property
    def admin_socket(self) -> Path:
        return self.sockets / "haproxy-admin.sock"


def files(root: Path) -> Files:
    base = state_dir(root) / "dataplane"
    base.mkdir(parents=True, exist_ok=True)
    sockets = base
    if len(str(base / "haproxy-master.sock")) > UNIX_PATH_MAX:
        # A unix socket path is limited to ~107 bytes; deep project paths get a short directory instead.
        digest = hashlib.sha1(str(base.resolve()).encode()).hexdigest()[:12]
        sockets = private_dir(Path(tempfile.gettempdir()) / f"bgtool-{digest}")
    return Files(base, base / "state.json", base / "ports.json", base / "targets", sockets)


def read_state(root: Path) -> dict[str, Any] | None:
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(files(root).state.read_text())
        return data if isinstance(data, dict) else None
    return None


def write_state(root: Path, doc: dict[str, Any]) -> None:
    write_json(files(root).state, doc)


def write_json(path: Path, doc: dict[str, Any]) -> None:
    """Readers in other processes see the old document or the new one, never half of one."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=True, default=str))
    tmp.replace(path)


def saved_files(where: Files) -> tuple[Path, Path]:
    """(moto's backends, the result) of the daemon's last save (bgtool.embedded.snapshot)."""
    return where.dir / "saved-backends.pickle", where.dir / "saved.json"


def listener_urls(doc: dict[str, Any], load_balancer: str | None = None) -> dict[int, str]:
    """Listener port -> local URL, for one load balancer (name or ARN) or, without one, all of them."""
    out: dict[int, str] = {}
    for lb in doc.get("load_balancers", []):
        if load_balancer and load_balancer not in (lb.get("name"), lb.get("arn")):
            continue
        for listener in lb.get("listeners", []):
            if listener.get("url"):
                out.setdefault(int(listener["port"]), listener["url"])
    return out


def name_urls(doc: dict[str, Any], name: str) -> dict[int, str]:
    """Port -> local URL of a weighted DNS name (Route 53 records answering with load balancers)."""
    wanted = name.lower().rstrip(".")
    return {int(n["port"]): n["url"] for n in doc.get("dns_names", []) if n.get("name") == wanted and n.get("url")}


def color_targets(root: Path, env: str, color: str) -> list[dict[str, Any]]:
    """The target processes that serve COLOR of ENV (pid None for one that exited); the processes of
    deregistered instances, draining on their way out, are not among them."""
    doc = read_state(root) or {}
    return [t for t in doc.get("targets", [])
            if t.get("env") == env and t.get("color") == color and not t.get("draining")]


def local_url(root: Path, endpoint: str | None, load_balancer: str, port: int) -> str:
    """The loopback URL that serves listener PORT of LOAD_BALANCER (name or ARN) on the embedded AWS.

    On the embedded AWS a load balancer's DNS name resolves nowhere; its listeners are served by
    the data plane's HAProxy on local ports that only the published state knows.
    """
    doc = read_state(root)
    hint = "Start it with 'bgtool local up' (the data plane runs beside the embedded AWS)."
    if doc is None:
        raise BgtoolError(f"no local data plane runs for {root} ({files(root).state} is missing)", hint=hint)
    wanted = urlsplit(endpoint).port if endpoint else None
    if wanted is not None and doc.get("moto_port") != wanted:
        raise BgtoolError(f"the local data plane under {root} serves the embedded AWS on port "
                          f"{doc.get('moto_port')}, not {endpoint}", hint=hint)
    url = listener_urls(doc, load_balancer).get(port)
    if url is None:
        raise BgtoolError(f"the local data plane serves no listener {port} of {load_balancer} (yet)",
                          hint="Is the traffic layer applied? 'bgtool local status' lists the listeners it serves.")
    return url

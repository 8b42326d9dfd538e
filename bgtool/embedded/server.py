"""The embedded AWS: a moto server on loopback with its data plane, started and stopped by bgtool.

`up` starts one daemon per project (bgtool.embedded.daemon: moto in-process, HAProxy, the target
processes) and waits until it says it is ready. The pid (with its start time, so a later process
given the same number is never taken for it), port and log live under `.bgtool/`, so
`down` stops exactly what `up` started and never some other process on the port; it also stops
anything the daemon's pid files still name, so nothing keeps listening after a daemon crash.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bgtool.config.project import state_dir
from bgtool.embedded.dataplane import files as dataplane_files
from bgtool.embedded.dataplane import read_state
from bgtool.embedded.haproxy import ensure_haproxy
from bgtool.embedded.procs import identity, is_recorded
from bgtool.embedded.targets import kill_leftovers, workers_dir
from bgtool.errors import BgtoolError

DEFAULT_PORT = 5000


@dataclass(frozen=True)
class ServerInfo:
    pid: int
    port: int
    log: Path
    start: str | None = None
    """The daemon's start time (bgtool.embedded.procs): the pid is only signalled while it matches."""

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _files(root: Path) -> tuple[Path, Path]:
    base = state_dir(root)
    return base / "moto.json", base / "moto.log"


def answers(port: int, timeout: float = 2.0) -> bool:
    """Any HTTP answer counts: a moto server may answer its own API with 500 once it holds data."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError, ValueError):
        return False


def status(root: Path) -> ServerInfo | None:
    """The server this project started, if it is still running."""
    info_path, log = _files(root)
    try:
        data = json.loads(info_path.read_text())
        info = ServerInfo(int(data["pid"]), int(data["port"]), log, data.get("start"))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return info if _alive(info) else None


def _alive(info: ServerInfo) -> bool:
    """The recorded daemon still runs: its pid is alive AND is still the process `up` started."""
    return is_recorded(info.pid, info.start)


def _server_command(root: Path, port: int, restore: Path | None) -> list[str]:
    if importlib.util.find_spec("moto") is None:
        raise BgtoolError(
            "moto was not found: the embedded AWS needs the 'local' extra",
            hint="pip install 'bgtool[local]'  (make demo does this)",
        )
    command = [sys.executable, "-m", "bgtool.embedded.daemon", "--root", str(root), "--port", str(port)]
    return [*command, "--restore", str(restore)] if restore else command


def up(root: Path, port: int = DEFAULT_PORT, wait_seconds: float = 30, *,
       install: bool = False, restore: Path | None = None) -> tuple[ServerInfo, bool]:
    """Start the embedded AWS and its data plane (or find them running); returns (info, started_now).

    INSTALL lets a missing HAProxy be installed with apt-get (what `bgtool local up` does); RESTORE
    is moto's backends from an archive of `bgtool local save` (bgtool.embedded.snapshot).
    """
    running = status(root)
    if running and running.port == port:
        if not _wait_until_answers(port, wait_seconds):
            raise BgtoolError(f"the embedded AWS (pid {running.pid}) runs but does not answer on port {port}; "
                              f"see {running.log}", hint="Restart it: 'bgtool local down', then 'bgtool local up'.")
        return running, False
    if running:
        raise BgtoolError(
            f"an embedded AWS from this project already runs on port {running.port} (pid {running.pid})",
            hint="Run 'bgtool local down' first to move it to another port.",
        )
    if answers(port):
        raise BgtoolError(
            f"port {port} already answers as a moto server that this project did not start",
            hint="Stop that server, or choose another port with --port.",
        )
    command = _server_command(root, port, restore)
    ensure_haproxy(install)
    _clean_leftovers(root)
    info_path, log = _files(root)
    state = dataplane_files(root).state
    state.unlink(missing_ok=True)
    with log.open("ab") as sink:
        proc = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            cwd=state_dir(root),  # not the project root: a `bgtool/` directory there would shadow the package
        )
    recorded = identity(proc.pid)  # our child, not reaped yet: its pid cannot be reused meanwhile
    info = ServerInfo(proc.pid, port, log, recorded["start"])
    info_path.write_text(json.dumps({**recorded, "port": port}))
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        doc = read_state(root) or {}
        if doc.get("pid") == proc.pid and doc.get("status") == "failed":
            _reap(proc.pid)
            down(root)
            raise BgtoolError(f"the embedded AWS did not start: {doc.get('error')}; see {log}",
                              hint="Nothing was left running. Fix the cause, then run 'bgtool local up' again.")
        if doc.get("pid") == proc.pid and doc.get("status") == "ready" and answers(port):
            return info, True
        if proc.poll() is not None:
            down(root)
            raise BgtoolError(f"the embedded AWS exited at start (code {proc.returncode}); see {log}")
        time.sleep(0.1)
    down(root)
    raise BgtoolError(f"the embedded AWS did not answer on port {port} within {wait_seconds:.0f} s; see {log}",
                      hint="It was stopped again; nothing was left running.")


def _wait_until_answers(port: int, wait_seconds: float) -> bool:
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if answers(port, timeout=5):
            return True
        time.sleep(0.5)
    return False


def down(root: Path, wait_seconds: float = 10) -> ServerInfo | None:
    """Stop only the pid this project recorded; returns what was stopped."""
    info_path, _ = _files(root)
    info = status(root)
    if info is None:
        info_path.unlink(missing_ok=True)
        _clean_leftovers(root)
        return None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(info.pid, signal.SIGTERM)
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline and _alive(info):
        _reap(info.pid)
        time.sleep(0.1)
    if _alive(info):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(info.pid, signal.SIGKILL)
        _reap(info.pid)
    info_path.unlink(missing_ok=True)
    _clean_leftovers(root)
    dataplane_files(root).state.unlink(missing_ok=True)
    return info


def _clean_leftovers(root: Path) -> list[int]:
    """Stop what a daemon that died without cleaning up left behind: HAProxy and target processes."""
    files = dataplane_files(root)
    stopped = kill_leftovers(files.targets) + kill_leftovers(workers_dir(files))
    recorded = files.dir / "haproxy.proc.json"
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        master = json.loads(recorded.read_text())
        if is_recorded(int(master["pid"]), master.get("start")):
            os.kill(int(master["pid"]), signal.SIGKILL)
            stopped.append(int(master["pid"]))
    recorded.unlink(missing_ok=True)
    (files.dir / "haproxy.pid").unlink(missing_ok=True)
    for sock in (files.admin_socket, files.sockets / "haproxy-master.sock"):
        sock.unlink(missing_ok=True)
    return stopped


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)

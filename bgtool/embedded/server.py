"""The embedded AWS: a moto server on loopback, started and stopped by bgtool.

The pid, port and log live under `.bgtool/`, so `down` stops exactly the server that `up`
started and never some other process on the port.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bgtool.config.project import state_dir
from bgtool.errors import BgtoolError

DEFAULT_PORT = 5000


@dataclass(frozen=True)
class ServerInfo:
    pid: int
    port: int
    log: Path

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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def status(root: Path) -> ServerInfo | None:
    """The server this project started, if it is still running."""
    info_path, log = _files(root)
    try:
        data = json.loads(info_path.read_text())
        info = ServerInfo(int(data["pid"]), int(data["port"]), log)
    except (OSError, ValueError, KeyError):
        return None
    return info if _alive(info.pid) else None


def _server_command(port: int) -> list[str]:
    exe = shutil.which("moto_server") or str(Path(sys.executable).with_name("moto_server"))
    if not Path(exe).exists():
        raise BgtoolError(
            "moto_server was not found: the embedded AWS needs the 'local' extra",
            hint="pip install 'bgtool[local]'  (make demo does this)",
        )
    return [exe, "-H", "127.0.0.1", "-p", str(port)]


def up(root: Path, port: int = DEFAULT_PORT, wait_seconds: float = 30) -> tuple[ServerInfo, bool]:
    """Start the server (or find it running); returns (info, started_now)."""
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
    info_path, log = _files(root)
    with log.open("ab") as sink:
        proc = subprocess.Popen(
            _server_command(port), stdout=sink, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
    info = ServerInfo(proc.pid, port, log)
    info_path.write_text(json.dumps({"pid": proc.pid, "port": port}))
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if answers(port):
            return info, True
        if proc.poll() is not None:
            info_path.unlink(missing_ok=True)
            raise BgtoolError(f"the embedded AWS exited at start (code {proc.returncode}); see {log}")
        time.sleep(0.2)
    down(root)
    raise BgtoolError(f"the embedded AWS did not answer on port {port} within {wait_seconds:.0f} s; see {log}")


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
        return None
    os.killpg(info.pid, signal.SIGTERM)
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline and _alive(info.pid):
        _reap(info.pid)
        time.sleep(0.1)
    if _alive(info.pid):
        os.killpg(info.pid, signal.SIGKILL)
    info_path.unlink(missing_ok=True)
    return info


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)

"""HAProxy for the local data plane: find or install it, run it in master-worker mode, talk to it.

The runtime API is HAProxy's own line protocol on a unix socket (a command line in, text out,
connection closed): a few lines of socket code, where the Python wrappers on PyPI are unmaintained
and speak older HAProxy versions.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bgtool.embedded.procs import identity
from bgtool.errors import BgtoolError

PACKAGE = "haproxy"


def find_haproxy() -> str | None:
    return shutil.which("haproxy") or next(
        (p for p in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy", "/opt/homebrew/bin/haproxy")
         if Path(p).is_file()), None)


def ensure_haproxy(install: bool) -> str:
    """The haproxy binary; installed with apt-get on a Debian-like machine when INSTALL and root."""
    found = find_haproxy()
    if found:
        return found
    apt = shutil.which("apt-get")
    if install and apt and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        done = subprocess.run([apt, "install", "-y", "-qq", PACKAGE], env=env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, check=False)
        if done.returncode != 0:
            done = subprocess.run(f"{apt} update -qq && {apt} install -y -qq {PACKAGE}", shell=True, env=env,
                                  capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
        found = find_haproxy()
        if found:
            return found
        tail = " | ".join(done.stderr.strip().splitlines()[-2:])
        raise BgtoolError(f"installing the '{PACKAGE}' package with apt-get failed: {tail}",
                          hint=f"Install it yourself ('apt-get install {PACKAGE}'), then run 'bgtool local up' again.")
    how = "apt-get install haproxy" if apt else "brew install haproxy (or your package manager's 'haproxy')"
    raise BgtoolError(
        "HAProxy is not installed: the embedded AWS serves its load balancers' traffic through it",
        hint=f"Install the '{PACKAGE}' package ({how}), then run 'bgtool local up' again.",
    )


class RuntimeApi:
    """HAProxy's admin socket: one connection per batch of `;`-separated commands."""

    def __init__(self, path: Path, timeout: float = 5.0) -> None:
        self.path = path
        self.timeout = timeout

    def run(self, *commands: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(self.timeout)
            sock.connect(str(self.path))
            sock.sendall(("; ".join(commands) + "\n").encode())
            sock.shutdown(socket.SHUT_WR)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode("utf-8", "replace")

    def answers(self) -> bool:
        try:
            return "Pid:" in self.run("show info")
        except OSError:
            return False

    def worker_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            for line in self.run("show info").splitlines():
                if line.startswith("Pid:"):
                    return int(line.split(":", 1)[1])
        return None


@dataclass(frozen=True)
class ServerStat:
    status: str
    check_status: str
    check_code: str
    check_desc: str
    scur: int


def parse_stat(text: str) -> dict[str, ServerStat]:
    """`show stat` CSV -> "backend/server" -> what the server's checks say (servers only)."""
    text = text.lstrip("# ")
    out: dict[str, ServerStat] = {}
    for row in csv.DictReader(io.StringIO(text)):
        name = row.get("svname", "")
        if name in ("FRONTEND", "BACKEND", "") or not row.get("pxname"):
            continue
        out[f"{row['pxname']}/{name}"] = ServerStat(
            status=row.get("status", ""), check_status=row.get("check_status", ""),
            check_code=row.get("check_code", ""), check_desc=row.get("check_desc", "") or row.get("last_chk", ""),
            scur=int(row.get("scur") or 0),
        )
    return out


class HaproxyProcess:
    """One HAProxy master (master-worker mode) owned by the daemon, with its files under DIR."""

    def __init__(self, binary: str, directory: Path, admin_socket: Path) -> None:
        self.binary = binary
        self.dir = directory
        self.config = directory / "haproxy.cfg"
        self.pid_file = directory / "haproxy.pid"
        self.identity_file = directory / "haproxy.proc.json"
        """The master's pid and start time (bgtool.embedded.procs), for cleaning up after a crash."""
        self.log = directory / "haproxy.log"
        self.master_socket = admin_socket.parent / "haproxy-master.sock"
        self.state_file = directory / "haproxy.state"
        self.api = RuntimeApi(admin_socket)
        self.proc: subprocess.Popen[bytes] | None = None

    def check(self, text: str) -> None:
        """Validate a configuration before it replaces the running one."""
        candidate = self.dir / "haproxy.cfg.new"
        candidate.write_text(text)
        done = subprocess.run([self.binary, "-c", "-f", str(candidate)], capture_output=True, text=True,
                              check=False, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise BgtoolError(f"generated HAProxy configuration is invalid: {done.stderr.strip()[-500:]}")

    def start(self, text: str, wait_seconds: float = 10) -> None:
        self.check(text)
        (self.dir / "haproxy.cfg.new").replace(self.config)
        with self.log.open("ab") as sink:
            self.proc = subprocess.Popen(
                [self.binary, "-W", "-S", f"{self.master_socket},mode,600", "-f", str(self.config),
                 "-p", str(self.pid_file)],
                stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        self.identity_file.write_text(json.dumps(identity(self.proc.pid)))
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            if self.api.answers():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise BgtoolError(f"HAProxy did not start: {self.last_log_lines()}; see {self.log}")

    def reload(self, text: str, wait_seconds: float = 10) -> bool:
        """Seamless reload: the new worker takes over the listening sockets; False when it failed."""
        self.check(text)
        old = self.api.worker_pid()
        with contextlib.suppress(OSError):
            self.state_file.write_text(self.api.run("show servers state"))
        (self.dir / "haproxy.cfg.new").replace(self.config)
        assert self.proc is not None
        self.proc.send_signal(signal.SIGUSR2)
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            pid = self.api.worker_pid()
            if pid is not None and pid != old:
                return True
            time.sleep(0.05)
        return False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, wait_seconds: float = 5) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(wait_seconds)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(wait_seconds)
        self.pid_file.unlink(missing_ok=True)
        self.identity_file.unlink(missing_ok=True)

    def last_log_lines(self, count: int = 3) -> str:
        with contextlib.suppress(OSError):
            lines = [ln for ln in self.log.read_text(errors="replace").splitlines() if ln.strip()]
            return " | ".join(lines[-count:])
        return "no log"

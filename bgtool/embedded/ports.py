"""Local ports for listeners: derived from the listener port, free on this machine, stable.

A listener on port 80 is served on 10080 when that is free, so people can guess the URL; when it
is taken (another project's data plane, any other program), the next candidates come from a
sequence that depends on the project, so two projects started at once rarely race for the same
port. Allocations are kept in a file, so a listener keeps its local port across restarts of the
daemon and reloads of HAProxy. HAProxy binds with SO_REUSEPORT (its seamless reloads rely on it), so
the kernel would let two data planes started at once bind one port and split its connections between
them; each data plane therefore claims the ports it serves, machine-wide (`PortClaims`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Generic, TypeVar

K = TypeVar("K", int, str)

OFFSET = 10000
LOW, HIGH = 10000, 60000


def is_free(port: int) -> bool:
    """Free to listen on, as a server binds (SO_REUSEADDR: a closed connection in TIME_WAIT does not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def candidates(listener_port: int, seed: str) -> Iterator[int]:
    """The derived port first, then a project-specific walk through the unprivileged range."""
    derived = listener_port + OFFSET
    if LOW <= derived < HIGH:
        yield derived
    span = HIGH - LOW
    start = int(hashlib.sha1(f"{seed}:{listener_port}".encode()).hexdigest(), 16) % span
    for step in range(span):
        yield LOW + (start + step * 7919) % span


def allocate(
    wanted: list[tuple[str, int]],
    known: Mapping[str, int],
    seed: str,
    free: Callable[[int], bool] = is_free,
    held: frozenset[int] = frozenset(),
) -> dict[str, int]:
    """Local ports for WANTED (listener key, listener port); KNOWN allocations are kept when usable.

    HELD are ports this data plane already listens on (their check would fail: they are ours).
    """
    out: dict[str, int] = {}
    taken: set[int] = set()
    for key, _ in wanted:
        port = known.get(key)
        if port is not None and port not in taken and (port in held or free(port)):
            out[key] = port
            taken.add(port)
    for key, listener_port in wanted:
        if key in out:
            continue
        reserved = set(known.values()) | taken
        port = next(p for p in candidates(listener_port, seed) if p not in reserved and free(p))
        out[key] = port
        taken.add(port)
    return out


class PortBook:
    """The allocation file: listener key -> local port, kept for listeners that come back later."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, int]:
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(self.path.read_text())
            return {str(k): int(v) for k, v in data.items()}
        return {}

    def save(self, ports: Mapping[str, int]) -> None:
        merged = {**self.load(), **ports}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(merged, indent=1, sort_keys=True))
        tmp.replace(self.path)


class MachineClaims(Generic[K]):
    """Things this data plane uses, each claimed machine-wide for as long as it holds it: an exclusive flock
    on one file per thing in a directory every data plane on the machine shares, released with the
    file's descriptor (so a data plane that dies releases everything it held)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.held: dict[K, int] = {}

    def claim(self, key: K) -> bool:
        """True when this data plane holds KEY now (it already did, or nobody else does)."""
        if key in self.held:
            return True
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.dir / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self.held[key] = fd
        return True

    def release(self, key: K) -> None:
        fd = self.held.pop(key, None)
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)


class PortClaims(MachineClaims[int]):
    """Local ports this data plane serves, claimed for as long as the daemon runs. A port another data
    plane claimed is not free here, whatever a bind test says (HAProxy's SO_REUSEPORT would let both bind)."""

    def __init__(self, directory: Path | None = None) -> None:
        super().__init__(directory or Path(tempfile.gettempdir()) / "bgtool-ports")

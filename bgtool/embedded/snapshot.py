"""`bgtool local save FILE` and `bgtool local restore FILE`: an applied embedded AWS, back in seconds.

Applying an environment on the embedded AWS takes minutes (creating a load balancer alone about
one); a saved one comes back in seconds. An archive holds moto's backends (the state bucket, the
lock table, every resource Terraform made) and the project's own files under .bgtool/ (local
state, history, locks, the local database). The data plane is not in it: after a restore it
follows the resources as it follows any, one process per instance, each listener on a free local
port, so two projects restored from one archive run side by side.

An archive holds pickled Python objects, so restoring one runs what it says: restore only archives
you saved. It names the moto version that wrote it, and another version refuses it (moto's objects
change between releases; the `local` extra pins moto for that reason).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bgtool.config.project import state_dir
from bgtool.embedded import server
from bgtool.embedded.dataplane import files, read_state, saved_files
from bgtool.errors import BgtoolError

FORMAT = 1
META = "bgtool-local-save.json"
BACKENDS = "backends.pickle"
FILES = "files"
RUNTIME = frozenset({"moto.json", "moto.log", "dataplane", "logs", "terraform.rc"})
"""What under .bgtool/ belongs to the running daemon or is written again by each command."""


@dataclass(frozen=True)
class Saved:
    path: Path
    bytes: int
    files: int


@dataclass(frozen=True)
class Restored:
    info: server.ServerInfo
    targets: int
    listeners: int


def save(root: Path, dest: Path, wait_seconds: float = 120) -> Saved:
    """Ask the running daemon for moto's backends and pack them with the project's files into DEST."""
    info = server.status(root)
    if info is None:
        raise BgtoolError("the embedded AWS is not running: there is nothing to save",
                          hint="Start it with 'bgtool local up' and apply an environment first.")
    backends, result = saved_files(files(root))
    backends.unlink(missing_ok=True)
    result.unlink(missing_ok=True)
    os.kill(info.pid, signal.SIGUSR1)
    answer = _wait_for(root, result, info, wait_seconds)
    if not answer.get("ok"):
        raise BgtoolError(f"the embedded AWS could not save its data: {answer.get('error')}; nothing was written to "
                          f"{dest}", hint=f"See {info.log}.")
    try:
        return _pack(root, dest, backends)
    finally:
        backends.unlink(missing_ok=True)
        result.unlink(missing_ok=True)


def _wait_for(root: Path, result: Path, info: server.ServerInfo, wait_seconds: float) -> dict[str, Any]:
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            doc = json.loads(result.read_text())
            if doc.get("pid") == info.pid:
                return dict(doc)
        if server.status(root) is None:
            raise BgtoolError(f"the embedded AWS (pid {info.pid}) stopped while saving; see {info.log}")
        time.sleep(0.1)
    raise BgtoolError(f"the embedded AWS (pid {info.pid}) did not save within {wait_seconds:.0f} s; nothing was "
                      "written", hint=f"See {info.log}; 'bgtool local status' says whether it still answers.")


def _durable(root: Path) -> Iterator[Path]:
    base = state_dir(root)
    for path in sorted(base.rglob("*")):
        relative = path.relative_to(base)
        if relative.parts[0] not in RUNTIME and path.is_file() and not path.is_symlink():
            yield path


def _pack(root: Path, dest: Path, backends: Path) -> Saved:
    base = state_dir(root)
    meta = {"format": FORMAT, "moto": version("moto"), "bgtool": version("bgtool"),
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    count = 0
    with tarfile.open(tmp, "w:gz", compresslevel=1) as tar:
        raw = json.dumps(meta, indent=1).encode()
        entry = tarfile.TarInfo(META)
        entry.size, entry.mtime = len(raw), int(time.time())
        tar.addfile(entry, io.BytesIO(raw))
        tar.add(backends, BACKENDS)
        for path in _durable(root):
            tar.add(path, f"{FILES}/{path.relative_to(base).as_posix()}")
            count += 1
    tmp.replace(dest)
    return Saved(dest, dest.stat().st_size, count)


def restore(root: Path, archive: Path, port: int, wait_seconds: float = 120) -> Restored:
    """Start the embedded AWS with ARCHIVE's data and wait until its load balancers serve."""
    running = server.status(root)
    if running is not None:
        raise BgtoolError(f"the embedded AWS of this project runs (pid {running.pid}); a restore would replace "
                          "everything it holds", hint="Stop it first with 'bgtool local down', then restore.")
    staged = _unpack(root, archive)
    try:
        info, _ = server.up(root, port, restore=staged)
    finally:
        staged.unlink(missing_ok=True)
    return _wait_serving(root, info, wait_seconds)


def _unpack(root: Path, archive: Path) -> Path:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            return _unpack_from(root, archive, tar)
    except (OSError, tarfile.TarError) as exc:
        raise BgtoolError(f"{archive} is not an archive 'bgtool local save' wrote: {exc}") from exc


def _unpack_from(root: Path, archive: Path, tar: tarfile.TarFile) -> Path:
    meta = _meta(archive, tar)
    if meta.get("format") != FORMAT or meta.get("moto") != version("moto"):
        raise BgtoolError(
            f"{archive} was saved by moto {meta.get('moto')} (format {meta.get('format')}); this machine runs moto "
            f"{version('moto')} (format {FORMAT}), whose objects may differ", hint="Apply the environment again "
            "and save a new archive with 'bgtool local save'. Nothing was changed.")
    members = tar.getmembers()
    if BACKENDS not in {m.name for m in members}:
        raise BgtoolError(f"{archive} holds no {BACKENDS}: it is not an archive 'bgtool local save' wrote")
    wanted = {}
    for member in members:
        if member.name.startswith(f"{FILES}/") and member.isfile():
            relative = Path(member.name).relative_to(FILES)
            if relative.parts[0] in RUNTIME or ".." in relative.parts or relative.is_absolute():
                raise BgtoolError(f"{archive} holds {member.name!r}, which a restore never writes; nothing was changed")
            wanted[member.name] = relative
    base = state_dir(root)
    for path in list(_durable(root)):  # a restore replaces the project's data, it does not merge
        path.unlink()
    staged = files(root).dir / "restore.pickle"
    for member in members:
        if member.name == BACKENDS:
            _extract(tar, member, staged)
        elif member.name in wanted:
            _extract(tar, member, base / wanted[member.name])
    return staged


def _meta(archive: Path, tar: tarfile.TarFile) -> dict[str, Any]:
    try:
        source = tar.extractfile(META)
        doc = json.loads(source.read()) if source else None
    except (KeyError, ValueError, tarfile.TarError) as exc:
        raise BgtoolError(f"{archive} has no readable {META}: it is not an archive 'bgtool local save' wrote") from exc
    if not isinstance(doc, dict):
        raise BgtoolError(f"{archive}: {META} is not a JSON object")
    return doc


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path) -> None:
    source = tar.extractfile(member)
    if source is None:
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    with source, dest.open("wb") as sink:
        shutil.copyfileobj(source, sink)


def _wait_serving(root: Path, info: server.ServerInfo, wait_seconds: float) -> Restored:
    """Every target process started and healthy, every listener served: what an apply leaves behind."""
    deadline = time.monotonic() + wait_seconds
    pending = "the data plane has not published its state"
    while time.monotonic() < deadline:
        doc = read_state(root) or {}
        if doc.get("pid") == info.pid:
            pending = _not_serving(doc)
            if not pending:
                targets = doc.get("targets", [])
                listeners = sum(len(lb.get("listeners", [])) for lb in doc.get("load_balancers", []))
                return Restored(info, len(targets), listeners)
        time.sleep(0.2)
    raise BgtoolError(f"the embedded AWS runs with the restored data (pid {info.pid}), but after {wait_seconds:.0f} s "
                      f"{pending}", hint="'bgtool local status' shows the targets and listeners; "
                      "'bgtool local down' stops it.")


def _not_serving(doc: dict[str, Any]) -> str:
    for target in doc.get("targets", []):
        if not target.get("pid"):
            return f"target {target.get('instance_id')} has no process"
        unhealthy = sorted(group for group, state in (target.get("health") or {}).items() if state != "healthy")
        if unhealthy:
            return f"target {target.get('instance_id')} is not healthy in {', '.join(unhealthy)}"
    for service in doc.get("ecs_services", []):
        if service.get("running", 0) < service.get("desired", 0):
            return f"ECS service {service.get('name')} runs {service.get('running')}/{service.get('desired')} tasks"
    for lb in doc.get("load_balancers", []):
        for listener in lb.get("listeners", []):
            if not listener.get("url"):
                return f"listener {listener.get('port')} of {lb.get('name')} is not served"
    return ""

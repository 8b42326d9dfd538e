"""`local up`/`down` signal only the processes they started, and keep HAProxy's socket folder private.

A pid file that outlived its process (a crash, a reboot) names whatever process got that number
since: stand-ins here are real `sleep` processes, each in its own session as the daemon's are, and
each must survive a cleanup that was not meant for it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bgtool.config.project import state_dir
from bgtool.embedded import dataplane, procs, server
from bgtool.embedded.targets import kill_leftovers
from bgtool.errors import BgtoolError

needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to tell processes apart")


@pytest.fixture
def stranger() -> Iterator[subprocess.Popen[bytes]]:
    """A process bgtool did not start, holding a pid some file records."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    yield proc
    proc.kill()
    proc.wait()


def reused(pid: int) -> dict[str, object]:
    """What a pid file says when PID was recorded for an earlier process that had that number."""
    start = procs.start_time(pid)
    assert start is not None
    return {"pid": pid, "start": str(int(start) - 1)}


@needs_proc
def test_the_start_time_tells_a_process_from_a_later_one_with_its_pid(stranger: subprocess.Popen[bytes]) -> None:
    assert procs.is_recorded(stranger.pid, procs.identity(stranger.pid)["start"])
    assert not procs.is_recorded(stranger.pid, reused(stranger.pid)["start"])
    assert not procs.is_recorded(stranger.pid, None)  # a record that cannot be checked is not a match
    assert not procs.is_recorded(0, None) and not procs.is_recorded(-1, None)


@needs_proc
def test_down_leaves_a_process_that_got_the_daemons_pid_alone(tmp_path: Path,
                                                             stranger: subprocess.Popen[bytes]) -> None:
    info_path = state_dir(tmp_path) / "moto.json"
    info_path.write_text(json.dumps({**reused(stranger.pid), "port": 5999}))
    assert server.status(tmp_path) is None
    assert server.down(tmp_path, wait_seconds=0) is None
    assert stranger.poll() is None
    assert not info_path.exists()


@needs_proc
def test_down_stops_the_daemon_it_recorded(tmp_path: Path, stranger: subprocess.Popen[bytes]) -> None:
    (state_dir(tmp_path) / "moto.json").write_text(json.dumps({**procs.identity(stranger.pid), "port": 5999}))
    assert server.status(tmp_path) is not None
    assert server.down(tmp_path, wait_seconds=5) is not None
    assert stranger.wait(5) is not None


@needs_proc
def test_leftover_targets_and_haproxy_are_only_stopped_while_they_are_the_recorded_processes(
        tmp_path: Path, stranger: subprocess.Popen[bytes]) -> None:
    targets = tmp_path / "targets"
    targets.mkdir()
    (targets / "i-1.json").write_text(json.dumps({**reused(stranger.pid), "port": 1, "instance_id": "i-1"}))
    (targets / "i-2.json").write_text(json.dumps({"pid": stranger.pid, "port": 1, "instance_id": "i-2"}))
    assert kill_leftovers(targets) == []
    assert stranger.poll() is None and not list(targets.glob("*.json"))

    files = dataplane.files(tmp_path)
    (files.dir / "haproxy.pid").write_text(f"{stranger.pid}\n")
    (files.dir / "haproxy.proc.json").write_text(json.dumps(reused(stranger.pid)))
    server.down(tmp_path, wait_seconds=0)
    assert stranger.poll() is None

    (targets / "i-3.json").write_text(json.dumps({**procs.identity(stranger.pid), "port": 1, "instance_id": "i-3"}))
    assert kill_leftovers(targets) == [stranger.pid]
    assert stranger.wait(5) is not None


@pytest.fixture
def deep_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project path too long for a unix socket: the sockets go to a folder under the temp dir."""
    monkeypatch.setattr(dataplane.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    root = tmp_path / ("deep" * 30)
    root.mkdir()
    return root


def test_the_socket_folder_is_created_private(deep_root: Path, tmp_path: Path) -> None:
    sockets = dataplane.files(deep_root).sockets
    assert sockets.parent == tmp_path / "tmp"
    assert (sockets.stat().st_mode & 0o777) == 0o700 and sockets.stat().st_uid == os.getuid()
    assert dataplane.files(deep_root).sockets == sockets  # and taken again as it is


def _expected_sockets(root: Path) -> Path:
    files_dir = state_dir(root) / "dataplane"
    files_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha1(str(files_dir.resolve()).encode()).hexdigest()[:12]
    return Path(dataplane.tempfile.gettempdir()) / f"bgtool-{digest}"


def test_a_socket_folder_open_to_others_is_refused(deep_root: Path) -> None:
    sockets = _expected_sockets(deep_root)
    sockets.mkdir(mode=0o755)
    sockets.chmod(0o755)
    with pytest.raises(BgtoolError, match=r"open to group or others \(mode 755, must be 700\)"):
        dataplane.files(deep_root)


def test_a_socket_folder_that_is_a_link_is_refused(deep_root: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    _expected_sockets(deep_root).symlink_to(elsewhere)
    with pytest.raises(BgtoolError, match="is not a folder"):
        dataplane.files(deep_root)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a folder to another user needs root")
def test_a_socket_folder_of_another_user_is_refused(deep_root: Path) -> None:
    sockets = _expected_sockets(deep_root)
    sockets.mkdir(mode=0o700)
    os.chown(sockets, 4242, -1)
    with pytest.raises(BgtoolError, match=r"belongs to another user \(uid 4242"):
        dataplane.files(deep_root)

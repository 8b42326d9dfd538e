"""Which process a recorded pid stands for, and the private folder of the data plane's sockets.

A pid read from a file may name a different process by now: the one recorded died (a crash, a
reboot) and the kernel gave its number to another. Every pid bgtool records is therefore stored
with the process's start time (/proc/PID/stat), and a signal is only sent while both still match.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Any

from bgtool.errors import BgtoolError

_PROC = Path("/proc")


def start_time(pid: int) -> str | None:
    """When PID started, in clock ticks since boot (field 22 of /proc/PID/stat); None when there is no
    such process or no /proc (then nothing can be checked beyond the pid)."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except (OSError, ValueError):
        return None
    fields = text[text.rindex(")") + 2:].split()  # the command name may hold spaces and parentheses
    return fields[19] if len(fields) > 19 else None


def identity(pid: int) -> dict[str, Any]:
    """What a pid file records: the pid and the start time that tells it from a later process."""
    return {"pid": pid, "start": start_time(pid)}


def exists(pid: int) -> bool:
    """Some process has PID (0 and negative numbers name groups, never one process)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_recorded(pid: int, start: object) -> bool:
    """PID runs and is the process recorded with START (not a later one that got its number).

    A record without a start time (written before they were kept) is never taken for a match where
    /proc can tell; without /proc the pid alone decides, as nothing more can be known.
    """
    if not exists(pid):
        return False
    if not (_PROC / "self" / "stat").exists():
        return True
    now = start_time(pid)
    return now is not None and now == start


def private_dir(path: Path) -> Path:
    """PATH as a folder only this user can enter, created with mode 0700; refused when it already
    exists as anything else (a link, another user's, open to group or others): a socket in it is
    HAProxy's admin socket, which changes where production traffic goes."""
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    info = os.lstat(path)
    problem = None
    if not stat.S_ISDIR(info.st_mode):
        problem = "is not a folder (a link or a file)"
    elif info.st_uid != os.getuid():
        problem = f"belongs to another user (uid {info.st_uid}, not {os.getuid()})"
    elif info.st_mode & 0o077:
        problem = f"is open to group or others (mode {stat.S_IMODE(info.st_mode):o}, must be 700)"
    if problem:
        raise BgtoolError(f"{path}, the folder of the local data plane's HAProxy admin socket, {problem}; "
                          "nothing was started or stopped",
                          hint=f"Check who made it; if it is not in use, remove it ('rm -r {path}') and run the "
                          "command again.")
    return path

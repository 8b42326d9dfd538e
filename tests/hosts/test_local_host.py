"""Host checks for the `local` environment, run on this machine (`connection: local`).

On the embedded AWS each instance of a color is a process on this machine, started by the local
data plane (`bgtool local up`). The gate passes the color's processes in BGTOOL_TARGET_PORTS and
BGTOOL_TARGET_PIDS (one entry per instance), and what they must serve in BGTOOL_VERSION and
BGTOOL_HEALTH_PATH: each process must run, listen on its port and answer with the color's version,
as the same checks would on an EC2 instance.
"""

from __future__ import annotations

import os
import shlex

import pytest

COLOR = os.environ.get("BGTOOL_COLOR", "?")
VERSION = os.environ.get("BGTOOL_VERSION", "")
HEALTH_PATH = os.environ.get("BGTOOL_HEALTH_PATH", "/health")
PORTS = [p for p in os.environ.get("BGTOOL_TARGET_PORTS", "").split(",") if p]
PIDS = os.environ.get("BGTOOL_TARGET_PIDS", "").split(",")
TARGETS = list(zip(PORTS, PIDS + [""] * (len(PORTS) - len(PIDS)), strict=False))
IDS = [f"port {port}" for port in PORTS] or ["none"]

FETCH = ("import sys, urllib.request, urllib.error\n"
         "try:\n r = urllib.request.urlopen(sys.argv[1], timeout=5); print(r.status); print(r.read().decode())\n"
         "except urllib.error.HTTPError as e:\n print(e.code)")


def get(host, url: str) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    """GET on the host itself (python3 is there wherever bgtool runs), as status and body."""
    out = host.run(f"python3 -c {shlex.quote(FETCH)} {shlex.quote(url)}")
    if out.rc != 0 or not out.stdout.strip():
        return 0, out.stderr.strip()[-200:]
    status, _, body = out.stdout.partition("\n")
    return int(status), body.strip()


def test_the_color_has_processes() -> None:
    assert PORTS, f"no process serves {COLOR} on the local data plane (is 'bgtool local up' running?)"


@pytest.mark.parametrize(("port", "pid"), TARGETS or [("", "")], ids=IDS)
def test_process_runs(host, port: str, pid: str) -> None:  # type: ignore[no-untyped-def]
    if not port:
        pytest.skip("no process to check")
    assert pid, f"the {COLOR} process for port {port} has exited (see 'bgtool local status')"
    assert host.run(f"kill -0 {int(pid)}").rc == 0, f"process {pid} ({COLOR}, port {port}) is not running"


@pytest.mark.parametrize(("port", "pid"), TARGETS or [("", "")], ids=IDS)
def test_listens_on_its_port(host, port: str, pid: str) -> None:  # type: ignore[no-untyped-def]
    if not port:
        pytest.skip("no process to check")
    assert host.socket(f"tcp://127.0.0.1:{int(port)}").is_listening, f"nothing listens on 127.0.0.1:{port}"


@pytest.mark.parametrize(("port", "pid"), TARGETS or [("", "")], ids=IDS)
def test_answers_health_and_version(host, port: str, pid: str) -> None:  # type: ignore[no-untyped-def]
    if not port:
        pytest.skip("no process to check")
    status, body = get(host, f"http://127.0.0.1:{int(port)}{HEALTH_PATH}")
    assert status == 200, f"{HEALTH_PATH} on port {port} answered {status or 'nothing'} {body!r}"
    status, body = get(host, f"http://127.0.0.1:{int(port)}/version")
    assert (status, body) == (200, VERSION), f"/version on port {port}: {status} {body!r}, expected {VERSION!r}"

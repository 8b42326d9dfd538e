"""The sample application as a real process on loopback, with real HTTP requests and real fault files."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from bgtool.embedded.faults import Fault, clear_fault, fault_file, write_fault

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class App:
    def __init__(self, proc: subprocess.Popen[str], port: int, state: Path) -> None:
        self.proc, self.port, self.state = proc, port, state
        self.url = f"http://127.0.0.1:{port}"

    def get(self, path: str, timeout: float = 5) -> requests.Response:
        return requests.get(self.url + path, timeout=timeout)

    def fault(self, **values: object) -> None:
        write_fault(self.state, "local", "green", Fault(**values))  # type: ignore[arg-type]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., App]]:
    started: list[subprocess.Popen[str]] = []

    def _start(*extra: str, fault_path: bool = True) -> App:
        port = free_port()
        args = [sys.executable, "-m", "bgtool.embedded.sampleapp", "--port", str(port), "--version", "2.1.0",
                "--color", "green", "--health-path", "/healthz?full=1", *extra]
        if fault_path:
            args += ["--fault-file", str(fault_file(tmp_path, "local", "green"))]
        proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        started.append(proc)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return App(proc, port, tmp_path)
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"sample app did not listen: {proc.communicate(timeout=5)}")

    yield _start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=5)


def test_serves_the_contract_of_the_ec2_sample_app(start: Callable[..., App]) -> None:
    app = start()
    home = app.get("/")
    assert home.status_code == 200 and "green 2.1.0" in home.text
    assert home.headers["Content-Type"].startswith("text/html")
    assert (app.get("/healthz").status_code, app.get("/healthz").text) == (200, "ok\n")
    assert app.get("/healthz?full=1").status_code == 200  # the query string of the health path does not matter
    version = app.get("/version")
    assert (version.status_code, version.text.strip()) == (200, "2.1.0")
    assert version.headers["X-Bgtool-Color"] == "green"
    assert app.get("/nope").status_code == 404
    assert requests.head(app.url + "/version", timeout=5).status_code == 200


def test_errors_fault_answers_that_share_with_500_but_spares_the_health_path(start: Callable[..., App]) -> None:
    app = start()
    app.fault(errors_pct=30)
    codes = [app.get("/version").status_code for _ in range(30)]
    assert codes.count(500) == 9 and codes.count(200) == 21
    assert all(app.get("/healthz").status_code == 200 for _ in range(10))
    app.fault(errors_pct=100)
    assert {app.get(p).status_code for p in ("/", "/version", "/")} == {500}
    clear_fault(app.state, "local", "green")
    assert app.get("/version").status_code == 200


def test_latency_fault_delays_answers_but_not_health_checks(start: Callable[..., App]) -> None:
    app = start()
    app.fault(latency_seconds=1.5)
    began = time.monotonic()
    assert app.get("/version").status_code == 200
    assert time.monotonic() - began >= 1.5
    began = time.monotonic()
    assert app.get("/healthz").status_code == 200
    assert time.monotonic() - began < 1.5  # not delayed by the fault (any delay here is the machine's)


def test_down_fault_closes_connections_unanswered_until_cleared(start: Callable[..., App]) -> None:
    app = start()
    app.fault(down=True)
    for path in ("/healthz", "/version"):
        with pytest.raises(requests.ConnectionError):
            app.get(path)
    app.fault()  # an inactive fault
    assert app.get("/healthz").status_code == 200


def test_a_malformed_fault_file_is_logged_and_ignored(start: Callable[..., App]) -> None:
    app = start()
    path = fault_file(app.state, "local", "green")
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert app.get("/version").status_code == 200
    app.proc.send_signal(signal.SIGTERM)
    out, _ = app.proc.communicate(timeout=5)
    assert "ignoring the fault file" in out and str(path) in out


def test_logs_one_line_per_request_and_exits_cleanly_on_sigterm(start: Callable[..., App]) -> None:
    app = start()
    app.fault(latency_seconds=30)
    answers: list[int] = []
    slow = threading.Thread(target=lambda: answers.append(app.get("/version", timeout=10).status_code))
    slow.start()
    time.sleep(0.5)
    began = time.monotonic()
    app.proc.send_signal(signal.SIGTERM)
    out, err = app.proc.communicate(timeout=5)
    slow.join(timeout=5)
    assert app.proc.returncode == 0, err
    assert time.monotonic() - began < 3  # the 30 s wait is cut short, the request in flight is answered
    assert answers == [200]
    request_lines = [line for line in out.splitlines() if '"GET /version"' in line]
    assert len(request_lines) == 1 and " 200 " in request_lines[0] and "green 2.1.0" in request_lines[0]
    assert out.splitlines()[-1].endswith("stopped")


def test_a_port_in_use_is_a_clear_failure(start: Callable[..., App]) -> None:
    app = start(fault_path=False)
    proc = subprocess.run([sys.executable, "-m", "bgtool.embedded.sampleapp", "--port", str(app.port), "--version",
                           "1", "--color", "blue"], cwd=REPO, capture_output=True, text=True, timeout=10)
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{app.port}" in proc.stderr

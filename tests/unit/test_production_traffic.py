"""The demo's request stream (scripts/production-traffic): every failure is counted by kind with its
text, and the summary is written whatever happens, a crash of the stream included."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator
from importlib.machinery import SourceFileLoader
from importlib.util import module_from_spec, spec_from_loader
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import requests
from urllib3.exceptions import ProtocolError

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "production-traffic"


def _load() -> ModuleType:
    loader = SourceFileLoader("production_traffic", str(SCRIPT))
    spec = spec_from_loader("production_traffic", loader)
    assert spec is not None
    module = module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    loader.exec_module(module)
    return module


pt = _load()


class Answer:
    def __init__(self, status: int, text: str) -> None:
        self.status_code, self.text, self.ok = status, text, status < 400


def raises(exc: BaseException) -> Any:
    def get() -> Answer:
        raise exc

    return get


def closed_by_server() -> requests.ConnectionError:
    from http.client import RemoteDisconnected

    return requests.ConnectionError(ProtocolError("Connection aborted.",
                                                  RemoteDisconnected("Remote end closed connection without response")))


def test_each_failure_is_counted_by_kind_with_its_text() -> None:
    tally = pt.Tally(url="http://127.0.0.1:1")
    pt.one_request(lambda: Answer(200, "1.1.0\n"), tally)
    pt.one_request(lambda: Answer(503, "no server is available"), tally)
    pt.one_request(raises(requests.ReadTimeout("read timed out (5 s)")), tally)
    pt.one_request(raises(ValueError("odd answer")), tally)
    assert tally.answers == {"1.1.0": 1}
    assert tally.failures == {"HTTP 503": 1, "ReadTimeout": 1, "ValueError": 1}
    text = tally.summary()
    assert "4 requests to http://127.0.0.1:1" in text and "3 failed" in text and "1.1.0: 1" in text
    assert "HTTP 503: no server is available" in text and "ReadTimeout: read timed out (5 s)" in text
    assert "ValueError: odd answer" in text
    assert not tally.ok


def test_only_the_first_errors_are_shown_but_all_are_counted() -> None:
    tally = pt.Tally()
    for _ in range(12):
        pt.one_request(lambda: Answer(502, "bad gateway"), tally)
    assert tally.failures == {"HTTP 502": 12}
    assert len(tally.first_errors) == pt.FIRST_ERRORS and "HTTP 502 x12" in tally.summary()


def test_a_connection_closed_by_the_server_is_a_failure_named_by_its_cause() -> None:
    tally = pt.Tally()
    pt.one_request(raises(closed_by_server()), tally)
    refused = requests.ConnectionError(ConnectionRefusedError(111, "Connection refused"))
    pt.one_request(raises(refused), tally)
    assert tally.failures == {"ConnectionError (RemoteDisconnected)": 1, "ConnectionError (ConnectionRefusedError)": 1}
    text = tally.summary()
    assert "Remote end closed connection without response" in text and "Connection refused" in text


def test_the_stream_writes_its_summary_when_it_cannot_start(tmp_path: Path) -> None:
    """Outside a project the stream cannot find the production URL: it says so in its summary and
    exits 1, instead of dying with a traceback and no summary."""
    done = subprocess.run([sys.executable, str(SCRIPT), "stream"], cwd=tmp_path, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, check=False)
    assert done.returncode == 1
    assert "0 requests to (no URL)" in done.stdout, done.stdout + done.stderr
    assert "the stream itself failed: BgtoolError: no bgtool project found" in done.stdout


@pytest.fixture
def server() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"1.1.0"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_the_stream_counts_answers_and_writes_ready_and_its_summary(server: str, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(pt, "production_url_when_ready", lambda env, should_stop: server)
    stop, ready = threading.Event(), tmp_path / "ready"
    runner = threading.Thread(target=lambda: setattr(runner, "code", pt.stream("local", 2, ready, 0.001, stop)))
    runner.start()
    while not ready.exists() and runner.is_alive():
        stop.wait(0.05)
    stop.set()
    runner.join()
    out = capsys.readouterr().out
    assert runner.code == 0, out  # type: ignore[attr-defined]
    assert ready.read_text() == server and f"to {server}" in out and "0 failed" in out and "1.1.0:" in out


def test_a_crash_inside_the_stream_still_writes_the_summary(server: str, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    def broken(get: Any, tally: Any) -> None:
        raise RuntimeError("the client broke")

    monkeypatch.setattr(pt, "production_url_when_ready", lambda env, should_stop: server)
    monkeypatch.setattr(pt, "one_request", broken)
    code = pt.stream("local", 1, None, 0.001, threading.Event())
    out = capsys.readouterr().out
    assert code == 1
    assert "the stream itself failed: RuntimeError: the client broke" in out

"""The sample application behind the local load balancer: one process per registered instance.

It keeps the contract of the user-data sample app on EC2 (`/` names the color and version, the
health-check path answers 200 "ok", `/version` answers the version), so smoke checks and host checks
mean the same thing on `local` as on AWS. With a shared session store (`state_store`), `/session`
keeps a cookie session there (bgtool.embedded.sessions) and says which color started it and which
one answers.

Faults (see bgtool.embedded.faults) change how it answers, re-read from the color's fault file:
- `errors_pct`: that share of requests answers 500, spread evenly (every second request at 50%), so
  the load balancer's 5xx count and the 5xx alarm follow the setting exactly;
- `latency_seconds`: every request waits that long before it is answered;
- `down`: every connection is closed without an answer, so health checks fail.
The health-check path is spared by errors and latency: a target that serves errors usually still
passes a static health check, which is why 5xx alarms exist; only `down` fails the health checks.

Standard library only (ThreadingHTTPServer), so it starts fast and runs wherever bgtool runs.
"""

from __future__ import annotations

import argparse
import html
import json
import signal
import sys
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bgtool.embedded.faults import Fault, FaultWatcher
from bgtool.embedded.sessions import SessionStore, session_id, set_cookie


class ErrorShare:
    """Decides which requests answer 500 so that the share is exact over any run of requests."""

    def __init__(self) -> None:
        self._debt = 0.0
        self._lock = threading.Lock()

    def next_fails(self, pct: float) -> bool:
        if pct <= 0:
            return False
        with self._lock:
            self._debt += pct / 100.0
            if self._debt >= 1.0 - 1e-9:
                self._debt -= 1.0
                return True
            return False


class SampleServer(ThreadingHTTPServer):
    """One connection per request (HTTP/1.0): nothing idles in keep-alive, so SIGTERM exits at once."""

    daemon_threads = False
    block_on_close = True
    request_queue_size = 128  # the default 5 drops connections under a burst and fails health checks

    def __init__(self, address: tuple[str, int], args: argparse.Namespace) -> None:
        self.version, self.color = args.version, args.color
        self.health_path = urlsplit(args.health_path).path or "/"
        self.faults = FaultWatcher(Path(args.fault_file) if args.fault_file else None)
        self.errors = ErrorShare()
        self.sessions = SessionStore.from_environment()
        self.stopping = threading.Event()
        self._log_lock = threading.Lock()
        self._reported_error: str | None = None
        super().__init__(address, Handler)

    def fault(self) -> Fault:
        fault = self.faults.current()
        if self.faults.error and self.faults.error != self._reported_error:
            self.log(f"ignoring the fault file: {self.faults.error}")
        self._reported_error = self.faults.error
        return fault

    def verify_request(self, request: Any, client_address: Any) -> bool:
        """A color that is down accepts connections and closes them unanswered, as a hung host would."""
        if self.fault().down:
            self.log(f"{client_address[0]}:{client_address[1]} - closed unanswered (fault: down)")
            return False
        return True

    def log(self, text: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        with self._log_lock:
            sys.stdout.write(f"{stamp}Z {self.color} {self.version} {text}\n")
            sys.stdout.flush()


class Handler(BaseHTTPRequestHandler):
    server: SampleServer
    protocol_version = "HTTP/1.0"
    server_version = "bgtool-sample"
    timeout = 10  # a client that connects and never sends a request must not hold up SIGTERM forever

    def do_GET(self) -> None:
        self._answer(with_body=True)

    def do_HEAD(self) -> None:
        self._answer(with_body=False)

    def _answer(self, with_body: bool) -> None:
        started = time.monotonic()
        app = self.server
        path = urlsplit(self.path).path
        fault = app.fault()
        note = ""
        headers: dict[str, str] = {}
        if path == app.health_path:
            status, body = 200, "ok\n"
        else:
            if fault.latency_seconds:
                app.stopping.wait(fault.latency_seconds)  # SIGTERM cuts the wait short
                note = f" (fault: +{fault.latency_seconds:g}s)"
            if app.errors.next_fails(fault.errors_pct):
                status, body = 500, f"injected error ({app.color} {app.version})\n"
                note += f" (fault: {fault.errors_pct:g}% errors)"
            else:
                status, body, headers = self._route(path)
        payload = body.encode()
        self.send_response(status)
        content_type = "text/html" if path == "/" and status == 200 else "text/plain"
        self.send_header("Content-Type", headers.pop("Content-Type", f"{content_type}; charset=utf-8"))
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-Bgtool-Color", app.color)
        self.send_header("X-Bgtool-Version", app.version)
        self.end_headers()
        if with_body:
            self.wfile.write(payload)
        app.log(f'{self.client_address[0]} "{self.command} {self.path}" {status} '
                f"{time.monotonic() - started:.3f}s{note}")

    def _route(self, path: str) -> tuple[int, str, dict[str, str]]:
        app = self.server
        if path == "/version":
            return 200, f"{app.version}\n", {}
        if path in ("/", "/index.html"):
            name = html.escape(f"{app.color} {app.version}")
            return 200, f"<!doctype html>\n<title>{name}</title>\n<h1>{name}</h1>\n", {}
        if path == "/session":
            return self._session()
        return 404, "not found\n", {}

    def _session(self) -> tuple[int, str, dict[str, str]]:
        """A visit of the caller's session; a store that fails is a 5xx, as it would be for users."""
        app = self.server
        if app.sessions is None:
            return 404, "no session store (state_store) in this environment\n", {}
        try:
            visit = app.sessions.visit(session_id(self.headers.get("Cookie")), app.color, app.version)
        except Exception as exc:  # any failure of the store is the answer's status
            return 503, f"session store unavailable: {type(exc).__name__}: {exc}\n", {}
        headers = {"Content-Type": "application/json"}
        if visit.new:
            headers["Set-Cookie"] = set_cookie(visit.session, app.sessions.ttl_seconds)
        return 200, json.dumps(visit.to_dict(app.color, app.version)) + "\n", headers

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Logged once the answer is complete (with its duration), not when the status line goes out."""

    def log_error(self, format: str, *args: Any) -> None:
        self.server.log(f"{self.client_address[0]} error: {format % args}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bgtool.embedded.sampleapp",
                                     description="bgtool's sample application for the local data plane.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--version", required=True, help="application version it serves")
    parser.add_argument("--color", required=True)
    parser.add_argument("--health-path", default="/health")
    parser.add_argument("--fault-file", default=None, help="the color's fault file, re-read when it changes")
    parser.add_argument("--bind", default="127.0.0.1")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        server = SampleServer((args.bind, args.port), args)
    except OSError as exc:
        sys.stderr.write(f"sample app: cannot listen on {args.bind}:{args.port}: {exc.strerror}\n")
        return 1

    def stop(signum: int, _frame: Any) -> None:
        server.stopping.set()
        # shutdown() waits for serve_forever to return, so it cannot run on the thread that serves.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.log(f"listening on {args.bind}:{args.port} (health {server.health_path}, "
               f"faults {args.fault_file or 'off'})")
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()  # waits for requests in flight
    server.log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())

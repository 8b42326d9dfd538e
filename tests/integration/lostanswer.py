"""An HTTP relay in front of the embedded AWS that loses the answer to one chosen request.

The request reaches the server and takes effect there; the client is told "500 InternalError" instead
of the real answer, as when a response is lost to a dropped connection or a proxy timeout. The AWS
SDKs retry such a request, which is how a write can collide with itself. Everything else is relayed
unchanged (the SigV4 signature covers the relay's host, which the embedded AWS does not check).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

Chooser = Callable[[dict[str, str], bytes], bool]
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}


def dynamodb_put(lock_id: str) -> Chooser:
    """Chooses Terraform's conditional PutItem of the lock LOCK_ID (not the state digest's item)."""

    def choose(headers: dict[str, str], body: bytes) -> bool:
        if headers.get("x-amz-target", "") != "DynamoDB_20120810.PutItem":
            return False
        doc = json.loads(body or b"{}")
        return doc.get("Item", {}).get("LockID", {}).get("S") == lock_id and "ConditionExpression" in doc

    return choose


@contextmanager
def losing_one_answer(upstream: str, choose: Chooser) -> Iterator[tuple[str, list[int]]]:
    """Yields the relay's URL and the list of statuses the server gave to the requests whose answer was lost."""
    lost: list[int] = []
    session = requests.Session()

    class Relay(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _relay(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            answer = session.request(self.command, upstream + self.path, headers=headers, data=body,
                                     allow_redirects=False, timeout=300)
            if not lost and choose({k.lower(): v for k, v in self.headers.items()}, body):
                lost.append(answer.status_code)
                self._send(500, {"Content-Type": "application/x-amz-json-1.0"},
                           b'{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"lost"}')
                return
            keep = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP}
            if self.command == "HEAD" and "Content-Length" in answer.headers:
                keep["Content-Length"] = answer.headers["Content-Length"]  # the object's size, not this body's
            self._send(answer.status_code, keep, answer.content)

        def _send(self, status: int, headers: dict[str, str], content: bytes) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            if "Content-Length" not in headers:
                self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(content)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _relay

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Relay)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", lost
    finally:
        server.shutdown()
        server.server_close()

"""The sample worker: consumes an SQS queue of the embedded AWS and records who processed what.

Every processed message becomes one JSON line in the record file (`--record`): the message's body
and id, this worker's version, color and id, and when processing started and ended. A test that
sends a steady stream of messages through a switch and a rollback reads these lines to show that
nothing was lost and, with `workers.handover: exclusive`, that two versions never processed at once.

On SIGTERM the worker stops receiving, finishes the message in hand and puts every message it
received but did not finish back on the queue (visibility 0), so a handover loses nothing and the
next workers see them at once. It answers `GET /` on $PORT with its counts (the data plane's
readiness check).

    python -m bgtool.embedded.sampleworker --queue-url URL --version 1.2.0 --color green --worker i-1
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


def sqs_client(queue_url: str) -> Any:
    """An SQS client for the queue's own endpoint (the embedded AWS: any credentials do)."""
    import boto3

    parts = urlsplit(queue_url)
    endpoint = f"{parts.scheme}://{parts.netloc}"
    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1"
    return boto3.session.Session(
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "bgtool"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "bgtool"),
        region_name=region,
    ).client("sqs", endpoint_url=endpoint)


class Worker:
    def __init__(self, queue_url: str, version: str, color: str, worker: str, record: Path,
                 work_seconds: float, client: Any = None) -> None:
        self.queue_url = queue_url
        self.version = version
        self.color = color
        self.worker = worker
        self.record = record
        self.work_seconds = work_seconds
        self.sqs = client or sqs_client(queue_url)
        self.stopping = threading.Event()
        self.processed = 0
        self.returned = 0

    def run(self) -> None:
        while not self.stopping.is_set():
            answer = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            messages = answer.get("Messages", [])
            for index, message in enumerate(messages):
                if self.stopping.is_set():
                    self._give_back(messages[index:])
                    break
                self._process(message)

    def _process(self, message: dict[str, Any]) -> None:
        started = time.time()
        time.sleep(self.work_seconds)
        ended = time.time()
        line = {"body": message["Body"], "message_id": message["MessageId"], "version": self.version,
                "color": self.color, "worker": self.worker, "started": started, "ended": ended}
        self.record.parent.mkdir(parents=True, exist_ok=True)
        with self.record.open("a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")
        self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        self.processed += 1

    def _give_back(self, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            self.sqs.change_message_visibility(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"],
                                               VisibilityTimeout=0)
            self.returned += 1


def _serve_status(worker: Worker, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"version": worker.version, "color": worker.color, "worker": worker.worker,
                               "processed": worker.processed, "returned": worker.returned}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--version", default=os.environ.get("BGTOOL_VERSION", "0.0.0"))
    parser.add_argument("--color", default=os.environ.get("BGTOOL_COLOR", ""))
    parser.add_argument("--worker", default=os.environ.get("BGTOOL_INSTANCE_ID", str(os.getpid())))
    parser.add_argument("--record", type=Path, default=Path(".bgtool/worker-record.jsonl"))
    parser.add_argument("--work-seconds", type=float, default=0.05, help="How long one message takes.")
    args = parser.parse_args(argv)
    worker = Worker(args.queue_url, args.version, args.color, args.worker, args.record, args.work_seconds)
    signal.signal(signal.SIGTERM, lambda *_: worker.stopping.set())
    signal.signal(signal.SIGINT, lambda *_: worker.stopping.set())
    server = _serve_status(worker, int(os.environ["PORT"])) if os.environ.get("PORT") else None
    try:
        worker.run()
    finally:
        if server is not None:
            server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Steady streams for integration tests: requests with every answer's (status, version), and queue messages."""

from __future__ import annotations

import threading
import time
from typing import Any

import requests


class Traffic:
    """WORKERS clients asking URL/version until the block ends; failures are recorded as status 0."""

    def __init__(self, url: str, workers: int = 1, pause: float = 0.01) -> None:
        self.url = url
        self.pause = pause
        self.answers: list[tuple[int, str]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(workers)]

    def _run(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                try:
                    r = session.get(f"{self.url}/version", timeout=5)
                    self.answers.append((r.status_code, r.text.strip()))
                except requests.RequestException as exc:
                    self.answers.append((0, type(exc).__name__))
                time.sleep(self.pause)

    def share(self, version: str, last: int = 100) -> float:
        recent = self.answers[-last:]
        return sum(1 for _, v in recent if v == version) / max(1, len(recent))

    def __enter__(self) -> Traffic:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)


class Sender:
    """A steady stream of numbered messages to the queue."""

    def __init__(self, sqs: Any, url: str, prefix: str = "m") -> None:
        self.sqs, self.url, self.prefix = sqs, url, prefix
        self.sent: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            body = f"{self.prefix}-{n:05d}"
            self.sqs.send_message(QueueUrl=self.url, MessageBody=body)
            self.sent.append(body)
            n += 1
            time.sleep(0.25)

    def __enter__(self) -> Sender:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

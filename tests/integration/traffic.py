"""A steady, bounded stream of requests for integration tests: every answer's (status, version)."""

from __future__ import annotations

import threading
import time

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

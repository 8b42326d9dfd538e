"""Host checks for the `local` environment, run on this machine (`connection: local`).

On the embedded AWS the "hosts" of a color are moto records, not machines, so there is nothing to
log in to. What the gate can check for real on this machine is that the embedded AWS the
environment points at is up and answering: every other verdict of the gate depends on it.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import pytest

ENDPOINT = os.environ.get("BGTOOL_AWS_ENDPOINT", "")


@pytest.fixture(scope="module")
def endpoint() -> tuple[str, int]:
    parts = urlsplit(ENDPOINT)
    if not parts.hostname:
        pytest.fail(f"BGTOOL_AWS_ENDPOINT is not an endpoint URL: {ENDPOINT!r}")
    return parts.hostname, parts.port or 80


def test_embedded_aws_listens(host, endpoint: tuple[str, int]) -> None:  # type: ignore[no-untyped-def]
    address, port = endpoint
    listening = host.socket.get_listening_sockets()
    assert any(s.endswith(f":{port}") for s in listening), f"nothing listens on {address}:{port}"


def test_embedded_aws_answers(host) -> None:  # type: ignore[no-untyped-def]
    if not host.exists("curl"):
        pytest.skip("curl is not installed")
    code = host.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 5 {ENDPOINT}/moto-api/")
    assert code == "200", f"{ENDPOINT} answered HTTP {code}"

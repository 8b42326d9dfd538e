"""Cookie sessions of the sample application in the shared session store.

Two real sample-app processes (blue 1.0.0 and green 2.0.0) share one DynamoDB table on a real moto
server, as both colors share the base layer's table: a session started on one goes on on the other.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from bgtool.embedded.model import TargetSpec
from bgtool.embedded.sessions import COOKIE, SessionStore, session_id, set_cookie
from bgtool.embedded.targets import app_environment

REPO = Path(__file__).resolve().parents[2]
TABLE = "bgtool-test-sessions"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port())
    server.start()
    url = f"http://127.0.0.1:{server._port}"
    dynamodb = boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1",
                            aws_access_key_id="x", aws_secret_access_key="x")
    dynamodb.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                          KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
    yield url
    server.stop()


def store(endpoint: str, ttl: int = 3600) -> SessionStore:
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="x", aws_secret_access_key="x")
    return SessionStore(TABLE, ttl, client)


@pytest.fixture
def app(endpoint: str) -> Iterator[Callable[[str, str], str]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(color: str, version: str) -> str:
        port = free_port()
        env = {**os.environ, "BGTOOL_SESSION_STORE": "dynamodb", "BGTOOL_SESSION_TABLE": TABLE,
               "BGTOOL_SESSION_TTL_SECONDS": "600", "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1",
               "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}
        proc = subprocess.Popen([sys.executable, "-m", "bgtool.embedded.sampleapp", "--port", str(port),
                                 "--version", version, "--color", color], cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proc)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return f"http://127.0.0.1:{port}"
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"sample app {color} did not listen")

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def test_a_session_started_on_one_color_goes_on_on_the_other(app: Callable[[str, str], str]) -> None:
    blue, green = app("blue", "1.0.0"), app("green", "2.0.0")
    first = requests.get(f"{blue}/session", timeout=10)
    assert first.status_code == 200, first.text
    cookie = first.cookies[COOKIE]
    assert "HttpOnly" in first.headers["Set-Cookie"] and "Max-Age=600" in first.headers["Set-Cookie"]
    assert first.json()["hits"] == 1 and first.json()["new"] is True

    on_green = requests.get(f"{green}/session", cookies={COOKIE: cookie}, timeout=10)
    doc = on_green.json()
    assert (doc["session"], doc["hits"], doc["new"]) == (cookie, 2, False)
    assert doc["started_on"] == {"color": "blue", "version": "1.0.0"}
    assert doc["served_by"] == {"color": "green", "version": "2.0.0"}
    assert "Set-Cookie" not in on_green.headers  # the same session: nothing to set

    back = requests.get(f"{blue}/session", cookies={COOKIE: cookie}, timeout=10).json()
    assert (back["hits"], back["served_by"]["color"]) == (3, "blue")


def test_an_unknown_or_forged_cookie_starts_a_new_session(app: Callable[[str, str], str]) -> None:
    blue = app("blue", "1.0.0")
    for value in ("a" * 24, "<script>", ""):
        answer = requests.get(f"{blue}/session", cookies={COOKIE: value}, timeout=10)
        assert answer.status_code == 200 and answer.json()["new"] is True and answer.json()["session"] != value


def test_the_data_plane_gives_a_process_what_the_user_data_gives_an_instance() -> None:
    """The instance's tags name the store; the process gets the same variables as /etc/bgtool-app.env."""
    spec = TargetSpec("i-1", "local", "green", "2.0.0", "/health", region="eu-west-1",
                      session_store="bgtool-local-sessions", session_ttl_seconds="7200")
    env = app_environment(spec, "http://127.0.0.1:5000")
    assert env == {"BGTOOL_SESSION_STORE": "dynamodb", "BGTOOL_SESSION_TABLE": "bgtool-local-sessions",
                   "BGTOOL_SESSION_TTL_SECONDS": "7200", "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
                   "AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1",
                   "AWS_ACCESS_KEY_ID": "embedded-instance-profile",
                   "AWS_SECRET_ACCESS_KEY": "embedded-instance-profile"}
    assert app_environment(TargetSpec("i-2", "local", "blue", "1.0.0", "/health"), "http://x") == {}
    assert SessionStore.from_environment({}) is None


def test_an_expired_session_is_not_resumed(endpoint: str) -> None:
    sessions = store(endpoint, ttl=3)  # whole seconds: a TTL of 1 could pass between the first two visits
    started = sessions.visit(None, "blue", "1.0.0")
    assert sessions.visit(started.session, "blue", "1.0.0").hits == 2
    time.sleep(4.1)  # the item's expires_at passes; DynamoDB's TTL sweep may lag, the condition does not
    again = sessions.visit(started.session, "green", "2.0.0")
    assert again.new and again.session != started.session


def test_cookie_parsing() -> None:
    good = "A" * 24
    assert session_id(f"other=1; {COOKIE}={good}") == good
    assert session_id(None) is None and session_id(f"{COOKIE}=short") is None
    assert session_id(f'{COOKIE}="x y"') is None and session_id("\x00garbage=;;") is None
    assert set_cookie(good, 60) == f"{COOKIE}={good}; Max-Age=60; Path=/; HttpOnly; SameSite=Lax"

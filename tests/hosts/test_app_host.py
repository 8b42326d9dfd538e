"""Host checks of the sample application on a color's instances (run by the health gate).

`bgtool verify` runs this module with testinfra against every in-service instance of the color
(`--hosts=ssh://user@ip,...`) and passes what the host should serve as environment variables:
BGTOOL_APP_PORT, BGTOOL_HEALTH_PATH, BGTOOL_VERSION. They check the host from the inside, which
the load balancer cannot: the unit is enabled (survives a reboot) and serves the right version.
"""

from __future__ import annotations

import os

import pytest

PORT = int(os.environ.get("BGTOOL_APP_PORT", "8000"))
HEALTH = os.environ.get("BGTOOL_HEALTH_PATH", "/health")
VERSION = os.environ.get("BGTOOL_VERSION", "")
SERVICE = "bgtool-app"


def test_app_service_running_and_enabled(host) -> None:  # type: ignore[no-untyped-def]
    service = host.service(SERVICE)
    assert service.is_running, f"{SERVICE} is not running"
    assert service.is_enabled, f"{SERVICE} is not enabled: it would not come back after a reboot"


def test_app_listens_on_its_port(host) -> None:  # type: ignore[no-untyped-def]
    listening = host.socket.get_listening_sockets()
    assert any(s.endswith(f":{PORT}") for s in listening), f"nothing listens on port {PORT}: {listening}"


def test_health_answers(host) -> None:  # type: ignore[no-untyped-def]
    done = host.run(f"curl -fsS --max-time 5 http://127.0.0.1:{PORT}{HEALTH}")
    assert done.rc == 0, f"GET {HEALTH} failed: {done.stderr.strip()}"


@pytest.mark.skipif(not VERSION, reason="BGTOOL_VERSION not given")
def test_serves_the_deployed_version(host) -> None:  # type: ignore[no-untyped-def]
    served = host.check_output(f"curl -fsS --max-time 5 http://127.0.0.1:{PORT}/version").strip()
    assert served == VERSION, f"serves version {served!r}, the environment file says {VERSION!r}"

"""Test session set-up: provider mirror discovery and the integration marker."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.helpers import REPO


def pytest_configure(config: pytest.Config) -> None:
    """Let `pytest` alone work like `make test` on an air-gapped machine."""
    if not os.environ.get("BGTOOL_PROVIDER_MIRROR"):
        found = subprocess.run([str(REPO / "scripts/find-provider-mirror")], capture_output=True, text=True)
        if found.stdout.strip():
            os.environ["BGTOOL_PROVIDER_MIRROR"] = found.stdout.strip()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)

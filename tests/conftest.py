"""Test session set-up: provider mirror discovery and the integration marker."""

from __future__ import annotations

import hashlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from bgtool.terraform.cliconfig import MIRROR_ENV, find_mirror
from tests import schedule
from tests.helpers import REPO, copy_project


def pytest_configure(config: pytest.Config) -> None:
    """Let `pytest` alone work like `make test` on an air-gapped machine, and from any shell."""
    # A shell that starts the suite in the background (`make test &`) starts it with SIGINT ignored,
    # and every bgtool the tests start would inherit that; the interrupt tests send Ctrl-C on purpose.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if not os.environ.get(MIRROR_ENV):  # for the tests that run terraform without bgtool
        found = find_mirror()
        if found is not None:
            os.environ[MIRROR_ENV] = str(found)
    config.pluginmanager.register(schedule.Recorder(), "bgtool-durations")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
    schedule.reorder(items)


def environments_digest(root: Path = REPO) -> dict[str, str]:
    """A fingerprint of every file under ROOT/environments/."""
    folder = root / "environments"
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session", autouse=True)
def repo_environments_untouched() -> Iterator[None]:
    """Tests act on copies: a run that changed the checkout's environments/ fails (and names the files)."""
    before = environments_digest()
    yield
    after = environments_digest()
    changed = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
    if changed:
        pytest.fail(f"the test run changed {REPO / 'environments'}: {', '.join(changed)}; tests must use "
                    "tests.helpers.copy_project or the `project` fixture, never the checkout's files (if you edited "
                    "them yourself while the tests ran, run the tests again)", pytrace=False)


@pytest.fixture(scope="session")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only copy of the project with the committed environment files, for tests that only read them."""
    return copy_project(tmp_path_factory.mktemp("shipped"))

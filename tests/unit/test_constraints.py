"""The pinned installs: every dependency the Makefile installs is pinned, and each pin satisfies pyproject.toml.

`make` installs with `pip -c constraints/*.txt` so that a fresh clone gets exactly what CI last passed with;
a pin outside pyproject's range would make that install fail, and a missing pin would let a new release in.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{path.name}: '{line}' is not pinned with =="
            found[canonicalize_name(name)] = version
    return found


def requirements(*extras: str, core: bool = True) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = list(project["dependencies"]) if core else []
    for extra in extras:
        listed += project["optional-dependencies"][extra]
    return [Requirement(r) for r in listed]


@pytest.mark.parametrize(("constraints", "extras", "core"), [
    ("bgtool.txt", ("local", "test"), True),
    ("scan.txt", ("scan",), False),
])
def test_every_direct_dependency_is_pinned_inside_its_range(constraints: str, extras: tuple[str, ...],
                                                            core: bool) -> None:
    pinned = pins(ROOT / "constraints" / constraints)
    for requirement in requirements(*extras, core=core):
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"constraints/{constraints} has no pin for {requirement.name}"
        assert requirement.specifier.contains(pinned[name], prereleases=True), \
            f"constraints/{constraints} pins {name}=={pinned[name]}, outside pyproject's '{requirement}'"


def test_the_makefile_installs_with_the_constraints() -> None:
    makefile = (ROOT / "Makefile").read_text()
    installs = re.findall(r"pip install[^\n]*", makefile)
    assert installs, "the Makefile installs nothing with pip"
    for line in installs:
        assert "-c $(CONSTRAINTS)" in line or "-c $(SCAN_CONSTRAINTS)" in line, f"unpinned install: {line}"


def test_the_held_back_moto_release_is_excluded_everywhere() -> None:
    """moto 5.2.6 authorizes HeadObject as 's3:HeadObject' (no such IAM action): state is unreadable under IAM."""
    moto = next(r for r in requirements("local") if canonicalize_name(r.name) == "moto")
    assert not moto.specifier.contains("5.2.6")
    assert pins(ROOT / "constraints" / "bgtool.txt")["moto"] != "5.2.6"

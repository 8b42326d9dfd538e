"""The Terraform CLI configuration bgtool runs with, and where providers are installed from.

bgtool always writes and uses its own CLI config, so a stale TF_CLI_CONFIG_FILE on the machine
neither breaks nor pollutes runs, and provider installation from a filesystem mirror is a setting
(for air-gapped runners) rather than something hard-coded.

Where providers come from, first match wins: BGTOOL_PROVIDER_MIRROR (so CI can point at its own
mirror), the environment file's `terraform.provider_mirror`, a mirror this machine has in a
conventional place (so `bgtool plan` works offline with nothing set), else the registry. This
module is the one place of that rule: the Makefile, the tests and scripts/find-provider-mirror ask
it too.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from bgtool.errors import BgtoolError

MIRROR_ENV = "BGTOOL_PROVIDER_MIRROR"
MIRROR_KEY = "terraform.provider_mirror"
REGISTRY = "registry.terraform.io"
SEARCH_DEPTH = 3
"""How deep below each conventional directory a mirror's registry.terraform.io may be (/opt/*/*/...)."""


def conventional_dirs() -> list[Path]:
    """Terraform's own implied mirror directories (per user, then system-wide), then /opt."""
    home = Path.home()
    return [home / ".terraform.d/plugins", home / ".local/share/terraform/plugins",
            Path("/usr/local/share/terraform/plugins"), Path("/usr/share/terraform/plugins"), Path("/opt")]


def find_mirror(bases: Sequence[Path] | None = None) -> Path | None:
    """The first directory holding registry.terraform.io/hashicorp/aws, SEARCH_DEPTH levels below BASES.

    Shallower beats deeper and names sort within a level, so the answer does not depend on the
    order the file system lists directories in.
    """
    for base in conventional_dirs() if bases is None else bases:
        level = [base]
        for depth in range(SEARCH_DEPTH + 1):
            for directory in level:
                if directory.name == REGISTRY and (directory / "hashicorp" / "aws").is_dir():
                    return directory.parent.resolve()
            if depth < SEARCH_DEPTH:
                level = [child for directory in level for child in _subdirectories(directory)]
    return None


def _subdirectories(directory: Path) -> list[Path]:
    try:
        return sorted(Path(e.path) for e in os.scandir(directory) if e.is_dir())
    except OSError:  # unreadable or vanished: not a mirror
        return []


def resolve_mirror(configured: str | None) -> Path | None:
    """The mirror Terraform installs providers from, or None for the registry (see the module's rule)."""
    value = os.environ.get(MIRROR_ENV) or configured
    if not value:
        return find_mirror()
    path = Path(value).expanduser()
    if not path.is_dir():
        source = MIRROR_ENV if os.environ.get(MIRROR_ENV) else MIRROR_KEY
        raise BgtoolError(
            f"{source}: provider mirror {value} is not a directory",
            hint="Point it at a directory laid out as HOSTNAME/NAMESPACE/TYPE/VERSION/OS_ARCH, "
            "or unset it to install providers from a mirror found in "
            f"{', '.join(str(d) for d in conventional_dirs())} or else the registry.",
        )
    return path.resolve()


PROVIDER_INSTALL_FAILURES = (
    "failed to query available provider packages",
    "failed to install provider",
    "could not connect to registry",
    "no available releases match the given constraints",
)
"""Terraform's words (lower case) when `init` cannot install a provider: no registry, or a mirror without it."""


def provider_install_failed(text: str) -> bool:
    lowered = text.lower()
    return any(needle in lowered for needle in PROVIDER_INSTALL_FAILURES)


def provider_install_advice() -> str:
    """What to set when Terraform cannot install a provider: named wherever that failure is reported."""
    searched = ", ".join(str(d) for d in conventional_dirs())
    return (f"providers could not be installed: set {MIRROR_ENV} (or {MIRROR_KEY} in the environment file) "
            f"to a filesystem mirror holding {REGISTRY}/hashicorp/aws at the version the layers require; "
            f"without either, bgtool uses a mirror found in {searched} (up to {SEARCH_DEPTH} levels deep), "
            "else the registry")


def cli_config_text(mirror: Path | None) -> str:
    if mirror is None:
        return "# Providers are installed from their registries.\n"
    return (
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f'    path    = "{mirror}"\n'
        '    include = ["*/*/*"]\n'
        "  }\n"
        "  direct {\n"
        '    exclude = ["*/*/*"]\n'
        "  }\n"
        "}\n"
    )


def write_cli_config(directory: Path, mirror: Path | None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "terraform.rc"
    text = cli_config_text(mirror)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path

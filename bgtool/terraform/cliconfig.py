"""The Terraform CLI configuration bgtool runs with.

bgtool always writes and uses its own CLI config, so a stale TF_CLI_CONFIG_FILE on the machine
neither breaks nor pollutes runs, and provider installation from a filesystem mirror is a setting
(for air-gapped runners) rather than something hard-coded.
"""

from __future__ import annotations

import os
from pathlib import Path

from bgtool.errors import BgtoolError

MIRROR_ENV = "BGTOOL_PROVIDER_MIRROR"


def resolve_mirror(configured: str | None) -> Path | None:
    """The environment variable wins over the file, so CI can point at its own mirror."""
    value = os.environ.get(MIRROR_ENV) or configured
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        source = MIRROR_ENV if os.environ.get(MIRROR_ENV) else "terraform.provider_mirror"
        raise BgtoolError(
            f"{source}: provider mirror {value} is not a directory",
            hint="Point it at a directory laid out as HOSTNAME/NAMESPACE/TYPE/VERSION/OS_ARCH, "
            "or unset it to install providers from the registry.",
        )
    return path.resolve()


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

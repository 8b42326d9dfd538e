"""Rewrites of the environment file that touch only the value they change.

bgtool writes back only the keys a release owns (active_color, a color's version, retired), so a
switch from a terminal and a GitOps pull request end in the same file, and the diff of a switch is
one line. Values are replaced in place in the original text (located with ruamel's line/column
marks), so comments, quoting, flow style and key order stay exactly as people wrote them. Every
write is validated before it replaces the file, and is atomic.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from bgtool.config.schema import Color, Environment, LoadedEnvironment, load_environment
from bgtool.errors import BgtoolError

_PLAIN_END = re.compile(r"\s+#|\s*$")


def set_value(loaded: LoadedEnvironment, keys: tuple[str, ...], value: str | bool) -> Environment:
    """Set a scalar at `keys`; the parent mapping must exist, the key may be new."""
    text = loaded.path.read_text(encoding="utf-8")
    doc = YAML(typ="rt").load(text)
    parent = doc
    for key in keys[:-1]:
        parent = parent[key]
    lines = text.splitlines(keepends=True)
    rendered = _scalar(value)
    if keys[-1] in parent:
        line, col = parent.lc.value(keys[-1])
        lines[line] = _replace_at(lines[line], col, rendered)
    else:
        lines = _insert_key(lines, parent, keys[-1], rendered)
    new_text = "".join(lines)
    config = _validate(loaded, new_text)
    _atomic_write(loaded.path, new_text)
    return config


def _scalar(value: str | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", value):
        parsed = YAML(typ="safe").load(f"v: {value}")["v"]
        if isinstance(parsed, str) and parsed == value:
            return value
    return json.dumps(value)


def _replace_at(line: str, col: int, rendered: str) -> str:
    rest = line[col:]
    if rest[:1] in ("'", '"'):
        quote = rest[0]
        end = rest.index(quote, 1) + 1
    else:
        match = _PLAIN_END.search(rest)
        end = match.start() if match else len(rest)
    return line[:col] + rendered + rest[end:]


def _insert_key(lines: list[str], parent: Any, key: str, rendered: str) -> list[str]:
    if not parent:
        raise BgtoolError(f"cannot add {key!r} to an empty mapping")
    last_key = list(parent.keys())[-1]
    if isinstance(parent[last_key], dict | list):
        raise BgtoolError(f"cannot add {key!r} after the nested block {last_key!r}; add it by hand")
    indent = parent.lc.key(next(iter(parent.keys())))[1]
    last_line = parent.lc.key(last_key)[0]
    new = f"{' ' * indent}{key}: {rendered}\n"
    return [*lines[: last_line + 1], new, *lines[last_line + 1 :]]


def _validate(loaded: LoadedEnvironment, text: str) -> Environment:
    with tempfile.TemporaryDirectory(prefix="bgtool-envfile-") as tmp:
        (Path(tmp) / "environments").mkdir()
        (Path(tmp) / "environments" / loaded.path.name).write_text(text, encoding="utf-8")
        return load_environment(Path(tmp), loaded.env).config


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def set_active_color(loaded: LoadedEnvironment, color: Color) -> Environment:
    return set_value(loaded, ("active_color",), color.value)


def set_version(loaded: LoadedEnvironment, color: Color, version: str) -> Environment:
    """A new version also un-retires the color: a deploy scales it back up."""
    config = set_value(loaded, ("colors", color.value, "version"), version)
    if config.colors.of(color).retired:
        config = set_retired(loaded, color, False)
    return config


def set_retired(loaded: LoadedEnvironment, color: Color, retired: bool) -> Environment:
    return set_value(loaded, ("colors", color.value, "retired"), retired)

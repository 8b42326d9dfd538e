"""Rewrites of the environment file that touch only the value they change.

bgtool writes back only the keys a release owns (active_color, a color's version, retired), so a
switch from a terminal and a GitOps pull request end in the same file, and the diff of a switch is
one line. Values are replaced in place in the original text (located with ruamel's line/column
marks), so comments, quoting, flow style and key order stay exactly as people wrote them. A color
written as a flow mapping (`green: {version: 1.0.0, desired: 2}`) is edited inside its braces; a key
a color takes from a merge key (`<<: *defaults`) is written into the color's own mapping, never into
the shared anchor. Every write is refused, writing nothing, when the file no longer says what the
operation decided on, or when it would change anything but the edited keys; it is validated before
it replaces the file, and is atomic.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from bgtool.config.schema import Color, Environment, LoadedEnvironment, load_environment
from bgtool.errors import BgtoolError

_PLAIN_END = re.compile(r"\s+#|\s*$")
_FLOW_PLAIN_END = re.compile(r"\s*(?:[,}\]]|\s#|$)")

Scalar = str | bool
Edit = tuple[tuple[str, ...], Scalar, Scalar | None]
"""Keys, the new value, and the value the caller decided on (None: the caller's loaded file's value)."""
Edits = Callable[[Environment], list[Edit]]
"""The edits to make, given the file as it is now."""


class FileChanged(BgtoolError):
    """The file no longer says what the operation's decision was based on: nothing was written."""


def set_value(loaded: LoadedEnvironment, keys: tuple[str, ...], value: Scalar,
              expected: Scalar | None = None) -> Environment:
    """Set a scalar at `keys`; the parent mapping must exist, the key may be new.

    EXPECTED is what the caller's decision was based on (default: the value in LOADED, the file as
    the caller read it); if the file says something else now, nothing is written (FileChanged).
    """
    return _write(loaded, lambda _: [(keys, value, expected)])


def _write(loaded: LoadedEnvironment, edits: Edits) -> Environment:
    text = loaded.path.read_text(encoding="utf-8")
    new_text, config = _rewrite(loaded, text, edits)
    if new_text != text:
        _atomic_write(loaded.path, new_text)
    return config


def _rewrite(loaded: LoadedEnvironment, text: str, edits_of: Edits) -> tuple[str, Environment]:
    """The new text and its validated configuration; raises before anything is written."""
    current = _validate(loaded, text)
    edits = edits_of(current)
    for keys, value, expected in edits:
        _refuse_changed(loaded, current, keys, value, expected)
    new_text = text
    for keys, value, _ in edits:
        new_text = _edit(loaded, new_text, keys, value)
    config = _validate(loaded, new_text)
    _refuse_side_effects(loaded, current, config, edits)
    return new_text, config


def _at(config: Environment, keys: tuple[str, ...]) -> Any:
    node: Any = config.model_dump(mode="json")
    for key in keys:
        node = node[key]
    return node


def _refuse_changed(loaded: LoadedEnvironment, current: Environment, keys: tuple[str, ...], value: Scalar,
                    expected: Scalar | None) -> None:
    wanted = _at(loaded.config, keys) if expected is None else expected
    now = _at(current, keys)
    if now not in (wanted, value):
        name = ".".join(keys)
        raise FileChanged(f"environments/{loaded.path.name}: {name} is now {now!r}, but this operation decided on "
                          f"{wanted!r}: the file changed while it ran; nothing was written to the file",
                          hint="Check the file and 'bgtool status', then run the command again: it reads the "
                          "file afresh.")


def _refuse_side_effects(loaded: LoadedEnvironment, before: Environment, after: Environment,
                         edits: list[Edit]) -> None:
    """Only the edited keys may change: a value shared through an anchor, an alias or a merge key must
    not change another color behind the operator's back."""
    wanted = before.model_dump(mode="json")
    for keys, value, _ in edits:
        node = wanted
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    others = _differences(wanted, after.model_dump(mode="json"))
    if others:
        edited = ", ".join(".".join(keys) for keys, _, _ in edits)
        raise BgtoolError(f"environments/{loaded.path.name}: writing {edited} would also change "
                          f"{', '.join(others)} (shared through a YAML anchor, alias or merge key); nothing was "
                          "written to the file",
                          hint="Give each color its own value of that key in the file (a key written in the "
                          "color's own mapping overrides a merged one), then run the command again.")


def _differences(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b), key=str)
                for d in _differences(a.get(k), b.get(k), f"{path}.{k}" if path else str(k))]
    return [] if a == b else [path or "the file"]


def _edit(loaded: LoadedEnvironment, text: str, keys: tuple[str, ...], value: Scalar) -> str:
    """TEXT with the value at KEYS replaced (or the key added to its own mapping), nothing else moved."""
    doc = YAML(typ="rt").load(text)
    parent = doc
    for key in keys[:-1]:
        parent = parent[key]
    lines = text.splitlines(keepends=True)
    rendered = _scalar(value)
    flow = _flow_start(lines, parent)
    if keys[-1] in _own_keys(parent):
        line, col = parent.lc.value(keys[-1])
        lines[line] = _replace_at(lines[line], col, rendered, flow=flow is not None)
    elif flow is not None:
        lines = _insert_flow_key(lines, flow, parent, keys[-1], rendered)
    else:
        lines = _insert_key(lines, parent, keys[-1], rendered, where=f"environments/{loaded.path.name}")
    return "".join(lines)


def _own_keys(mapping: Any) -> list[Any]:
    """The keys written in MAPPING itself, not those it takes from a merge key (`<<: *defaults`): a value
    is only ever written into the mapping it belongs to, never into a shared anchor."""
    own = getattr(mapping, "_ok", None)
    return [k for k in mapping if own is None or k in own]


def _flow_start(lines: list[str], mapping: Any) -> tuple[int, int] | None:
    """Where the `{` of a flow mapping (`green: {version: 1.0.0, desired: 2}`) is; None for a block one."""
    line, col = mapping.lc.line, mapping.lc.col
    rest = lines[line][col:] if line < len(lines) else ""
    if rest.startswith("&"):  # an anchor before the mapping: `green: &g {...}`
        rest = rest.split(None, 1)[1] if len(rest.split(None, 1)) > 1 else ""
        col = len(lines[line]) - len(rest)
    return (line, col) if rest.startswith("{") else None


def _scalar(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", value):
        parsed = YAML(typ="safe").load(f"v: {value}")["v"]
        if isinstance(parsed, str) and parsed == value:
            return value
    return json.dumps(value)


def _replace_at(line: str, col: int, rendered: str, *, flow: bool = False) -> str:
    rest = line[col:]
    if rest[:1] == '"':
        end = re.match(r'"(?:[^"\\]|\\.)*"', rest)
        stop = end.end() if end else len(rest)
    elif rest[:1] == "'":
        end = re.match(r"'(?:[^']|'')*'", rest)
        stop = end.end() if end else len(rest)
    else:
        match = (_FLOW_PLAIN_END if flow else _PLAIN_END).search(rest)
        stop = match.start() if match else len(rest)
    return line[:col] + rendered + rest[stop:]


def _insert_flow_key(lines: list[str], brace: tuple[int, int], parent: Any, key: str, rendered: str) -> list[str]:
    """A new key goes first inside the braces: `{retired: true, version: 1.0.0}`, valid whatever follows."""
    line, col = brace
    sep = ", " if len(parent) else ""
    text = lines[line]
    return [*lines[:line], f"{text[: col + 1]}{key}: {rendered}{sep}{text[col + 1 :].lstrip(' ')}",
            *lines[line + 1 :]]


def _insert_key(lines: list[str], parent: Any, key: str, rendered: str, *, where: str) -> list[str]:
    own = _own_keys(parent)
    if own and not isinstance(parent[own[-1]], dict | list):
        indent = parent.lc.key(own[0])[1]
        after = parent.lc.key(own[-1])[0]
    elif not own and len(parent):  # only a merge key: `<<: *defaults` is the mapping's first line
        indent, after = parent.lc.col, parent.lc.line
    elif own:
        raise BgtoolError(f"{where}: cannot add {key!r} after the nested block {own[-1]!r}; add it by hand")
    else:
        raise BgtoolError(f"{where}: cannot add {key!r} to an empty mapping; add it by hand")
    new = f"{' ' * indent}{key}: {rendered}\n"
    return [*lines[: after + 1], new, *lines[after + 1 :]]


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
    """A new version also un-retires the color: a deploy scales it back up (one write for both)."""
    return _write(loaded, _version_edits(color, version))


def check_version_writable(loaded: LoadedEnvironment, color: Color, version: str) -> None:
    """Raise now what `set_version` would raise later, writing nothing: an operation that runs things
    before it writes the file (deploy's migrations) must know first that the file can take the write."""
    _rewrite(loaded, loaded.path.read_text(encoding="utf-8"), _version_edits(color, version))


def _version_edits(color: Color, version: str) -> Edits:
    def edits(current: Environment) -> list[Edit]:
        unretire: list[Edit] = [(("colors", color.value, "retired"), False, True)]
        return [(("colors", color.value, "version"), version, None),
                *(unretire if current.colors.of(color).retired else [])]

    return edits


def set_retired(loaded: LoadedEnvironment, color: Color, retired: bool) -> Environment:
    return set_value(loaded, ("colors", color.value, "retired"), retired)

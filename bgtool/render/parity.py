"""Color parity of rendered layers: blue and green may differ only in the color and per-color values.

The blue and green layers come from one template set, so after replacing each layer's own color
word (and the other color's word) by placeholders their Terraform files must be identical, and
their `terraform.tfvars.json` must set the same variables (the values are the per-color ones).
Used by `bgtool drift` (rendered parity) and by the render tests, so both judge with one rule.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from pathlib import Path

from bgtool.config.schema import Color

VALUES_FILE = "terraform.tfvars.json"


def normalize_layer_text(text: str, color: str) -> str:
    """The layer text with its own color as <color>, the other as <other>, and no comment lines.

    Comment lines cannot change what Terraform does, and prose may name both colors ("blue and
    green are rendered from this one template"), which no word mapping makes symmetric.
    """
    other = Color(color).other.value
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith(("#", "//")))
    text = re.sub(rf"(?<![A-Za-z0-9]){color}(?![A-Za-z0-9])", "<color>", text)
    return re.sub(rf"(?<![A-Za-z0-9]){other}(?![A-Za-z0-9])", "<other>", text)


def layer_differences(blue: Mapping[str, str], green: Mapping[str, str]) -> dict[str, list[str]]:
    """File name → unified diff lines (blue → green) of what differs beyond color and values."""
    out: dict[str, list[str]] = {}
    for name in sorted(set(blue) | set(green)):
        if name not in blue or name not in green:
            out[name] = [f"only in {'blue' if name in blue else 'green'}"]
            continue
        if name == VALUES_FILE:
            keys = _keys(blue[name]), _keys(green[name])
            if keys[0] != keys[1]:
                out[name] = [f"variables differ: blue sets {sorted(keys[0])}, green sets {sorted(keys[1])}"]
            continue
        a, b = normalize_layer_text(blue[name], "blue"), normalize_layer_text(green[name], "green")
        if a != b:
            lines = a.splitlines(), b.splitlines()
            out[name] = list(difflib.unified_diff(*lines, f"blue/{name}", f"green/{name}", n=0, lineterm=""))
    return out


def read_layer(directory: Path) -> dict[str, str]:
    """The files Terraform reads in a rendered layer directory (generated state and caches excluded)."""
    if not directory.is_dir():
        return {}
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(directory.iterdir())
            if p.is_file() and (p.suffix == ".tf" or p.name == VALUES_FILE)}


def _keys(text: str) -> set[str]:
    try:
        data = json.loads(text)
    except ValueError:
        return {"<invalid JSON>"}
    return set(data) if isinstance(data, dict) else {"<not an object>"}

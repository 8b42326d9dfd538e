"""Render an environment file into four Terraform root modules (layers), one state each.

`build/ENV/{base,blue,green,traffic}/` are generated from `templates/` (Jinja2, StrictUndefined)
and call the modules in `modules/` by relative path. Blue and green come from one template set, so
they are identical by construction apart from the color word, the backend key and their
`terraform.tfvars.json`. The rendered text is already `terraform fmt` clean.

docs/render-contract.md is the contract this module implements.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from jinja2 import Environment as JinjaEnvironment
from jinja2 import FileSystemLoader, StrictUndefined, TemplateError

from bgtool.config.dashboard import dashboard_name
from bgtool.config.schema import VERSION_PATTERN, Color, Environment, LoadedEnvironment
from bgtool.errors import BgtoolError

LAYERS: tuple[str, ...] = ("base", "blue", "green", "traffic")
"""Every layer, in apply order (destroy in reverse)."""

COLOR_LAYERS: tuple[str, ...] = (Color.BLUE.value, Color.GREEN.value)

LAYER_FILES: tuple[str, ...] = (
    "versions.tf",
    "backend.tf",
    "providers.tf",
    "main.tf",
    "variables.tf",
    "outputs.tf",
    "terraform.tfvars.json",
)

UPSTREAM: Mapping[str, tuple[str, ...]] = {
    "base": (),
    "blue": ("base",),
    "green": ("base",),
    "traffic": ("base",),
}

MODULES: tuple[str, ...] = (
    "network", "alb", "dashboard", "color", "traffic", "dns", "workers", "session-store", "ecs-cluster", "ecs-service",
    "ecs-workers",
)

# Services the provider talks to on the embedded AWS (every one gets the endpoint).
EMBEDDED_SERVICES: tuple[str, ...] = (
    "applicationautoscaling",
    "autoscaling",
    "cloudwatch",
    "dynamodb",
    "ec2",
    "ecs",
    "elbv2",
    "iam",
    "logs",
    "route53",
    "s3",
    "sqs",
    "sts",
    "ssm",
)

# Jinja2 renders user data with this in place of the version; it becomes ${var.app_version} in
# the HCL heredoc so that `-var app_version=...` changes the user data too.
_VERSION_SENTINEL = "@@BGTOOL-APP-VERSION@@"
_STORE_SENTINELS = {key: f"@@BGTOOL-SESSION-STORE-{key.upper()}@@" for key in ("name", "endpoint", "user")}
# Placeholders of the user data that become Terraform interpolations once its text is escaped.
_INTERPOLATED = {_VERSION_SENTINEL: "${var.app_version}",
                 **{sentinel: f"${{local.base.session_store.{key}}}" for key, sentinel in _STORE_SENTINELS.items()}}
_HEREDOC_MARKER = "BGTOOL_USER_DATA"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_KEYWORDS = frozenset({"true", "false", "null", "for", "in", "if"})


class RenderError(BgtoolError):
    """A template or a user-data template could not be rendered; nothing was written."""


def layer_dir(root: Path, env: str, layer: str) -> Path:
    """Where layer LAYER of environment ENV is rendered: root/build/ENV/LAYER."""
    if layer not in LAYERS:
        raise ValueError(f"unknown layer {layer!r}; layers are {', '.join(LAYERS)}")
    return Path(root) / "build" / env / layer


def state_path(root: Path, env: str, layer: str) -> Path:
    """Absolute path of a layer's state with the local backend (outside build/)."""
    return Path(root).resolve() / ".bgtool" / "state" / env / f"{layer}.tfstate"


def color_vars(config: Environment, color: Color) -> dict[str, object]:
    """The variables of a color layer, as the environment file gives them.

    A retired color keeps its version and max_size but runs no instances (desired and min_size 0).
    The version variable is `app_version`: Terraform reserves the name `version`.
    """
    settings = config.colors.of(Color(color))
    retired = settings.retired
    out: dict[str, object] = {
        "app_version": settings.version,
        "desired": 0 if retired else settings.desired,
        "min_size": 0 if retired else settings.min_size,
        "max_size": settings.max_size,
    }
    if config.workers is not None:  # only the live color's workers run; deploying the idle one starts none
        out["workers_desired"] = workers_desired(config, Color(color))
    return out


def workers_desired(config: Environment, color: Color, *, live: Color | None = None) -> int:
    """The worker group size of COLOR when LIVE (default: the file's active color) is live."""
    live = config.active_color if live is None else live
    if config.workers is None or Color(color) is not live or config.colors.of(Color(color)).retired:
        return 0
    return config.workers.size


def traffic_vars(
    active: Color,
    *,
    blue_weight: int | None = None,
    green_weight: int | None = None,
    test_color: Color | None = None,
) -> dict[str, object]:
    """The variables of the traffic layer.

    By default all production traffic goes to ACTIVE and the test listener to the other color.
    Give one weight and the other is its complement; give both and they must sum to 100.
    """
    active = Color(active)
    if blue_weight is None and green_weight is None:
        blue_weight = 100 if active is Color.BLUE else 0
    if blue_weight is None:
        blue_weight = 100 - _weight("green_weight", green_weight)
    if green_weight is None:
        green_weight = 100 - _weight("blue_weight", blue_weight)
    blue_weight = _weight("blue_weight", blue_weight)
    green_weight = _weight("green_weight", green_weight)
    if blue_weight + green_weight != 100:
        raise ValueError(f"blue_weight + green_weight must be 100, got {blue_weight} + {green_weight}")
    test = active.other if test_color is None else Color(test_color)
    return {"blue_weight": blue_weight, "green_weight": green_weight, "test_color": test.value}


def _weight(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise ValueError(f"{name} must be an integer between 0 and 100, got {value!r}")
    return value


def layer_vars(config: Environment, layer: str) -> dict[str, object]:
    """The content of a layer's terraform.tfvars.json."""
    if layer == "base":
        return {}
    if layer in COLOR_LAYERS:
        return color_vars(config, Color(layer))
    if layer == "traffic":
        return traffic_vars(config.active_color)
    raise ValueError(f"unknown layer {layer!r}")


def render_environment(root: Path, loaded: LoadedEnvironment) -> dict[str, Path]:
    """Render all four layers of LOADED under root/build/ENV; returns layer -> directory.

    Everything is rendered in memory first, so a template error writes nothing. Files are
    rewritten only when their content changed (stable mtimes), stale `*.tf` files are removed,
    and anything else in a layer directory (`.terraform/`, the lock file) is left alone.
    """
    root = Path(root)
    rendered = {layer: render_layer(root, loaded, layer) for layer in LAYERS}
    dirs: dict[str, Path] = {}
    for layer, files in rendered.items():
        target = layer_dir(root, loaded.env, layer)
        _write_layer(target, files)
        dirs[layer] = target
    if loaded.config.state.backend == "local":
        state_path(root, loaded.env, "base").parent.mkdir(parents=True, exist_ok=True)
    return dirs


def render_layer(root: Path, loaded: LoadedEnvironment, layer: str) -> dict[str, str]:
    """Render one layer in memory: file name -> content."""
    root = Path(root)
    jinja = _jinja(root / "templates")
    context = _context(root, loaded, layer)
    kind = "color" if layer in COLOR_LAYERS else layer
    sources = {
        "versions.tf": "layer/versions.tf.j2",
        "backend.tf": "layer/backend.tf.j2",
        "providers.tf": "layer/providers.tf.j2",
        "main.tf": f"{kind}/main.tf.j2",
        "variables.tf": f"{kind}/variables.tf.j2",
        "outputs.tf": f"{kind}/outputs.tf.j2",
    }
    files: dict[str, str] = {}
    for name, source in sources.items():
        header = (
            f"# Generated by `bgtool render {loaded.env}` from templates/{source}: do not edit.\n"
            f"# Change environments/{loaded.env}.yaml (or the template) and render again."
        )
        try:
            text = jinja.get_template(source).render(context, header=header)
        except TemplateError as exc:
            raise RenderError(
                f"cannot render templates/{source} for layer {layer!r}: {exc}",
                hint="Nothing was written. Fix the template and render again.",
            ) from exc
        files[name] = _tidy(text)
    files["terraform.tfvars.json"] = json.dumps(layer_vars(loaded.config, layer), indent=2) + "\n"
    return files


# --------------------------------------------------------------------------------------------
# Template context
# --------------------------------------------------------------------------------------------


def _context(root: Path, loaded: LoadedEnvironment, layer: str) -> dict[str, Any]:
    config = loaded.config
    here = layer_dir(root, loaded.env, layer)
    context: dict[str, Any] = {
        "env": loaded.env,
        "layer": layer,
        "config": config,
        "backend": {"type": config.state.backend, "settings": _backend(root, loaded, layer)},
        "state_location": _state_location(root, loaded, layer),
        "upstream_layers": UPSTREAM[layer],
        "remote_state_config": {up: _backend(root, loaded, up, remote=True) for up in UPSTREAM[layer]},
        "provider_settings": _provider_settings(config),
        "provider_endpoints": {svc: _endpoint(config) for svc in EMBEDDED_SERVICES},
        "default_tags": _default_tags(loaded, layer),
        "module_source": {m.replace("-", "_"): _relative(here, Path(root) / "modules" / m) for m in MODULES},
        "listener_ports": _listener_ports(config),
        "version_pattern": VERSION_PATTERN,
        "dashboard_name": dashboard_name(config),
    }
    if layer in COLOR_LAYERS:
        context.update(color=layer)
    if layer in COLOR_LAYERS and config.app.compute == "autoscaling":  # a task has an image, no user data
        source, script = _user_data(root, loaded, Color(layer))
        context.update(user_data=script, user_data_source=source, heredoc_marker=_HEREDOC_MARKER)
    if layer in COLOR_LAYERS and config.ecs is not None:
        context.update(container_environment=container_environment(config))
    return context


class HclExpr(str):
    """A Terraform expression, rendered as it is rather than as a quoted string."""


def container_environment(config: Environment) -> dict[str, str]:
    """An ECS task's plain variables: the file's, and with a session store what an instance's user data
    writes into /etc/bgtool-app.env (templates/user-data.sh.j2), from the base layer's outputs."""
    store = config.state_store
    out: dict[str, str] = dict(config.ecs.environment) if config.ecs else {}
    if store is None:
        return out
    out["BGTOOL_SESSION_STORE"] = HclExpr("local.base.session_store.kind")
    if store.kind == "dynamodb":
        out["BGTOOL_SESSION_TABLE"] = HclExpr("local.base.session_store.name")
    else:
        out["BGTOOL_SESSION_ENDPOINT"] = HclExpr("local.base.session_store.endpoint")
        out["BGTOOL_SESSION_USER"] = HclExpr("local.base.session_store.user")
    out["BGTOOL_SESSION_TTL_SECONDS"] = str(store.ttl_hours * 3600)
    return out


def _endpoint(config: Environment) -> str:
    return (config.aws.endpoint or "").rstrip("/")


def _backend(root: Path, loaded: LoadedEnvironment, layer: str, *, remote: bool = False) -> dict:
    """Settings of the layer's backend block (or of a terraform_remote_state config)."""
    config, state = loaded.config, loaded.config.state
    if state.backend == "local":
        return {"path": str(state_path(root, loaded.env, layer))}
    settings: dict[str, Any] = {
        "bucket": state.bucket,
        "key": f"{state.key_prefix}/{loaded.env}/{layer}.tfstate",
        "region": config.aws.region,
    }
    if not remote:
        settings.update(dynamodb_table=state.lock_table, encrypt=True)
    if config.aws.profile:
        settings["profile"] = config.aws.profile
    if config.embedded:
        endpoint = _endpoint(config)
        settings.update(
            use_path_style=True,
            skip_credentials_validation=True,
            skip_metadata_api_check=True,
            skip_region_validation=True,
            skip_requesting_account_id=True,
            endpoints={"s3": endpoint, "dynamodb": endpoint, "sts": endpoint},
        )
    return settings


def _state_location(root: Path, loaded: LoadedEnvironment, layer: str) -> str:
    settings = _backend(root, loaded, layer)
    if loaded.config.state.backend == "local":
        return f"local file {settings['path']}"
    return f"s3://{settings['bucket']}/{settings['key']} (lock table {settings['dynamodb_table']})"


def _provider_settings(config: Environment) -> dict[str, Any]:
    settings: dict[str, Any] = {"region": config.aws.region}
    if config.aws.profile:
        settings["profile"] = config.aws.profile
    return settings


def _default_tags(loaded: LoadedEnvironment, layer: str) -> dict[str, str]:
    tags = dict(loaded.config.tags)
    tags.update({"bgtool:env": loaded.env, "bgtool:layer": layer, "bgtool:managed-by": "bgtool"})
    return tags


def _listener_ports(config: Environment) -> list[int]:
    """The public listener ports (production and, with TLS, the redirect); the test port has its own CIDRs."""
    listeners = config.listeners
    ports = [listeners.production_port]
    if listeners.certificate_arn:
        ports.append(listeners.http_redirect_port)
    return list(dict.fromkeys(ports))


def _relative(start: Path, target: Path) -> str:
    rel = PurePosixPath(Path(os.path.relpath(target.resolve(), start.resolve())).as_posix())
    text = str(rel)
    return text if text.startswith("../") else f"./{text}"


# --------------------------------------------------------------------------------------------
# User data
# --------------------------------------------------------------------------------------------


def _session_store(config: Environment) -> dict[str, Any] | None:
    """What the user data may say about the shared session store; its name, endpoint and user are
    the base layer's outputs, known only once it is applied (interpolations, like the version)."""
    store = config.state_store
    if store is None:
        return None
    return {"kind": store.kind, "name": _STORE_SENTINELS["name"], "endpoint": _STORE_SENTINELS["endpoint"],
            "user": _STORE_SENTINELS["user"], "ttl_seconds": store.ttl_hours * 3600}


def _user_data(root: Path, loaded: LoadedEnvironment, color: Color) -> tuple[str, str]:
    """(source, HCL heredoc body) of a color's user data; version -> ${var.app_version}."""
    config = loaded.config
    custom = config.app.user_data_template
    if custom:
        path = (Path(root) / custom).resolve()
        if not path.is_file():
            raise RenderError(
                f"environments/{loaded.env}.yaml: app.user_data_template {custom!r} not found (looked for {path})",
                hint="The path is relative to the project root. Nothing was written.",
            )
        jinja = _jinja(path.parent)
        name, shown = path.name, custom
    else:
        jinja, name = _jinja(Path(root) / "templates"), "user-data.sh.j2"
        shown = f"templates/{name}"
    try:
        text = jinja.get_template(name).render(
            env=loaded.env,
            config=config,
            app=config.app,
            color=color.value,
            version=_VERSION_SENTINEL,
            session_store=_session_store(config),
        )
    except TemplateError as exc:
        raise RenderError(
            f"cannot render the user data template {shown}: {exc}",
            hint="Nothing was written. Fix the template and render again.",
        ) from exc
    if not text.endswith("\n"):
        text += "\n"
    if any(line.strip() == _HEREDOC_MARKER for line in text.splitlines()):
        raise RenderError(f"the user data template {shown} contains a line {_HEREDOC_MARKER!r}")
    # Literal text in an HCL template: escape interpolation and directive openers, then put the
    # version back as a real interpolation.
    text = text.replace("${", "$${").replace("%{", "%%{")
    for sentinel, expression in _INTERPOLATED.items():
        text = text.replace(sentinel, expression)
    return shown, text


# --------------------------------------------------------------------------------------------
# Jinja2 and HCL formatting
# --------------------------------------------------------------------------------------------


def _jinja(directory: Path) -> JinjaEnvironment:
    jinja = JinjaEnvironment(
        loader=FileSystemLoader(str(directory)),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    jinja.filters.update(
        hcl=hcl_value,
        hcl_attrs=hcl_attrs,
        hcl_object=hcl_object,
        shell_quote=lambda value: shlex.quote(str(value)),
    )
    return jinja


def hcl_string(value: str) -> str:
    """A quoted HCL string literal holding exactly VALUE (no interpolation)."""
    out = []
    for ch in value:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    text = "".join(out).replace("${", "$${").replace("%{", "%%{")
    return f'"{text}"'


def hcl_value(value: Any, indent: int = 0) -> str:
    """An HCL literal: scalars and lists on one line, maps as aligned multi-line objects."""
    if value is None:
        return "null"
    if isinstance(value, HclExpr):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return hcl_string(value)
    if isinstance(value, Mapping):
        return hcl_object(value, indent)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(hcl_value(v, indent) for v in value) + "]"
    return hcl_string(str(value))


def _hcl_key(key: str) -> str:
    return key if _IDENTIFIER.match(key) and key not in _KEYWORDS else hcl_string(key)


def hcl_attrs(mapping: Mapping[str, Any], indent: int) -> str:
    """`key = value` lines aligned the way `terraform fmt` aligns them (no trailing newline).

    fmt aligns the `=` of consecutive single-line attributes; a multi-line value stands alone.
    """
    pad = " " * indent
    lines: list[str] = []
    run: list[tuple[str, str]] = []

    def flush() -> None:
        width = max((len(k) for k, _ in run), default=0)
        lines.extend(f"{pad}{k.ljust(width)} = {v}" for k, v in run)
        run.clear()

    for key, value in mapping.items():
        name, text = _hcl_key(str(key)), hcl_value(value, indent)
        if "\n" in text:
            flush()
            lines.append(f"{pad}{name} = {text}")
        else:
            run.append((name, text))
    flush()
    return "\n".join(lines)


def hcl_object(mapping: Mapping[str, Any], indent: int) -> str:
    """A multi-line HCL object whose closing brace sits at INDENT."""
    if not mapping:
        return "{}"
    return "{\n" + hcl_attrs(mapping, indent + 2) + "\n" + " " * indent + "}"


_HEREDOC = re.compile(rf"(<<{_HEREDOC_MARKER}\n.*?^{_HEREDOC_MARKER}$)", re.S | re.M)


def _tidy(text: str) -> str:
    """Collapse runs of blank lines left by template conditionals (never inside a heredoc) and
    end with exactly one newline, as `terraform fmt` leaves files."""
    parts = _HEREDOC.split(text)
    for i in range(0, len(parts), 2):
        parts[i] = re.sub(r"\n{3,}", "\n\n", parts[i])
    return "".join(parts).rstrip("\n") + "\n"


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _write_layer(target: Path, files: Mapping[str, str]) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = target / name
        try:
            if path.read_text(encoding="utf-8") == content:
                continue
        except (FileNotFoundError, UnicodeDecodeError):
            pass
        _atomic_write(path, content)
    for stale in target.glob("*.tf"):
        if stale.name not in files and stale.is_file():
            stale.unlink()


def _atomic_write(path: Path, content: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(content)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

"""One environment, ready to run Terraform in: validated file, rendered layers, backend, CLI config.

Commands build a Workspace and ask it for a runner per layer; preparing is idempotent and cheap
when nothing changed (files are rewritten only on change, init runs only when its inputs change).
"""

from __future__ import annotations

import os
from datetime import datetime
from functools import cached_property
from pathlib import Path

from bgtool.aws.session import Aws, terraform_env
from bgtool.config.project import state_dir
from bgtool.config.schema import LoadedEnvironment, load_environment
from bgtool.events import Note, Sink, TerraformActivity, discard
from bgtool.render.templates import LAYERS, render_environment
from bgtool.terraform.backend import ensure_backend
from bgtool.terraform.cliconfig import resolve_mirror, write_cli_config
from bgtool.terraform.events import Event
from bgtool.terraform.runner import EventSink, LockRecovery, Terraform, TerraformError, check_version
from bgtool.terraform.statelocks import clear_own_lost_lock, lock_conflict

ENDPOINT_ENV = "BGTOOL_AWS_ENDPOINT"
REHEARSAL_ENV = "BGTOOL_REHEARSAL_ENDPOINT"
"""Points every environment, also one whose file names no endpoint, at an AWS-compatible endpoint (the
embedded AWS): the pipelines of real environments rehearsed end to end without an account. Which
environments a pipeline runs is still decided by the files (`bgtool changed`), so a rehearsed one is
treated as real there."""


def load(root: Path, env: str) -> LoadedEnvironment:
    """Load ENV, with BGTOOL_AWS_ENDPOINT moving an embedded environment to another server and
    BGTOOL_REHEARSAL_ENDPOINT moving any environment there."""
    return load_environment(root, env, endpoint_override=os.environ.get(ENDPOINT_ENV),
                            rehearsal_endpoint=os.environ.get(REHEARSAL_ENV))


class Workspace:
    """`emit` receives the progress events (bgtool.events) of everything done through this workspace."""

    def __init__(self, root: Path, env: str, emit: Sink = discard) -> None:
        self.root = root
        self.env = env
        self.emit = emit
        self.loaded = load(root, env)
        self.config = self.loaded.config
        self.aws = Aws(self.config)
        self._dirs: dict[str, Path] | None = None

    def reload(self) -> None:
        """Re-read the environment file after bgtool itself rewrote it."""
        self.loaded = load(self.root, self.env)
        self.config = self.loaded.config
        self._dirs = None

    @cached_property
    def cli_config(self) -> Path:
        check_version()
        mirror = resolve_mirror(self.config.terraform.provider_mirror)
        return write_cli_config(state_dir(self.root), mirror)

    def render(self) -> dict[str, Path]:
        if self._dirs is None:
            self._dirs = render_environment(self.root, self.loaded)
        return self._dirs

    def prepare(self) -> list[str]:
        """Render and make sure the state backend exists; returns what had to be created."""
        self.render()
        _ = self.cli_config
        return ensure_backend(self.config, self.aws)

    def terraform(self, layer: str, on_event: EventSink | None = None, *, init: bool = True) -> Terraform:
        if layer not in LAYERS:
            raise ValueError(f"unknown layer {layer!r}")
        tf = Terraform(
            self.render()[layer], layer=layer, cli_config=self.cli_config,
            extra_env=terraform_env(self.config), on_event=on_event or self._activity(layer),
            on_lock_lost=self._lost_lock_clearer(layer),
        )
        if init:
            tf.init()
        return tf

    def _lost_lock_clearer(self, layer: str) -> LockRecovery:
        """Lets a run that failed on a lock it took itself (a retried lock request) clear it and go on,
        rather than leave every later run of the layer blocked until someone runs `bgtool unlock`."""

        def clear(command: str, exc: TerraformError, started: datetime, ended: datetime) -> bool:
            holder = lock_conflict(exc.diagnostics)
            if holder is None:
                return False
            cleared = clear_own_lost_lock(self.env, layer, self.render()[layer], holder, self.config, self.aws,
                                          command=command, started=started, ended=ended)
            if cleared is not None:
                self.emit(Note(f"terraform {command} of layer '{layer}' was refused the state lock it had taken "
                               f"itself (a lock request retried after its answer was lost); cleared "
                               f"lock {cleared.lock_id} and ran again", "warn"))
            return cleared is not None

        return clear

    def _activity(self, layer: str) -> EventSink:
        """Terraform's stream events of LAYER, forwarded to the workspace's sink."""

        def forward(event: Event) -> None:
            diagnostic = event.raw.get("diagnostic") or {}
            self.emit(TerraformActivity(layer, event.kind, event.resource, event.action, event.elapsed,
                                        event.message, diagnostic.get("severity")))

        return forward

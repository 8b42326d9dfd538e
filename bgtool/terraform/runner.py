"""A thin layer over the real `terraform` binary.

Every command runs with `-json -input=false` and TF_IN_AUTOMATION=1, so its output is a stream of
events: they drive live progress as they arrive and are accumulated into a summary, and
diagnostics become structured errors (summary, detail, file:line, resource address) instead of
scraped text.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bgtool.errors import BgtoolError
from bgtool.terraform.events import Diagnostic, Event, StreamSummary, parse_line

MIN_VERSION = (1, 5)
INIT_STAMP = "bgtool-init.sha256"

EventSink = Callable[[Event], None]


class TerraformError(BgtoolError):
    """Terraform failed; carries its diagnostics and which layer and command failed."""

    def __init__(
        self,
        layer: str,
        command: str,
        diagnostics: Sequence[Diagnostic],
        stderr: str = "",
        failed: Sequence[str] = (),
    ) -> None:
        self.layer = layer
        self.command = command
        self.diagnostics = list(diagnostics)
        self.failed_resources = list(failed)
        lines = [f"terraform {command} failed in layer '{layer}'"]
        if failed:
            lines.append(f"failed resources: {', '.join(failed)}")
        lines += [d.render() for d in self.diagnostics if d.severity == "error"]
        if not any(d.severity == "error" for d in self.diagnostics) and stderr.strip():
            lines.append(stderr.strip()[-2000:])
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class RunResult:
    exit_code: int
    summary: StreamSummary


def terraform_binary() -> str:
    path = shutil.which("terraform")
    if not path:
        raise BgtoolError(
            "terraform was not found on PATH",
            hint=f"Install Terraform >= {MIN_VERSION[0]}.{MIN_VERSION[1]} and run again.",
        )
    return path


def check_version(binary: str | None = None) -> tuple[int, int, int]:
    binary = binary or terraform_binary()
    out = subprocess.run(
        [binary, "version", "-json"], capture_output=True, text=True, check=False,
        env={**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "CHECKPOINT_DISABLE": "1"},
    )
    try:
        version = json.loads(out.stdout)["terraform_version"]
    except (ValueError, KeyError):
        version = out.stdout
    found = parse_version(version)
    if found is None or found[:2] < MIN_VERSION:
        raise BgtoolError(
            f"terraform {version.strip() or '(unknown version)'} at {binary} is too old or unreadable",
            hint=f"bgtool needs Terraform >= {MIN_VERSION[0]}.{MIN_VERSION[1]}.",
        )
    return found


def parse_version(text: str) -> tuple[int, int, int] | None:
    match = re.search(r"(\d+)\.(\d+)\.(\d+)", text)
    return tuple(int(x) for x in match.groups()) if match else None  # type: ignore[return-value]


class Terraform:
    """Runs terraform in one layer directory with a fixed process environment."""

    def __init__(
        self,
        workdir: Path,
        *,
        layer: str,
        cli_config: Path,
        extra_env: Mapping[str, str] | None = None,
        on_event: EventSink | None = None,
    ) -> None:
        self.workdir = workdir
        self.layer = layer
        self.binary = terraform_binary()
        self.on_event = on_event
        self.env = {
            **os.environ,
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
            "TF_CLI_CONFIG_FILE": str(cli_config),
            **(extra_env or {}),
        }

    # -- commands -------------------------------------------------------------------------
    def init(self, *, force: bool = False) -> bool:
        """Initialise once per backend/provider/module shape; returns whether init ran."""
        stamp = self.workdir / ".terraform" / INIT_STAMP
        digest = self._init_digest()
        if not force and stamp.exists() and stamp.read_text() == digest:
            return False
        self._run(["init", "-json", "-input=false", "-reconfigure", "-upgrade=false"], "init")
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(digest)
        return True

    def plan(
        self,
        *,
        variables: Mapping[str, object] | None = None,
        out: Path | None = None,
        refresh_only: bool = False,
        refresh: bool = True,
        lock_timeout: str = "0s",
    ) -> RunResult:
        """Exit code as `-detailed-exitcode`: 0 nothing to do, 2 changes."""
        args = ["plan", "-json", "-input=false", "-detailed-exitcode", f"-lock-timeout={lock_timeout}"]
        args += ["-refresh-only"] if refresh_only else []
        args += [] if refresh else ["-refresh=false"]
        args += [f"-out={out}"] if out else []
        return self._run(args + _var_args(variables), "plan", ok=(0, 2))

    def apply(
        self,
        *,
        plan_file: Path | None = None,
        variables: Mapping[str, object] | None = None,
        refresh: bool = True,
        lock_timeout: str = "0s",
    ) -> RunResult:
        args = ["apply", "-json", "-input=false", f"-lock-timeout={lock_timeout}"]
        if plan_file is not None:
            return self._run([*args, str(plan_file)], "apply")
        args += ["-auto-approve"] + ([] if refresh else ["-refresh=false"])
        return self._run(args + _var_args(variables), "apply")

    def show_plan(self, plan_file: Path) -> dict[str, object]:
        out = self._capture(["show", "-json", str(plan_file)], "show")
        return json.loads(out)

    def outputs(self) -> dict[str, object]:
        out = self._capture(["output", "-json"], "output")
        return {k: v.get("value") for k, v in json.loads(out or "{}").items()}

    # -- plumbing -------------------------------------------------------------------------
    def _init_digest(self) -> str:
        """Init is needed when the backend, providers or module calls change, not for edits."""
        parts: list[str] = []
        for name in ("backend.tf", "versions.tf"):
            path = self.workdir / name
            parts.append(path.read_text() if path.exists() else "")
        for tf in sorted(self.workdir.glob("*.tf")):
            parts += re.findall(r'^\s*source\s*=\s*".*"$', tf.read_text(), flags=re.M)
        parts.append(self.env.get("TF_CLI_CONFIG_FILE", ""))
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def _run(self, args: list[str], command: str, ok: tuple[int, ...] = (0,)) -> RunResult:
        summary = StreamSummary()
        proc = subprocess.Popen(
            [self.binary, *args], cwd=self.workdir, env=self.env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=1,
        )
        assert proc.stdout is not None and proc.stderr is not None
        for line in proc.stdout:
            event = parse_line(line)
            if event is None:
                continue
            summary.feed(event)
            if self.on_event:
                self.on_event(event)
        stderr = proc.stderr.read()
        code = proc.wait()
        if code not in ok:
            raise TerraformError(self.layer, command, summary.diagnostics, stderr, summary.failed)
        return RunResult(code, summary)

    def _capture(self, args: list[str], command: str) -> str:
        proc = subprocess.run(
            [self.binary, *args], cwd=self.workdir, env=self.env, text=True,
            capture_output=True, check=False,
        )
        if proc.returncode != 0:
            raise TerraformError(self.layer, command, [], proc.stderr)
        return proc.stdout


def _var_args(variables: Mapping[str, object] | None) -> list[str]:
    out: list[str] = []
    for key, value in (variables or {}).items():
        text = value if isinstance(value, str) else json.dumps(value)
        out.append(f"-var={key}={text}")
    return out

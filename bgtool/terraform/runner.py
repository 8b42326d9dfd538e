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
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from bgtool.errors import BgtoolError
from bgtool.interrupts import held_back
from bgtool.terraform.cliconfig import provider_install_advice, provider_install_failed
from bgtool.terraform.events import Diagnostic, Event, StreamSummary, parse_line

MIN_VERSION = (1, 5)
INIT_STAMP = "bgtool-init.sha256"
STOP_GRACE_SECONDS = 120
STDERR_TAIL = 64 * 1024  # characters of stderr kept for error messages; the rest is read and dropped
_MIRROR_PATH = re.compile(r'filesystem_mirror\s*\{[^}]*?\bpath\s*=\s*"([^"]+)"', re.S)

EventSink = Callable[[Event], None]
LockRecovery = Callable[[str, "TerraformError", datetime, datetime], bool]
"""Called with (command, error, started, ended) when a run failed on the state lock; True: it cleared a
lock provably left by that very run, and the run is repeated once."""


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
        if provider_install_failed("\n".join(lines)):
            # In the message, not only a hint: `bgtool plan` and drift report a layer's error as its message.
            lines.append(provider_install_advice())
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


# The Go runtime of terraform and of the providers it starts (they inherit its environment). Most of a
# command's CPU is the AWS provider starting and loading its schema, and at GOGC=100 the collector runs
# all through it: GOGC=400 cut a plan's and an apply's CPU seconds by about 30% for about 30% more peak
# memory (~780 MiB), measured side by side by bench/terraform_runtime.py. A GOGC the caller set wins.
GO_RUNTIME: dict[str, str] = {"GOGC": "400"}


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
        on_lock_lost: LockRecovery | None = None,
    ) -> None:
        self.workdir = workdir
        self.on_lock_lost = on_lock_lost
        self.layer = layer
        self.binary = terraform_binary()
        self.on_event = on_event
        self.env = {
            **GO_RUNTIME,
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
        lock: bool = True,
        lock_timeout: str = "0s",
    ) -> RunResult:
        """Exit code as `-detailed-exitcode`: 0 nothing to do, 2 changes.

        `lock=False` for a plan that is only looked at (`bgtool plan`, drift): it writes nothing, so it
        needs no state lock, and the read-only pipeline roles may not write lock items. A plan that
        is applied afterwards keeps the lock, so nothing changes the state between plan and apply.
        """
        args = ["plan", "-json", "-input=false", "-detailed-exitcode"]
        args += [f"-lock-timeout={lock_timeout}"] if lock else ["-lock=false"]
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

    def state(self) -> dict[str, object]:
        """The layer's stored state (`state pull`); unlike `show -json`, no provider is started."""
        out = self._capture(["state", "pull"], "state pull")
        return json.loads(out) if out.strip() else {}

    def outputs(self) -> dict[str, object]:
        out = self._capture(["output", "-json"], "output")
        return {k: v.get("value") for k, v in json.loads(out or "{}").items()}

    # -- plumbing -------------------------------------------------------------------------
    def _init_digest(self) -> str:
        """Init is needed when the backend, providers or module calls change, not for edits.

        Where providers come from counts too: the CLI config's content (not only its path, which
        stays the same when bgtool rewrites it for another mirror) and the provider versions a
        filesystem mirror offers, so pointing at another mirror or adding a version re-runs init.
        """
        parts: list[str] = []
        for name in ("backend.tf", "versions.tf"):
            path = self.workdir / name
            parts.append(path.read_text() if path.exists() else "")
        for tf in sorted(self.workdir.glob("*.tf")):
            parts += re.findall(r'^\s*source\s*=\s*".*"$', tf.read_text(), flags=re.M)
        config = self.env.get("TF_CLI_CONFIG_FILE", "")
        parts.append(config)
        text = _read_text(Path(config)) if config else ""
        parts.append(text)
        for mirror in _MIRROR_PATH.findall(text):
            parts += mirror_listing(Path(mirror))
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def _run(self, args: list[str], command: str, ok: tuple[int, ...] = (0,)) -> RunResult:
        started = datetime.now(UTC)
        try:
            return self._run_once(args, command, ok)
        except TerraformError as exc:
            if self.on_lock_lost is None or not self.on_lock_lost(command, exc, started, datetime.now(UTC)):
                raise
        return self._run_once(args, command, ok)

    def _run_once(self, args: list[str], command: str, ok: tuple[int, ...]) -> RunResult:
        summary = StreamSummary()
        proc = subprocess.Popen(
            [self.binary, *args], cwd=self.workdir, env=self.env, encoding="utf-8", errors="replace",
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=1,
            start_new_session=True,  # a terminal's Ctrl-C reaches bgtool only; bgtool decides (_stop)
        )
        assert proc.stdout is not None and proc.stderr is not None
        tail = _StderrTail(proc.stderr)  # drained beside stdout: a full stderr pipe would stall terraform
        try:
            for line in proc.stdout:
                event = parse_line(line)
                if event is None:
                    continue
                summary.feed(event)
                if self.on_event:
                    self.on_event(event)
            code = proc.wait()
        except BaseException:
            _stop(proc)
            raise
        stderr = tail.text()
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


def _stop(proc: subprocess.Popen[str]) -> None:
    """bgtool was interrupted: Terraform gets the interrupt too and stops gracefully (finishes the calls in
    flight, writes its state, releases its state lock), and bgtool waits for that instead of leaving it
    running unseen. Killed only if it does not stop within STOP_GRACE_SECONDS."""
    with held_back():
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        drain = threading.Thread(target=lambda: proc.stdout and proc.stdout.read(), daemon=True)
        drain.start()
        try:
            proc.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class _StderrTail:
    """Reads a stream to its end on a thread of its own, keeping only the last STDERR_TAIL characters."""

    def __init__(self, stream: IO[str]) -> None:
        self._chunks: deque[str] = deque()
        self._size = 0
        self._thread = threading.Thread(target=self._drain, args=(stream,), name="terraform-stderr", daemon=True)
        self._thread.start()

    def _drain(self, stream: IO[str]) -> None:
        with stream:
            while chunk := stream.read(8192):
                self._chunks.append(chunk)
                self._size += len(chunk)
                while self._size - len(self._chunks[0]) >= STDERR_TAIL:
                    self._size -= len(self._chunks.popleft())

    def text(self) -> str:
        self._thread.join()
        return "".join(self._chunks)


def mirror_listing(mirror: Path) -> list[str]:
    """The provider packages a filesystem mirror offers, as relative paths (names only: cheap).

    Both layouts: unpacked HOSTNAME/NAMESPACE/TYPE/VERSION/OS_ARCH and packed
    HOSTNAME/NAMESPACE/TYPE/terraform-provider-TYPE_VERSION_OS_ARCH.zip.
    """
    found: list[str] = []

    def walk(directory: Path, depth: int) -> None:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            rel = f"{directory.relative_to(mirror) / entry.name}"
            if depth == 5 or not entry.is_dir():
                found.append(rel)
            else:
                walk(Path(entry.path), depth + 1)

    walk(mirror, 1)
    return found


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _var_args(variables: Mapping[str, object] | None) -> list[str]:
    out: list[str] = []
    for key, value in (variables or {}).items():
        text = value if isinstance(value, str) else json.dumps(value)
        out.append(f"-var={key}={text}")
    return out

"""A GitHub Actions runner for the rehearsal of `.github/workflows/`: the workflows' own `run:` steps,
read from the YAML, in job order, with the files a runner provides.

What stands in for GitHub:
- the repository is a local bare git remote; `actions/checkout` is a clone of the event's commit at
  the depth the step asks for (a pull request's head, where GitHub would check out a merge commit);
- `actions/setup-python`, `hashicorp/setup-terraform` and `pip install .` are this machine's tools: the
  test's virtualenv, which has bgtool installed, and the terraform on PATH;
- `aws-actions/configure-aws-credentials` hands out the embedded AWS: its credentials, and its endpoint
  as BGTOOL_REHEARSAL_ENDPOINT, so real environments' commands reach it;
- artifacts are folders, and an upload's `artifact-url` output is the file:// URL of its folder; the
  sticky pull-request comment, pull requests and issues are recorded by a `gh` stand-in and by this
  runner, as GitHub would keep them;
- a reusable workflow (`uses: ./...` on a job: the checks) is not run here: `make test` runs the same
  `make lint` and unit tests itself.
A cancellation is sent as the runner sends it: SIGINT to the step's process, SIGTERM 7.5 s later and
SIGKILL to the whole tree 2.5 s after that.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

import yaml

from bgtool.aws.session import EMBEDDED_CREDENTIALS
from tests.helpers import REPO, git

WORKFLOWS = REPO / ".github" / "workflows"
SIGINT_TO_SIGTERM, SIGTERM_TO_KILL = 7.5, 2.5

STAND_IN_PIP = """#!/usr/bin/env bash
# the test's virtualenv already has bgtool installed; the step may only ask for `pip install .` here
[ "$*" = "install ." ] && [ -f pyproject.toml ] || { echo "stand-in pip: unexpected: pip $*" >&2; exit 1; }
"""

STAND_IN_GH = """#!/usr/bin/env python3
# GitHub's API as far as the workflows use it: pull requests and issues kept in a JSON file
import json, os, sys
path = os.environ["GH_STATE"]
state = json.load(open(path)) if os.path.exists(path) else {"calls": [], "prs": [], "issues": []}
args = sys.argv[1:]
state["calls"].append(args)
def opt(name, default=None):
    return args[args.index(name) + 1] if name in args else default
def body():
    return open(opt("--body-file")).read() if "--body-file" in args else opt("--body", "")
out = ""
kind, verb = (args + ["", ""])[:2]
if (kind, verb) == ("pr", "list"):
    found = [p for p in state["prs"] if p["head"] == opt("--head") and p["state"] == "open"]
    out = found[0]["url"] if found else ""
elif (kind, verb) == ("pr", "create"):
    url = f"https://github.example/acme/infra/pull/{len(state['prs']) + 100}"
    state["prs"].append({"url": url, "head": opt("--head"), "base": opt("--base"), "title": opt("--title"),
                         "body": body(), "state": "open"})
    out = url
elif (kind, verb) == ("issue", "list"):
    found = [i for i in state["issues"] if i["state"] == "open" and opt("--label") in i["labels"]]
    out = str(found[0]["number"]) if found else ""
elif (kind, verb) == ("issue", "create"):
    state["issues"].append({"number": len(state["issues"]) + 1, "title": opt("--title"), "body": body(),
                            "labels": [opt("--label")], "state": "open", "comments": []})
elif (kind, verb) == ("issue", "comment"):
    next(i for i in state["issues"] if str(i["number"]) == args[2])["comments"].append(body())
elif (kind, verb) == ("label", "create"):
    pass
else:
    print(f"stand-in gh: unexpected: gh {' '.join(args)}", file=sys.stderr)
    sys.exit(1)
json.dump(state, open(path, "w"))
if out:
    print(out)
"""


# ---------------------------------------------------------------------------------------------------
# Expressions: the part of GitHub's `${{ }}` language the workflows use
# ---------------------------------------------------------------------------------------------------

TOKEN = re.compile(r"\s*(?:(?P<num>\d+(?:\.\d+)?)|(?P<str>'(?:[^']|'')*')|(?P<op>==|!=|<=|>=|&&|\|\||[!<>().,\[\]])"
                   r"|(?P<name>[A-Za-z_][\w-]*|\*))")


class Expression:
    """Recursive descent over GitHub's grammar: literals, property paths, calls, ! && || and comparisons."""

    def __init__(self, text: str, context: dict[str, Any], status: Callable[[str], bool]) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text.rstrip()):
            match = TOKEN.match(text, pos)
            if match is None:
                raise ValueError(f"cannot read expression at {text[pos:]!r}")
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind)))
            pos = match.end()
        self.at, self.context, self.status = 0, context, status

    def value(self) -> Any:
        result = self._or()
        if self.at != len(self.tokens):
            raise ValueError(f"unexpected {self.tokens[self.at][1]!r}")
        return result

    def _peek(self) -> str | None:
        return self.tokens[self.at][1] if self.at < len(self.tokens) else None

    def _take(self, expected: str | None = None) -> tuple[str, str]:
        token = self.tokens[self.at]
        if expected is not None and token[1] != expected:
            raise ValueError(f"expected {expected!r}, got {token[1]!r}")
        self.at += 1
        return token

    def _or(self) -> Any:
        return self._chain("||", self._and, lambda left, right: left if truthy(left) else right)

    def _and(self) -> Any:
        return self._chain("&&", self._compare, lambda left, right: right if truthy(left) else left)

    def _chain(self, op: str, operand: Callable[[], Any], combine: Callable[[Any, Any], Any]) -> Any:
        """OPERAND (OP OPERAND)*, left to right; && and || yield one of their operands, not a boolean."""
        left = operand()
        while self._peek() == op:
            self._take()
            left = combine(left, operand())
        return left

    def _compare(self) -> Any:
        left = self._unary()
        op = self._peek()
        if op in ("==", "!=", "<", ">", "<=", ">="):
            self._take()
            right = self._unary()
            if op in ("==", "!="):
                return loose_equal(left, right) == (op == "==")
            return {"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}[op]
        return left

    def _unary(self) -> Any:
        if self._peek() == "!":
            self._take()
            return not truthy(self._unary())
        return self._primary()

    def _primary(self) -> Any:
        kind, text = self._take()
        if text == "(":
            inner = self._or()
            self._take(")")
            return inner
        if kind == "num":
            return float(text) if "." in text else int(text)
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if text in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[text]
        if self._peek() == "(":
            return self._call(text)
        value = self.context.get(text)
        while self._peek() in (".", "["):
            if self._take()[1] == ".":
                key: Any = self._take()[1]
            else:
                key = self._or()
                self._take("]")
            value = value.get(key) if isinstance(value, dict) else None
        return value

    def _call(self, name: str) -> Any:
        self._take("(")
        args = []
        while self._peek() != ")":
            args.append(self._or())
            if self._peek() == ",":
                self._take()
        self._take(")")
        lowered = name.lower()
        if lowered in ("always", "success", "failure", "cancelled"):
            return self.status(lowered)
        functions: dict[str, Callable[..., Any]] = {
            "fromjson": json.loads, "tojson": json.dumps,
            "contains": lambda a, b: (str(b).lower() in str(a).lower()) if isinstance(a, str) else b in (a or []),
            "startswith": lambda a, b: str(a).lower().startswith(str(b).lower()),
            "endswith": lambda a, b: str(a).lower().endswith(str(b).lower()),
        }
        return functions[lowered](*args)


def truthy(value: Any) -> bool:
    return value not in (None, False, 0, "", 0.0)


def loose_equal(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    return bool(a == b)


def text_of(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}", re.S)


# ---------------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------------


@dataclass
class Cancel:
    """Cancel the run while JOB's step STEP runs, once WHEN(its output so far) is true."""

    job: str
    step: str
    when: Callable[[str], bool]


@dataclass
class StepResult:
    name: str
    outcome: str
    outputs: dict[str, str]
    output: str


@dataclass
class JobResult:
    name: str
    result: str
    outputs: dict[str, str] = field(default_factory=dict)
    steps: list[StepResult] = field(default_factory=list)

    def step(self, name: str) -> StepResult:
        return next(s for s in self.steps if s.name == name or s.name.startswith(name))


@dataclass
class Run:
    """One workflow run: every job (matrix jobs once per combination), in order."""

    jobs: dict[str, list[JobResult]]
    summary: str
    cancelled: bool
    signals: list[str]
    """What the cancellation sent: only SIGINT when the step's process was done before the SIGTERM."""

    def job(self, name: str, index: int = 0) -> JobResult:
        return self.jobs[name][index]

    def result(self, name: str) -> str:
        return aggregate([j.result for j in self.jobs.get(name, [])]) if self.jobs.get(name) else "skipped"


def aggregate(results: list[str]) -> str:
    for worst in ("failure", "cancelled"):
        if worst in results:
            return worst
    return "success" if "success" in results else "skipped"


class Runner:
    """Runs workflows against REMOTE (a bare git repository) and the embedded AWS at ENDPOINT."""

    def __init__(self, remote: Path, endpoint: str, home: Path, variables: dict[str, str]) -> None:
        self.remote, self.endpoint, self.home, self.vars = remote, endpoint, home, variables
        self.artifacts = home / "artifacts"
        self.comments: dict[str, str] = {}
        self.bin = home / "stand-ins"
        self.bin.mkdir(parents=True, exist_ok=True)
        for name, text in (("pip", STAND_IN_PIP), ("gh", STAND_IN_GH)):
            (self.bin / name).write_text(text)
            (self.bin / name).chmod(0o755)
        self.runs = 0

    @property
    def github_state(self) -> dict[str, Any]:
        path = self.home / "github.json"
        return json.loads(path.read_text()) if path.exists() else {"calls": [], "prs": [], "issues": []}

    def run(self, workflow: str, event_name: str, event: dict[str, Any], sha: str, ref: str,
            cancel: Cancel | None = None) -> Run:
        self.runs += 1
        doc = yaml.safe_load((WORKFLOWS / workflow).read_text())
        shutil.rmtree(self.artifacts, ignore_errors=True)
        self.artifacts.mkdir(parents=True)
        github = {"event_name": event_name, "event": event, "sha": sha, "ref": ref,
                  "ref_name": ref.removeprefix("refs/heads/"), "repository": "acme/infra",
                  "base_ref": event.get("pull_request", {}).get("base", {}).get("ref", ""),
                  "token": "ghs_rehearsal", "run_id": str(self.runs), "server_url": "https://github.example"}
        state = _RunState(self, doc, github, cancel)
        for name in order(doc["jobs"]):
            state.job(name)
        return Run(state.results, state.summary, state.cancelled, state.signals)


def order(jobs: dict[str, Any]) -> list[str]:
    """Jobs after the jobs they need, otherwise in file order (a runner runs independent ones at once)."""
    done: list[str] = []
    while len(done) < len(jobs):
        for name, job in jobs.items():
            needs = job.get("needs", [])
            needs = [needs] if isinstance(needs, str) else needs
            if name not in done and all(n in done for n in needs):
                done.append(name)
                break
    return done


class _RunState:
    def __init__(self, runner: Runner, doc: dict[str, Any], github: dict[str, Any], cancel: Cancel | None) -> None:
        self.runner, self.doc, self.github, self.cancel = runner, doc, github, cancel
        self.results: dict[str, list[JobResult]] = {}
        self.cancelled = False
        self.signals: list[str] = []
        self.summary = ""

    # -- jobs -----------------------------------------------------------------------------------------

    def needs_context(self, job: dict[str, Any]) -> dict[str, Any]:
        needs = job.get("needs", [])
        needs = [needs] if isinstance(needs, str) else needs
        context = {}
        for name in needs:
            runs = self.results.get(name, [])
            outputs: dict[str, str] = {}
            for r in runs:
                outputs.update(r.outputs)
            context[name] = {"result": aggregate([r.result for r in runs]) if runs else "skipped",
                             "outputs": outputs}
        return context

    def job(self, name: str) -> None:
        job = self.doc["jobs"][name]
        needs = self.needs_context(job)

        def status(kind: str) -> bool:
            if kind == "always":
                return True
            if kind == "cancelled":
                return self.cancelled
            failed = any(n["result"] in ("failure", "cancelled") for n in needs.values())
            if kind == "failure":
                return failed
            return not failed and not self.cancelled and all(n["result"] == "success" for n in needs.values())

        context = {"github": self.github, "vars": self.runner.vars, "needs": needs,
                   "env": dict(self.doc.get("env") or {})}
        if not self.condition(job.get("if"), context, status):
            self.results[name] = [JobResult(name, "skipped")]
            return
        if "uses" in job:  # a reusable workflow: the checks, which `make test` runs itself
            self.results[name] = [JobResult(name, "success")]
            return
        self.results[name] = [self.job_once(name, index, job, {**context, "matrix": combo})
                              for index, combo in enumerate(self.matrix(job, context))]

    def matrix(self, job: dict[str, Any], context: dict[str, Any]) -> list[dict[str, Any]]:
        spec = (job.get("strategy") or {}).get("matrix")
        if not spec:
            return [{}]
        axes = {key: self.evaluate(values, context) if isinstance(values, str) else values
                for key, values in spec.items()}
        return [dict(zip(axes, combo, strict=True)) for combo in product(*axes.values())]

    def job_once(self, name: str, index: int, job: dict[str, Any], context: dict[str, Any]) -> JobResult:
        result = JobResult(name, "success")
        workspace = self.runner.home / "work" / f"{self.github['run_id']}-{name}-{index}"
        shutil.rmtree(workspace, ignore_errors=True)
        workspace.mkdir(parents=True)
        steps_context: dict[str, Any] = {}
        exported: dict[str, str] = {}
        job_env = {k: self.interpolate(v, context) for k, v in (job.get("env") or {}).items()}
        for number, step in enumerate(job["steps"]):
            step_name = step.get("name") or step.get("uses", "").split("@")[0] or f"step {number}"
            ctx = {**context, "steps": steps_context, "env": {**context["env"], **job_env, **exported}}

            def status(kind: str, _result: JobResult = result) -> bool:
                if kind == "always":
                    return True
                if kind == "cancelled":
                    return self.cancelled
                if kind == "failure":
                    return _result.result == "failure"
                return _result.result == "success" and not self.cancelled

            if not self.condition(step.get("if"), ctx, status):
                outcome = StepResult(step_name, "skipped", {}, "")
            elif "uses" in step:
                outcome = self.action(step, step_name, ctx, workspace, exported)
            else:
                outcome = self.shell(name, step, step_name, ctx, workspace, exported)
            result.steps.append(outcome)
            if step.get("id"):
                steps_context[step["id"]] = {"outcome": outcome.outcome, "conclusion": outcome.outcome,
                                             "outputs": outcome.outputs}
            if outcome.outcome == "failure" and not step.get("continue-on-error"):
                result.result = "failure"
            if outcome.outcome == "cancelled":
                result.result = "cancelled"
        if self.cancelled and result.result == "success":
            result.result = "cancelled"
        final = {**context, "steps": steps_context}
        result.outputs = {k: self.interpolate(v, final) for k, v in (job.get("outputs") or {}).items()}
        return result

    # -- steps ----------------------------------------------------------------------------------------

    def base_env(self, ctx: dict[str, Any], workspace: Path, exported: dict[str, str]) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("BGTOOL_", "AWS_", "GITHUB_", "GH_"))}
        event = self.runner.home / f"event-{self.github['run_id']}.json"
        event.write_text(json.dumps(self.github["event"]))
        return {**keep, **ctx["env"], **exported,
                "PATH": f"{self.runner.bin}:{Path(sys.executable).parent}:{os.environ['PATH']}",
                "CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(workspace),
                "GITHUB_EVENT_NAME": self.github["event_name"], "GITHUB_EVENT_PATH": str(event),
                "GITHUB_SHA": self.github["sha"], "GITHUB_REF": self.github["ref"],
                "GITHUB_REF_NAME": self.github["ref_name"], "GITHUB_REPOSITORY": self.github["repository"],
                "GITHUB_RUN_ID": self.github["run_id"], "GITHUB_SERVER_URL": self.github["server_url"],
                "GH_STATE": str(self.runner.home / "github.json"), "RUNNER_TEMP": str(workspace.parent)}

    def shell(self, job: str, step: dict[str, Any], name: str, ctx: dict[str, Any], workspace: Path,
              exported: dict[str, str]) -> StepResult:
        files = {key: workspace.parent / f"{workspace.name}.{key.lower()}"
                 for key in ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_STEP_SUMMARY")}
        for path in files.values():
            path.write_text("")
        script = workspace.parent / f"{workspace.name}.step.sh"
        script.write_text(self.interpolate(step["run"], ctx))
        env = {**self.base_env(ctx, workspace, exported),
               **{k: self.interpolate(v, ctx) for k, v in (step.get("env") or {}).items()},
               **{k: str(v) for k, v in files.items()}}
        cancel = self.cancel if self.cancel and (self.cancel.job, self.cancel.step) == (job, name) else None
        code, output, was_cancelled = self.execute(["bash", "--noprofile", "--norc", "-eo", "pipefail",
                                                    str(script)], workspace, env, cancel)
        for line in parse_env_file(files["GITHUB_ENV"].read_text()).items():
            exported[line[0]] = line[1]
        self.summary += files["GITHUB_STEP_SUMMARY"].read_text()
        outcome = "cancelled" if was_cancelled else ("success" if code == 0 else "failure")
        return StepResult(name, outcome, parse_env_file(files["GITHUB_OUTPUT"].read_text()), output)

    def execute(self, argv: list[str], cwd: Path, env: dict[str, str],
                cancel: Cancel | None) -> tuple[int, str, bool]:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, text=True, start_new_session=True)
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
        reader.start()
        was_cancelled = False
        while proc.poll() is None:
            if cancel is not None and not was_cancelled and cancel.when("".join(lines)):
                was_cancelled = self.cancelled = True
                self.signal_as_the_runner_does(proc)
            time.sleep(0.2)
        reader.join(30)
        return proc.returncode, "".join(lines), was_cancelled

    def signal_as_the_runner_does(self, proc: subprocess.Popen[str]) -> None:
        """SIGINT, SIGTERM 7.5 s later, SIGKILL of the tree 2.5 s after that; each one sent is noted."""
        proc.send_signal(signal.SIGINT)
        self.signals.append("SIGINT")
        for then, seconds in ((signal.SIGTERM, SIGINT_TO_SIGTERM), (signal.SIGKILL, SIGTERM_TO_KILL)):
            try:
                proc.wait(seconds)
                return
            except subprocess.TimeoutExpired:
                self.signals.append(then.name)
                if then == signal.SIGKILL:
                    os.killpg(proc.pid, signal.SIGKILL)
                else:
                    proc.send_signal(then)
        proc.wait(30)

    def action(self, step: dict[str, Any], name: str, ctx: dict[str, Any], workspace: Path,
               exported: dict[str, str]) -> StepResult:
        action = step["uses"].split("@")[0]
        given = {k: self.interpolate(v, ctx) if isinstance(v, str) else v for k, v in (step.get("with") or {}).items()}
        if action == "actions/checkout":
            self.checkout(workspace, int(given.get("fetch-depth", 1)))
        elif action == "aws-actions/configure-aws-credentials":
            assert given["role-to-assume"] and given["aws-region"], f"{name}: no role or region"
            exported.update({**EMBEDDED_CREDENTIALS, "AWS_REGION": given["aws-region"],
                             "AWS_DEFAULT_REGION": given["aws-region"],
                             "BGTOOL_REHEARSAL_ENDPOINT": self.runner.endpoint,
                             "REHEARSAL_ASSUMED_ROLE": given["role-to-assume"]})
        elif action == "actions/upload-artifact":
            return self.upload(name, given, workspace)
        elif action == "actions/download-artifact":
            self.download(given, workspace)
        elif action == "marocchino/sticky-pull-request-comment":
            self.runner.comments[given["header"]] = (workspace / given["path"]).read_text()
        elif action not in ("actions/setup-python", "hashicorp/setup-terraform"):
            raise AssertionError(f"no stand-in for {action}")
        return StepResult(name, "success", {}, "")

    def checkout(self, workspace: Path, depth: int) -> None:
        url = f"file://{self.runner.remote}"
        if depth == 0:
            git(workspace.parent, "clone", "-q", url, str(workspace))
            git(workspace, "checkout", "-q", "--detach", self.github["sha"])
        else:
            git(workspace, "init", "-q")
            git(workspace, "remote", "add", "origin", url)
            git(workspace, "fetch", "-q", f"--depth={depth}", "origin", self.github["sha"])
            git(workspace, "checkout", "-q", "--detach", "FETCH_HEAD")

    def upload(self, name: str, given: dict[str, Any], workspace: Path) -> StepResult:
        """The files at PATH copied into the artifact's folder; its `artifact-url` output (which a job
        summary links) is that folder's file:// URL."""
        target = self.runner.artifacts / given["name"]
        found = False
        for line in str(given["path"]).split():
            source = workspace / line
            if source.is_dir():
                shutil.copytree(source, target, dirs_exist_ok=True)
                found = True
            elif source.is_file():
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / source.name)
                found = True
        if not found and given.get("if-no-files-found") == "error":
            return StepResult(name, "failure", {}, f"no files at {given['path']}")
        if not found:
            return StepResult(name, "success", {}, f"no files at {given['path']}: nothing uploaded")
        return StepResult(name, "success", {"artifact-url": target.as_uri()}, "")

    def download(self, given: dict[str, Any], workspace: Path) -> None:
        into = workspace / given.get("path", ".")
        into.mkdir(parents=True, exist_ok=True)
        for artifact in sorted(self.runner.artifacts.iterdir()):
            if fnmatch.fnmatch(artifact.name, given.get("pattern", "*")):
                destination = into if given.get("merge-multiple") else into / artifact.name
                shutil.copytree(artifact, destination, dirs_exist_ok=True)

    # -- expressions ----------------------------------------------------------------------------------

    def evaluate(self, text: str, context: dict[str, Any],
                 status: Callable[[str], bool] = lambda kind: kind != "cancelled") -> Any:
        match = EXPR.fullmatch(text.strip())
        return Expression(match.group(1) if match else text, context, status).value()

    def interpolate(self, text: Any, context: dict[str, Any]) -> str:
        return EXPR.sub(lambda m: text_of(Expression(m.group(1), context, lambda kind: True).value()), str(text))

    def condition(self, text: Any, context: dict[str, Any], status: Callable[[str], bool]) -> bool:
        if text is None:
            return status("success")
        expression = str(text)
        match = EXPR.fullmatch(expression.strip())
        expression = match.group(1) if match else expression
        if not re.search(r"\b(always|success|failure|cancelled)\s*\(", expression):
            expression = f"success() && ({expression})"
        return truthy(Expression(expression, context, status).value())


def parse_env_file(text: str) -> dict[str, str]:
    """GITHUB_OUTPUT and GITHUB_ENV: NAME=value lines and NAME<<DELIMITER blocks."""
    values: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delimiter = line.split("<<", 1)
            block = []
            for inner in lines:
                if inner == delimiter:
                    break
                block.append(inner)
            values[key] = "\n".join(block)
        elif "=" in line:
            key, value = line.split("=", 1)
            values[key] = value
    return values


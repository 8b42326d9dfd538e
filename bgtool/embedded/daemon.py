"""`python -m bgtool.embedded.daemon --root R --port P`: the embedded AWS and its data plane.

One process per project: moto's server in a thread (so the controller reads its backends
directly), HAProxy as a child in master-worker mode, and the controller loop. SIGTERM stops
everything it started (target processes, HAProxy, moto); SIGHUP starts again the target
processes that exited; SIGUSR1 writes moto's backends to a file between two ticks (`bgtool local
save`), and `--restore FILE` loads such a file before moto answers. Started detached by `bgtool
local up` (bgtool.embedded.server), which waits for the state file to say `ready` or `failed`.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from bgtool.embedded import mototap
from bgtool.embedded.controller import Controller
from bgtool.embedded.dataplane import files, saved_files, write_json, write_state
from bgtool.embedded.haproxy import HaproxyProcess, ensure_haproxy
from bgtool.embedded.ports import is_free
from bgtool.errors import BgtoolError

TICK_SECONDS = 0.1
log = logging.getLogger("bgtool.dataplane")


class Daemon:
    def __init__(self, root: Path, port: int, restore: Path | None = None) -> None:
        self.root = root
        self.port = port
        self.restore = restore
        self.files = files(root)
        self.stop = threading.Event()
        self.restart = threading.Event()
        self.save = threading.Event()
        self.moto: object | None = None
        self.haproxy: HaproxyProcess | None = None
        self.controller: Controller | None = None

    def fail(self, message: str) -> int:
        log.error(message)
        write_state(self.root, {"status": "failed", "pid": os.getpid(), "moto_port": self.port, "error": message})
        return 1

    def run(self) -> int:
        try:
            self._start()
        except BgtoolError as exc:
            self.shutdown()
            return self.fail(exc.message)
        write_state(self.root, {"status": "starting", "pid": os.getpid(), "moto_port": self.port})
        assert self.controller is not None
        last_error, last_logged = "", 0.0
        while not self.stop.is_set():
            now = time.monotonic()
            if self.restart.is_set():
                self.restart.clear()
                restarted = self.controller.supervisor.restart_dead(now)
                log.info("restarted target processes: %s", ", ".join(restarted) or "none had exited")
            if self.save.is_set():
                self.save.clear()
                self._save()
            try:
                self.controller.tick(now)
            except Exception as exc:  # one bad tick must not take the embedded AWS down
                if repr(exc) != last_error or now - last_logged > 30:
                    log.exception("data plane tick failed")
                    last_error, last_logged = repr(exc), now
            if self.haproxy is not None and not self.haproxy.alive() and not self.stop.is_set():
                self.shutdown()
                return self.fail(f"HAProxy exited: {self.haproxy.last_log_lines()}; see {self.haproxy.log}")
            self.stop.wait(max(0.0, TICK_SECONDS - (time.monotonic() - now)))
        self.shutdown()
        return 0

    def _start(self) -> None:
        if not is_free(self.port):
            raise BgtoolError(f"port {self.port} on 127.0.0.1 is already in use")
        binary = ensure_haproxy(install=False)
        mototap.install_health_hook()
        mototap.install_percentiles()
        mototap.install_ecs_agent()
        mototap.install_scalable_target_tags()
        if self.restore is not None:
            loaded = mototap.load_backends(self.restore)
            log.info("restored the embedded AWS from %s: %s", self.restore, ", ".join(loaded))
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        server.start()
        self.moto = server
        self.haproxy = HaproxyProcess(binary, self.files.dir, self.files.admin_socket)
        self.controller = Controller(self.root, self.files, self.haproxy, self.port)
        self.haproxy.start(self.controller.initial_config())
        log.info("embedded AWS on 127.0.0.1:%d, HAProxy master pid %s", self.port, self.haproxy.proc.pid
                 if self.haproxy.proc else "?")

    def _save(self) -> None:
        """Write moto's backends for `bgtool local save`, then say how it went in a file of its own."""
        target, result = saved_files(self.files)
        error = ""
        for _attempt in range(5):  # a request thread may change a dict while it is pickled
            try:
                mototap.dump_backends(target)
                error = ""
                break
            except RuntimeError as exc:
                error = str(exc)
            except Exception as exc:  # any failure is reported to the waiting command, not fatal here
                error = f"{type(exc).__name__}: {exc}"
                break
        write_json(result, {"pid": os.getpid(), "ok": not error, "error": error})
        if error:
            log.error("could not save the embedded AWS: %s", error)
        else:
            log.info("saved the embedded AWS to %s", target)

    def shutdown(self) -> None:
        log.info("stopping target processes, HAProxy and the embedded AWS")
        if self.controller is not None:
            self.controller.supervisor.stop_all()
            self.controller.workers.stop_all()
        if self.haproxy is not None:
            self.haproxy.stop()
        if self.moto is not None:
            with contextlib.suppress(Exception):
                self.moto.stop()  # type: ignore[attr-defined]
            self.moto = None
        log.info("stopped")
        for sock in (self.files.admin_socket, self.files.sockets / "haproxy-master.sock"):
            sock.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bgtool.embedded.daemon")
    parser.add_argument("--root", required=True, type=Path)
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--restore", type=Path, help="moto backends written by `bgtool local save`")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stdout, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    daemon = Daemon(args.root.resolve(), args.port, args.restore)

    def on_term(signum: int, frame: FrameType | None) -> None:
        daemon.stop.set()

    def on_hup(signum: int, frame: FrameType | None) -> None:
        daemon.restart.set()

    def on_usr1(signum: int, frame: FrameType | None) -> None:
        daemon.save.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.signal(signal.SIGHUP, on_hup)
    signal.signal(signal.SIGUSR1, on_usr1)
    code = daemon.run()
    # Everything it started is stopped by now; do not wait for idle keep-alive threads of the
    # embedded AWS's HTTP server (seconds each) before the process goes.
    logging.shutdown()
    sys.stdout.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())

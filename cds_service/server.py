"""Run the app under gunicorn from Python, with settings measured on a 2-core machine.

gthread workers: CPU-bound in prefetch mode, but threads pay off while waiting on the EHR's FHIR
server (stack notes: 2×16 threads served 4.5× the sync figure at 50 ms per FHIR call).
`preload_app` loads the knowledge once and shares it across workers.

Keep-alive is off (`keepalive: 0`, measured with `python -m bench.run`, issue 6): a gthread worker
keeps every keep-alive connection it accepted, and with 8 keep-alive clients one worker often
got them all (97–100 % of the CPU on one worker, the other idle) — half the machine unused.
Closing after each answer makes every request a fresh accept, and the load spreads ~50/50;
the reconnect costs ~0.1 ms of server CPU, against ~10 ms for a patient-view.

`pre_fork` freezes the preloaded objects out of the garbage collector (measured, issue 6): the
~100 000 objects of the app, its knowledge and libraries made every generation-2 collection in a
worker take ~60 ms — one every ~75 patient-view calls, which set the p99. Frozen before the fork,
a full collection takes < 1 ms, and the collector no longer writes to the pages workers share.
`post_fork` raises the young-generation threshold (GC_THRESHOLDS): most of a request's objects
die by reference counting, and collecting every 700 allocations cost ~15 % of a repeated call.
The floor of `bench/` runs under the same options, so it gets the same settings.

Start-up order of `serve` (`start`): settings checked → the port bound (a second `serve` on a busy
port stops here, exit 6, having touched nothing) → a Prometheus folder of this instance's own
(`DATA_DIR/prometheus/<port>-<pid>`, locked while it lives; folders of dead instances are
removed, a live instance's never) → the app built in the master (knowledge, store, issuers; exit
codes in startup.py) → gunicorn on the already-bound socket, its own log lines as JSON, and a
`listening on` line when it is ready.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import fcntl
import gc
import logging
import os
import shutil
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger as GunicornLogger

from cds_service.startup import EXIT_PORT, StartupError

log = logging.getLogger("cds_service.server")
log.setLevel(logging.INFO)  # the `listening on` line shows whatever LOG_LEVEL says


def default_workers() -> int:
    return max(2, os.cpu_count() or 2)


def gunicorn_options(host: str, port: int, workers: int | None = None, threads: int | None = None) -> dict[str, Any]:
    return {
        "bind": f"{host}:{port}",
        "workers": workers or default_workers(),
        "worker_class": "gthread",
        "threads": threads or 4,
        "keepalive": 0,  # see the module docstring: keep-alive piles connections onto one worker
        "timeout": 60,
        "graceful_timeout": 20,
        "preload_app": True,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "logger_class": JsonGunicornLogger,
        "when_ready": _when_ready,
        # gunicorn ≥ 25 opens a control socket at one path per user ($HOME/.gunicorn): a second
        # instance would take it over from the running one. Not used by the service.
        "control_socket_disable": True,
        "child_exit": _child_exit,
        "pre_fork": _pre_fork,
        "post_fork": _post_fork,
        "worker_exit": _worker_exit,
    }


class JsonGunicornLogger(GunicornLogger):
    """gunicorn's own log lines (worker boots, timeouts, errors) as the service's JSON lines."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        from cds_service.logs import JsonFormatter, RedactFilter

        for logger in (self.error_log, self.access_log):
            for handler in logger.handlers:
                handler.setFormatter(JsonFormatter())
            if not any(isinstance(f, RedactFilter) for f in logger.filters):
                logger.addFilter(RedactFilter())


def _when_ready(server: Any) -> None:
    for listener in getattr(server, "LISTENERS", []) or []:
        log.info(f"listening on http://{_address(listener)}", extra={"pid": os.getpid(),
                                                                      "count": server.cfg.workers})


def _address(listener: Any) -> str:
    try:
        host, port = listener.sock.getsockname()[:2]
    except (OSError, ValueError, AttributeError):
        return str(listener)
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind and listen before anything else happens (StartupError, exit 6, when the port is taken)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT only; never a live listener
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        why = "already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or type(exc).__name__)
        raise StartupError(EXIT_PORT, f"cannot listen on {host}:{port}: {why}") from exc
    sock.set_inheritable(True)
    return sock


class MetricsDir:
    """This instance's Prometheus multiprocess folder under `root`, locked for its lifetime.

    Several instances may share a data folder (two `serve` on different ports, a restart while the
    old master drains): each writes its own folder, and only folders whose lock no process holds
    any more (their instance died) are cleared. Must exist before prometheus_client is imported.
    """

    LOCK = ".instance.lock"

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.path = root / name
        self._fd: int | None = None
        self._owner = os.getpid()

    def prepare(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        for other in self.root.iterdir():
            if other.is_dir() and other != self.path and (other / self.LOCK).exists() and self._abandoned(other):
                shutil.rmtree(other, ignore_errors=True)
        shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir(parents=True)
        self._fd = os.open(self.path / self.LOCK, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        atexit.register(self.remove)
        return self.path

    def _abandoned(self, folder: Path) -> bool:
        try:
            fd = os.open(folder / self.LOCK, os.O_RDWR)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # a live instance holds it
        finally:
            os.close(fd)
        return True

    def remove(self) -> None:
        if os.getpid() != self._owner:  # a worker exiting: the master removes the folder
            return
        shutil.rmtree(self.path, ignore_errors=True)
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


def _pre_fork(server: Any, worker: Any) -> None:
    """Before each fork: move the preloaded (long-lived) objects to the GC's permanent generation."""
    gc.collect()
    gc.freeze()


# gen-0 threshold: a 200-resource request parses into ~10 000 objects; at the default 700 every
# request ran a dozen young-generation collections (bench/: 15 % of a repeated patient-view's CPU).
GC_THRESHOLDS = (20_000, 50, 50)


def _post_fork(server: Any, worker: Any) -> None:
    """In each new worker: collect the young generation less often (see GC_THRESHOLDS)."""
    gc.set_threshold(*GC_THRESHOLDS)


def _worker_exit(server: Any, worker: Any) -> None:
    """In the exiting worker: commit the audit rows its writer thread still holds."""
    runtime = getattr(getattr(worker, "wsgi", None), "extensions", {}).get("mmcds")
    store = getattr(runtime, "store", None)
    if store is not None:
        store.close()


def _child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


class GunicornApp(BaseApplication):
    """gunicorn run from Python with an options dict and a callable that builds the WSGI app."""

    def __init__(self, options: dict[str, Any], loader: Callable[[], Any]):
        self.options = options
        self.loader = loader
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:  # a setting this gunicorn version lacks is left out
                self.cfg.set(key, value)

    def load(self) -> Any:
        return self.loader()


def _create_app() -> Any:
    from cds_service.app import create_app

    return create_app()


def run_gunicorn(host: str, port: int, workers: int | None = None, threads: int | None = None,
                 sock: socket.socket | None = None, app: Any = None, loglevel: str | None = None) -> int:
    """gunicorn with our options; on `sock` (already bound) and with `app` (already built) when given;
    gunicorn's own lines at `loglevel` (the service's LOG_LEVEL), as JSON."""
    options = gunicorn_options(host, port, workers, threads)
    if loglevel and loglevel.lower() in ("debug", "info", "warning", "error", "critical"):
        options["loglevel"] = loglevel.lower()
    if sock is not None:
        options["bind"] = f"fd://{sock.fileno()}"
    GunicornApp(options, (lambda: app) if app is not None else _create_app).run()
    return 0

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
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication


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
        "child_exit": _child_exit,
        "pre_fork": _pre_fork,
        "post_fork": _post_fork,
        "worker_exit": _worker_exit,
    }


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
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self.loader()


def _create_app() -> Any:
    from cds_service.app import create_app

    return create_app()


def run_gunicorn(host: str, port: int, workers: int | None = None, threads: int | None = None) -> int:
    GunicornApp(gunicorn_options(host, port, workers, threads), _create_app).run()
    return 0

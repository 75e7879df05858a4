"""gunicorn settings for running the app without `python -m cds_service serve`:

    gunicorn -c deploy/gunicorn.conf.py 'cds_service.app:create_app()'

The values come from `cds_service.server.gunicorn_options` (what `serve` uses), so the two ways of
running cannot drift. Environment overrides: MMCDS_BIND (default 0.0.0.0:8080), MMCDS_WORKERS,
MMCDS_THREADS. Like `serve`, this prepares a fresh Prometheus multiprocess folder under the data
folder (MMCDS_DATA_DIR, default ./data) before any worker starts, unless PROMETHEUS_MULTIPROC_DIR is
already set, so `/metrics` sums the samples of every worker.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from cds_service.server import gunicorn_options


def _int_env(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    return int(value) if value else None


def _prepare_metrics_dir() -> None:
    """Must run before prometheus_client is imported (it reads the variable at import)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)
        return
    folder = Path(os.environ.get("MMCDS_DATA_DIR", "data")) / "prometheus"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder.resolve())


_prepare_metrics_dir()

_host, _, _port = os.environ.get("MMCDS_BIND", "0.0.0.0:8080").rpartition(":")
_options = gunicorn_options(_host or "0.0.0.0", int(_port), _int_env("MMCDS_WORKERS"), _int_env("MMCDS_THREADS"))

bind = _options["bind"]
workers = _options["workers"]
worker_class = _options["worker_class"]
threads = _options["threads"]
keepalive = _options["keepalive"]
timeout = _options["timeout"]
graceful_timeout = _options["graceful_timeout"]
preload_app = _options["preload_app"]
accesslog = _options["accesslog"]
errorlog = _options["errorlog"]
loglevel = _options["loglevel"]
child_exit = _options["child_exit"]
pre_fork = _options["pre_fork"]
post_fork = _options["post_fork"]
worker_exit = _options["worker_exit"]

"""gunicorn settings for running the app without `python -m cds_service serve`:

    gunicorn -c deploy/gunicorn.conf.py 'cds_service.app:create_app()'

The values come from `cds_service.server.gunicorn_options` (what `serve` uses), so the two ways of
running cannot drift: gthread workers, gunicorn's own log lines as JSON, a `listening on` line when
ready. Environment overrides: MMCDS_BIND (default 0.0.0.0:8080), MMCDS_WORKERS, MMCDS_THREADS.

Like `serve`, this gives the instance a Prometheus multiprocess folder of its own under the data
folder (MMCDS_DATA_DIR/prometheus/<port>-<pid>, locked while it lives; folders of instances that
died are removed, a running instance's never), unless PROMETHEUS_MULTIPROC_DIR is already set, so
`/metrics` sums the samples of every worker. What the service cannot run with (a bad value, JWT
mode without issuers, SECRET_KEY missing, the placeholder or not shared, broken knowledge, an
unreachable database) stops gunicorn before it binds, with one line and the exit codes of
`cds_service/startup.py`.
"""

from __future__ import annotations

import os
from pathlib import Path

from cds_service.server import MetricsDir, gunicorn_options


def _int_env(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    return int(value) if value else None


def _prepare_metrics_dir(port: int) -> None:
    """Must run before prometheus_client is imported (it reads the variable at import)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)
        return
    root = Path(os.environ.get("MMCDS_DATA_DIR", "data")) / "prometheus"
    folder = MetricsDir(root, f"{port}-{os.getpid()}").prepare()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder.resolve())


def _check_configuration() -> None:
    """What `serve` checks before the app is built, so gunicorn's app loading (which would print a
    traceback) does not meet it: settings, then knowledge and store (both kept for the app:
    knowledge is loaded once per process, the schema step is idempotent)."""
    from cds_service.config import load_settings
    from cds_service.startup import (
        StartupError,
        check_auth_configured,
        check_secret_shared,
        check_settings,
        exit_with,
        guarded,
    )

    try:
        settings = guarded(load_settings)
        check_settings(settings)
        check_auth_configured(settings)
        from cds_service.app import knowledge_for
        from cds_service.store.db import Store

        guarded(lambda: knowledge_for(settings))
        store = guarded(lambda: Store(settings.database_url), settings.database_url)
        try:
            guarded(store.create_schema, settings.database_url)
            check_secret_shared(store, settings)
        finally:
            store.dispose()
    except StartupError as err:
        exit_with(err, "gunicorn")


_host, _, _port = os.environ.get("MMCDS_BIND", "0.0.0.0:8080").rpartition(":")
_prepare_metrics_dir(int(_port))
_check_configuration()
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
logger_class = _options["logger_class"]
when_ready = _options["when_ready"]
control_socket_disable = _options["control_socket_disable"]
child_exit = _options["child_exit"]
pre_fork = _options["pre_fork"]
post_fork = _options["post_fork"]
worker_exit = _options["worker_exit"]

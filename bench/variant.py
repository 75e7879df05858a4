"""Run the service or the floor under gunicorn with some options changed (for tuning experiments).

    python -m bench.variant --app service --port 8090 --set worker_class=sync --set keepalive=0

Starts from `cds_service.server.gunicorn_options` and overrides the given keys, so an experiment
differs from production in exactly the options named. The production path stays
`python -m cds_service serve`; `bench.run --set ...` uses this module for both servers.
"""

from __future__ import annotations

import argparse
import os
import shutil
from typing import Any

from gunicorn.app.base import BaseApplication

from cds_service.server import gunicorn_options


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """["worker_class=sync", "keepalive=0"] -> {"worker_class": "sync", "keepalive": 0}."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not key or not _:
            raise ValueError(f"expected key=value, got {pair!r}")
        out[key] = int(value) if value.strip().lstrip("-").isdigit() else value.strip()
    return out


def options(host: str, port: int, workers: int | None, threads: int | None, overrides: dict[str, Any],
            app: str) -> dict[str, Any]:
    opts = gunicorn_options(host, port, workers=workers, threads=threads)
    opts.update(overrides)
    if app == "floor":
        opts.pop("child_exit", None)
    return opts


class _App(BaseApplication):
    def __init__(self, opts: dict[str, Any], app: str):
        self.opts = opts
        self.app = app
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.opts.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        if self.app == "floor":
            from bench.floor_app import floor_app

            return floor_app
        from cds_service.app import create_app

        return create_app()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.variant", description=__doc__)
    parser.add_argument("--app", choices=("service", "floor"), required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="gunicorn option override")
    args = parser.parse_args(argv)
    if args.app == "service":
        # what `python -m cds_service serve` does before starting gunicorn (cds_service/cli.py)
        from cds_service.config import load_settings

        settings = load_settings()
        prom_dir = settings.data_dir / "prometheus"
        shutil.rmtree(prom_dir, ignore_errors=True)
        prom_dir.mkdir(parents=True, exist_ok=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(prom_dir.resolve())
    opts = options(args.host, args.port, args.workers, args.threads, parse_overrides(args.set), args.app)
    _App(opts, args.app).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

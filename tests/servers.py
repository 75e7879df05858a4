"""Start a real `python -m cds_service serve` (gunicorn) in a subprocess, for tests over real HTTP.

    with ServedApp(tmp_path, env={"MMCDS_AUTH_MODE": "none"}) as srv:
        requests.get(srv.url("/healthz"))

The server gets a free loopback port, its own DATA_DIR (SQLite store, Prometheus multiprocess
folder) and an environment built from scratch on top of ours (any inherited `MMCDS_*` variable is
dropped so the developer's shell cannot change a test). Its stdout/stderr go to files in the data
folder (`srv.logs()`), so a test can grep them and a failing start shows them. Start-up and stop
are bounded loops; a server that does not answer /healthz in time is killed and reported.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 45.0
STOP_TIMEOUT_S = 20.0


def free_port() -> int:
    """A port nothing listens on right now (a race is possible; `start` retries on a failed bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_env(data_dir: Path, extra: dict[str, str] | None = None, source_on_path: bool = True) -> dict[str, str]:
    """Our environment without MMCDS_* / PROMETHEUS_* leftovers, plus a data dir and `extra`.

    `source_on_path=False` drops PYTHONPATH entirely: the installed package is used, not the checkout.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MMCDS_", "PROMETHEUS_"))}
    if source_on_path:
        env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    else:
        env.pop("PYTHONPATH", None)
    env["PYTHONUNBUFFERED"] = "1"
    env["MMCDS_DATA_DIR"] = str(data_dir)
    env.setdefault("MMCDS_AUTH_MODE", "none")
    env.update(extra or {})
    return env


class ServedApp:
    """`python -m cds_service serve` on 127.0.0.1:<free port>; a context manager."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None, workers: int = 2, threads: int = 4,
                 python: str | None = None, cwd: Path | None = None, extra_args: list[str] | None = None,
                 source_on_path: bool = True) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.extra_env = dict(env or {})
        self.workers = workers
        self.threads = threads
        self.python = python or sys.executable
        self.cwd = cwd or ROOT
        self.extra_args = list(extra_args or [])
        self.source_on_path = source_on_path
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._out_path = self.data_dir / "serve.stdout.log"
        self._err_path = self.data_dir / "serve.stderr.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def env(self) -> dict[str, str]:
        return base_env(self.data_dir, self.extra_env, self.source_on_path)

    def logs(self) -> str:
        """Everything the server wrote so far (stdout then stderr)."""
        out = []
        for path in (self._out_path, self._err_path):
            if path.exists():
                out.append(path.read_text(encoding="utf-8", errors="replace"))
        return "\n".join(out)

    def start(self) -> ServedApp:
        last_error = ""
        for _attempt in range(3):
            self.port = free_port()
            cmd = [self.python, "-m", "cds_service", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                   "--workers", str(self.workers), "--threads", str(self.threads), *self.extra_args]
            with open(self._out_path, "ab") as out, open(self._err_path, "ab") as err:
                self.proc = subprocess.Popen(cmd, cwd=self.cwd, env=self.env(), stdout=out, stderr=err,
                                             stdin=subprocess.DEVNULL)
            if self._wait_healthy():
                return self
            last_error = self.logs()[-3000:]
            self.stop()
            if "Address already in use" not in last_error:
                break
        raise RuntimeError(f"serve did not become healthy within {START_TIMEOUT_S}s; logs:\n{last_error}")

    def _wait_healthy(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                return False
            try:
                if requests.get(self.url("/healthz"), timeout=1).status_code == 200:
                    return True
            except requests.RequestException:
                pass
            time.sleep(0.1)
        return False

    def stop(self) -> int | None:
        """SIGTERM the gunicorn master (it stops its workers), then SIGKILL if it lingers."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        return proc.returncode

    def __enter__(self) -> ServedApp:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

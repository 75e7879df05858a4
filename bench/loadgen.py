"""Load generators: wrk (preferred) and a Python fallback that keeps N requests in flight.

Both send the same POST body over keep-alive connections for a fixed time and report the same
`LoadResult`: requests/s, p50/p99 latency and errors (transport errors and non-2xx answers).

wrk (Debian package `wrk`) is a C program that costs little CPU; on a 2-core machine a Python
generator competes with the server for the cores and lowers every figure, so the benchmark uses
wrk when present. The Python generator spreads its clients over processes (one keep-alive
connection per client thread) so that it is not a single-GIL bottleneck; it is what the smoke
test and CI use, where wrk need not exist.
"""

from __future__ import annotations

import http.client
import multiprocessing as mp
import os
import queue as queue_mod
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson


@dataclass
class LoadResult:
    tool: str
    url: str
    clients: int
    duration_s: float
    requests: int
    errors: int
    rps: float
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    mean_ms: float | None
    max_ms: float | None
    error_kinds: dict[str, int] = field(default_factory=dict)
    server_cpu_ms_per_req: float | None = None  # CPU of the server's processes / requests (bench.run)
    worker_cpu_share: list[float] | None = None  # each worker's share of that CPU, largest first

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


# ------------------------------------------------------------------------------------- wrk
WRK_LUA = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
wrk.body = f:read("*all")
f:close()

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "mean_us": %.1f, "max_us": %d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
"""


# Several bodies, sent round-robin; each wrk thread starts at a different place in the list.
WRK_LUA_MANY = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local bodies = {}
local dir = os.getenv("BENCH_BODY_DIR")
local n = tonumber(os.getenv("BENCH_BODY_COUNT"))
for i = 1, n do
  local f = assert(io.open(string.format("%s/%05d.json", dir, i), "rb"))
  bodies[i] = f:read("*all")
  f:close()
end
local counter = 0
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("start", threads * 7919)
end
init = function(args)
  counter = start or 0
end
request = function()
  counter = counter + 1
  return wrk.format(nil, nil, nil, bodies[(counter % n) + 1])
end
""" + WRK_LUA[WRK_LUA.index("done = function"):]


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(url: str, body: bytes | list[bytes], clients: int, duration_s: float, threads: int = 2,
            timeout_s: float = 30.0) -> LoadResult:
    """`wrk -c clients` for `duration_s` seconds POSTing `body` (or the bodies round-robin);
    latencies from wrk's HDR histogram."""
    threads = max(1, min(threads, clients))
    bodies = body if isinstance(body, list) else [body]
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        body_file = Path(tmp) / "body.json"
        body_file.write_bytes(bodies[0])
        for i, b in enumerate(bodies, start=1):
            (Path(tmp) / f"{i:05d}.json").write_bytes(b)
        script = Path(tmp) / "post.lua"
        script.write_text(WRK_LUA if len(bodies) == 1 else WRK_LUA_MANY)
        cmd = ["wrk", "-t", str(threads), "-c", str(clients), "-d", f"{max(1, round(duration_s))}s",
               "--timeout", f"{max(1, round(timeout_s))}s", "-s", str(script), url]
        env = dict(os.environ, BENCH_BODY_FILE=str(body_file), BENCH_BODY_DIR=tmp, BENCH_BODY_COUNT=str(len(bodies)))
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=duration_s + 60)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCHJSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr.strip()[:300]}")
    data = orjson.loads(line.removeprefix("BENCHJSON "))
    seconds = data["duration_us"] / 1e6
    kinds = {k: int(data[k]) for k in ("connect", "read", "write", "status", "timeout") if data[k]}
    n = int(data["requests"])
    return LoadResult(
        tool="wrk", url=url, clients=clients, duration_s=round(seconds, 3), requests=n,
        errors=sum(kinds.values()), rps=round(n / seconds, 1) if seconds else 0.0,
        p50_ms=round(data["p50_us"] / 1000, 2), p90_ms=round(data["p90_us"] / 1000, 2),
        p99_ms=round(data["p99_us"] / 1000, 2), mean_ms=round(data["mean_us"] / 1000, 2),
        max_ms=round(data["max_us"] / 1000, 2), error_kinds=kinds,
    )


# ---------------------------------------------------------------------------------- Python
def _client_thread(host: str, port: int, path: str, bodies: list[bytes], start: int, deadline: float,
                   timeout_s: float, latencies: list[float], errors: dict[str, int], lock: threading.Lock) -> None:
    """One client: POSTs the bodies round-robin from `start` (a list of one: the same body each time)."""
    conn: http.client.HTTPConnection | None = None
    local: list[float] = []
    local_errors: dict[str, int] = {}
    i = start
    while time.monotonic() < deadline:
        body = bodies[i % len(bodies)]
        i += 1
        headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        if conn is None:
            conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
        t0 = time.perf_counter()
        try:
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            elapsed = (time.perf_counter() - t0) * 1000
            if 200 <= resp.status < 300:
                local.append(elapsed)
            else:
                local_errors[f"status-{resp.status}"] = local_errors.get(f"status-{resp.status}", 0) + 1
            if resp.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as exc:
            local_errors[type(exc).__name__] = local_errors.get(type(exc).__name__, 0) + 1
            if conn is not None:
                conn.close()
            conn = None
            time.sleep(0.01)
    if conn is not None:
        conn.close()
    with lock:
        latencies.extend(local)
        for k, v in local_errors.items():
            errors[k] = errors.get(k, 0) + v


def _worker_process(url: str, bodies: list[bytes], threads: int, start_at: float, duration_s: float,
                    timeout_s: float, queue: Any, first: int = 0) -> None:
    """One process of the Python generator: `threads` keep-alive clients, results sent back as JSON."""
    split = urlsplit(url)
    path = split.path + (f"?{split.query}" if split.query else "")
    latencies: list[float] = []
    errors: dict[str, int] = {}
    lock = threading.Lock()
    delay = start_at - time.time()
    if delay > 0:
        time.sleep(delay)
    deadline = time.monotonic() + duration_s
    pool = [threading.Thread(target=_client_thread, daemon=True,
                             args=(split.hostname, split.port, path, bodies,
                                   (first + t) * max(1, len(bodies) // 16), deadline, timeout_s,
                                   latencies, errors, lock)) for t in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(duration_s + timeout_s + 5)
    queue.put(orjson.dumps({"latencies": latencies, "errors": errors}))


def run_python(url: str, body: bytes | list[bytes], clients: int, duration_s: float, processes: int | None = None,
               timeout_s: float = 30.0) -> LoadResult:
    """Keep `clients` requests in flight from `processes` processes (default: up to 2, one per core).
    A list of bodies is sent round-robin, each client starting at a different place in it."""
    bodies = body if isinstance(body, list) else [body]
    processes = max(1, min(clients, processes or min(2, os.cpu_count() or 1)))
    per = [clients // processes + (1 if i < clients % processes else 0) for i in range(processes)]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    start_at = time.time() + 1.0  # spawn cost must not eat into the measured window
    procs = [ctx.Process(target=_worker_process, args=(url, bodies, n, start_at, duration_s, timeout_s, queue,
                                                       sum(per[:j])), daemon=True) for j, n in enumerate(per)]
    for p in procs:
        p.start()
    latencies: list[float] = []
    errors: dict[str, int] = {}
    give_up = time.monotonic() + duration_s + timeout_s + 60
    received = 0
    while received < len(procs):
        try:
            data = orjson.loads(queue.get(timeout=0.5))
        except queue_mod.Empty:
            if time.monotonic() > give_up or all(p.exitcode not in (None, 0) for p in procs if not p.is_alive()) \
                    and not any(p.is_alive() for p in procs):
                raise RuntimeError("Python load generator: a worker process died without results") from None
            continue
        received += 1
        latencies.extend(data["latencies"])
        for k, v in data["errors"].items():
            errors[k] = errors.get(k, 0) + v
    for p in procs:
        p.join(10)
    latencies.sort()
    n_err = sum(errors.values())
    return LoadResult(
        tool="python", url=url, clients=clients, duration_s=round(duration_s, 3), requests=len(latencies) + n_err,
        errors=n_err, rps=round((len(latencies) + n_err) / duration_s, 1),
        p50_ms=_r(_percentile(latencies, 50)), p90_ms=_r(_percentile(latencies, 90)),
        p99_ms=_r(_percentile(latencies, 99)), mean_ms=_r(statistics.fmean(latencies) if latencies else None),
        max_ms=_r(latencies[-1] if latencies else None), error_kinds=errors,
    )


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def run_load(tool: str, url: str, body: bytes | list[bytes], clients: int, duration_s: float) -> LoadResult:
    """tool: "wrk", "python" or "auto" (wrk when installed). A list of bodies (distinct charts) is
    sent round-robin."""
    if tool == "auto":
        tool = "wrk" if wrk_available() else "python"
    if tool == "wrk":
        return run_wrk(url, body, clients, duration_s)
    if tool == "python":
        return run_python(url, body, clients, duration_s)
    raise ValueError(f"unknown load generator {tool!r}")

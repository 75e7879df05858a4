"""The benchmark: charts the service has never seen against a floor, the eight-year chart, growth, fetch mode.

    python -m bench.run                      # full run (several minutes on 2 cores)
    python -m bench.run --quick              # shorter windows, sizes 50/200/1000
    python -m bench.run --help

What it measures (results as JSON + a markdown table in `bench/results/`, which is gitignored):

1. Over HTTP, the target: `python -m cds_service serve` (gunicorn, the production options, temp
   DATA_DIR, `MMCDS_AUTH_MODE=none`, fixed `MMCDS_AS_OF_DATE`) and the floor
   (`bench/floor_app.py`: orjson parse + one small card) under the same gunicorn options, in
   alternating windows, `--clients` concurrent clients (wrk, else the Python generator) sending
   `--distinct` different patients round-robin (bench/charts.py: each request another chart, as
   an EHR's chart opens are; 1 000 by default, more than the workers' StateCache holds, so none
   is still cached when its turn comes again): requests/s, p50, p99, errors, the ratio to the
   floor, server CPU.
2. In process: the same distinct charts (CPU per call, stages); the eight-year chart as the bare
   history, as a filtering EHR sends it and as a filter-ignoring EHR sends it (body bytes →
   answer, and whether the cards are the same); what the StateCache costs or saves on distinct
   charts and on patient-view + order-select of the same chart; penta-refractory charts of
   50…5 000 resources and the largest Synthea patient (is the cost linear in record size?).
3. FHIR-fetch mode: no prefetch, `fhirServer` pointing at a local FHIR test server that adds
   20 ms to every request: FHIR calls and sequential round trips per hook call, latency, and
   throughput over HTTP.

Targets (8 clients, 2 cores): on charts never seen, throughput >= 0.5 of the floor and p99 <= 50
ms, zero errors; the eight-year chart <= 100 ms in process with the same cards every way; cost
linear in size; fetch mode <= 2 round trips plus compute.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import platform
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench import distinct, patients
from bench.loadgen import LoadResult, run_load, wrk_available
from bench.variant import parse_overrides

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
SERVICE_ID = "mm-next-line"

TARGET_RATIO = 0.5
TARGET_P99_MS = 50.0
TARGET_ROUND_TRIPS = 2
TARGET_LONG_MS = 100.0  # the eight-year chart, in process
# Marginal cost per resource of the largest step may be at most this multiple of the smaller step's.
LINEARITY_TOLERANCE = 1.5


@dataclass
class BenchConfig:
    duration_s: float = 5.0
    rounds: int = 3  # alternating floor/service windows for the target patient
    warmup_s: float = 2.0
    clients: int = 8
    sizes: tuple[int, ...] = patients.DEFAULT_SIZES
    target_size: int = 200
    synthea: bool = True
    loadgen: str = "auto"  # wrk | python | auto
    http: bool = True
    http_growth: bool = False  # every size over HTTP too (slow; the in-process growth is the linearity check)
    # different patients sent round-robin: the target comparison. More than the workers' StateCache
    # holds (256 charts each, LRU), so that no chart is still cached when its turn comes again.
    distinct: int = 1000
    long_years: float = 8.0
    long_reps: int = 5
    cache_charts: int = 30
    growth_duration_s: float = 4.0
    fetch: bool = True
    fetch_delay_s: float = 0.02
    fetch_reps: int = 15
    fetch_http: bool = True
    inprocess: bool = True
    inprocess_min_time_s: float = 1.0
    inprocess_min_reps: int = 15
    workers: int | None = None
    threads: int | None = None
    overrides: dict[str, Any] = field(default_factory=dict)  # gunicorn options changed (bench.variant)
    as_of: str = "2026-11-01"
    out_dir: Path = RESULTS_DIR
    write: bool = True
    command: str = ""

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["out_dir"] = str(self.out_dir)
        return d


@dataclass
class Case:
    """One benchmark patient: its request and how big it is."""

    name: str
    resources: list[dict[str, Any]]
    patient_id: str
    request: dict[str, Any] = field(default_factory=dict)
    body: bytes = b""

    @property
    def size(self) -> int:
        return patients.count_resources(self.request)


def build_cases(cfg: BenchConfig) -> list[Case]:
    cases = []
    sizes = sorted(set(cfg.sizes) | {cfg.target_size})
    for size in sizes:
        chart = patients.penta_refractory_patient(size)
        cases.append(Case(f"penta-{size}", chart, patients.PATIENT_ID))
    if cfg.synthea and patients.SYNTHEA_DIR.is_dir():
        pid, chart = patients.largest_synthea_patient()
        cases.append(Case("synthea-largest", chart, pid))
    for case in cases:
        case.request = patients.hook_request(case.patient_id, patients.prefetch_for(case.resources))
        case.body = orjson.dumps(case.request)
    return cases


# ----------------------------------------------------------------------------- in process
def _settings(cfg: BenchConfig, data_dir: Path) -> Any:
    from cds_service.config import load_settings

    return load_settings({"AUTH_MODE": "none", "AS_OF_DATE": cfg.as_of, "DATA_DIR": str(data_dir)}, environ={})


def time_inprocess(case: Case, settings: Any, knowledge: Any, min_time_s: float, min_reps: int) -> dict[str, Any]:
    """Median wall time of decoding (record/decode.py) + `pipeline.run` over many repetitions (after 3
    warm-ups), without a cache: the same chart read as if for the first time."""
    from cds_service.pipeline import run
    from cds_service.record.decode import decode_request

    for _ in range(3):
        result = run(SERVICE_ID, decode_request(case.body, knowledge)[0], settings, knowledge)
    gc.collect()
    parse_ms: list[float] = []
    run_ms: list[float] = []
    run_cpu_ms: list[float] = []  # process CPU: what a busy machine's other work cannot inflate much
    stages: dict[str, list[float]] = {}
    started = time.perf_counter()
    while len(run_ms) < min_reps or time.perf_counter() - started < min_time_s:
        t0 = time.perf_counter()
        request = decode_request(case.body, knowledge)[0]
        t1 = time.perf_counter()
        c1 = time.process_time()
        result = run(SERVICE_ID, request, settings, knowledge)
        c2 = time.process_time()
        t2 = time.perf_counter()
        parse_ms.append((t1 - t0) * 1000)
        run_ms.append((t2 - t1) * 1000)
        run_cpu_ms.append((c2 - c1) * 1000)
        for k, v in result.timings_ms.items():
            stages.setdefault(k, []).append(v)
        if len(run_ms) >= 5000:
            break
    run_ms.sort()
    cards = result.response.get("cards", [])
    return {
        "case": case.name, "resources": case.size, "body_kib": round(len(case.body) / 1024, 1),
        "reps": len(run_ms), "parse_ms": round(statistics.median(parse_ms), 3),
        "repeat_ms": time_repeat(case, settings, knowledge, min_time_s / 2, min_reps),
        "run_ms": round(statistics.median(run_ms), 3), "run_cpu_ms": round(statistics.median(run_cpu_ms), 3), "run_p90_ms": round(run_ms[int(0.9 * (len(run_ms) - 1))], 3),
        "stages_ms": {k: round(statistics.median(v), 3) for k, v in stages.items()},
        "cards": len(cards),
        "card_kinds": sorted({str(c.get("extension", {}).get("org.mmcds.card", {}).get("kind")) for c in cards}),
    }


def time_repeat(case: Case, settings: Any, knowledge: Any, min_time_s: float, min_reps: int) -> float:
    """Median CPU ms of `pipeline.run` for the same chart sent again (a new hookInstance each call),
    with the StateCache the served app uses: what an EHR's repeated calls for one patient cost."""
    from cds_service.pipeline import run
    from cds_service.statecache import StateCache

    cache = StateCache(16)
    bodies = [case.body.replace(b'"hookInstance":"', f'"hookInstance":"r{i}-'.encode(), 1) for i in range(64)]
    run(SERVICE_ID, orjson.loads(bodies[0]), settings, knowledge, cache=cache)
    cpu: list[float] = []
    started = time.perf_counter()
    while len(cpu) < min_reps or time.perf_counter() - started < min_time_s:
        body = bodies[len(cpu) % len(bodies)]
        request = orjson.loads(body)
        c1 = time.process_time()
        result = run(SERVICE_ID, request, settings, knowledge, cache=cache)
        cpu.append((time.process_time() - c1) * 1000)
        if not result.state_cached:
            raise RuntimeError("repeat timing: the chart was not reused")
        if len(cpu) >= 5000:
            break
    return round(statistics.median(cpu), 3)


def linearity(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Marginal cost per resource between consecutive synthetic sizes, and a least-squares fit.

    Linear cost means the marginal cost per resource stays about the same as the chart grows;
    a quadratic scan shows up as a marginal cost that grows with size. Measured on the CPU time of
    `pipeline.run` (the service's own work; wall time of the big charts moves with other load on
    a shared machine): orjson parsing is reported beside it, and itself grows faster than the
    body past a few MB (allocation and cache effects, the floor pays them too).
    """
    pts = sorted((r["resources"], r.get("run_cpu_ms", r["run_ms"])) for r in rows if r["case"].startswith("penta-"))
    steps = []
    for (n0, t0), (n1, t1) in zip(pts, pts[1:], strict=False):
        if n1 > n0:
            steps.append({"from": n0, "to": n1, "us_per_resource": round((t1 - t0) / (n1 - n0) * 1000, 2)})
    out: dict[str, Any] = {"steps": steps}
    if len(pts) >= 2:
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        sxx = sum((x - mx) ** 2 for x in xs)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else 0.0
        intercept = my - slope * mx
        ss_tot = sum((y - my) ** 2 for y in ys)
        ss_res = sum((y - (intercept + slope * x)) ** 2 for x, y in zip(xs, ys, strict=True))
        out.update({"fit_ms": round(intercept, 3), "fit_us_per_resource": round(slope * 1000, 2),
                    "r2": round(1 - ss_res / ss_tot, 4) if ss_tot else 1.0})
    positive = [s["us_per_resource"] for s in steps if s["us_per_resource"] > 0]
    if len(steps) >= 2 and positive:
        growth = steps[-1]["us_per_resource"] / max(min(positive), 1e-9)
        out["marginal_growth"] = round(growth, 2)
        out["linear"] = growth <= LINEARITY_TOLERANCE
    return out


# ---------------------------------------------------------------------------------- servers
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}): {log.read_text(errors='replace')[-1500:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server not ready after {timeout_s:.0f} s: {log.read_text(errors='replace')[-1500:]}")


_SERVER_PIDS: dict[str, int] = {}  # base URL -> gunicorn master pid, for CPU accounting


def process_cpu_s(pid: int) -> dict[int, float] | None:
    """CPU seconds (user + system) of a process and of each direct child (gunicorn master + workers).

    Why: on a shared machine wall-clock throughput moves with other people's load, while the CPU
    a request costs the server moves much less; floor CPU / service CPU per request is the
    throughput ratio an otherwise idle machine would show. Per worker, it also shows whether the
    load spreads over the workers (keep-alive connections can pile onto one). Linux /proc only.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:
            out[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    return out


@contextlib.contextmanager
def server_process(kind: str, cfg: BenchConfig, work: Path, extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """Run the service (`kind="service"`) or the floor under gunicorn; yields the base URL."""
    port = free_port()
    args = ["--host", "127.0.0.1", "--port", str(port)]
    if cfg.workers:
        args += ["--workers", str(cfg.workers)]
    if cfg.threads:
        args += ["--threads", str(cfg.threads)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if kind == "service":
        data_dir = work / "service-data"
        data_dir.mkdir(parents=True, exist_ok=True)
        env.update({"MMCDS_DATA_DIR": str(data_dir), "MMCDS_AUTH_MODE": "none", "MMCDS_AS_OF_DATE": cfg.as_of,
                    "MMCDS_LOG_LEVEL": "WARNING", "MMCDS_MAX_BODY_BYTES": str(64 * 1024 * 1024)})
        for key in [k for k in env if k.startswith("MMCDS_") and k not in (
                "MMCDS_DATA_DIR", "MMCDS_AUTH_MODE", "MMCDS_AS_OF_DATE", "MMCDS_LOG_LEVEL", "MMCDS_MAX_BODY_BYTES")]:
            env.pop(key)  # a developer's shell settings must not change what is measured
        cmd = [sys.executable, "-m", "cds_service", "serve", *args]
        ready = f"http://127.0.0.1:{port}/healthz"
    else:
        cmd = [sys.executable, "-m", "bench.floor_app", *args]
        ready = f"http://127.0.0.1:{port}/"
    if cfg.overrides:  # an experiment: both servers through bench.variant with the same changes
        sets = [f"{k}={v}" for k, v in cfg.overrides.items()]
        cmd = [sys.executable, "-m", "bench.variant", "--app", kind, *args, *(x for s in sets for x in ("--set", s))]
    env.update(extra_env or {})
    log = work / f"{kind}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(ready, proc, log)
        _SERVER_PIDS[base] = proc.pid
        yield base
    finally:
        _SERVER_PIDS.pop(base, None)
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server we started: SIGTERM to its gunicorn master's process group, then SIGKILL."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=25)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def measure(cfg: BenchConfig, url: str, body: bytes | list[bytes], duration_s: float, warmup: bool = True) -> LoadResult:
    if warmup and cfg.warmup_s > 0:
        run_load(cfg.loadgen, url, body, cfg.clients, cfg.warmup_s)
    split = urllib.parse.urlsplit(url)
    pid = _SERVER_PIDS.get(f"{split.scheme}://{split.netloc}")
    cpu0 = process_cpu_s(pid) if pid else None
    result = run_load(cfg.loadgen, url, body, cfg.clients, duration_s)
    cpu1 = process_cpu_s(pid) if pid else None
    if cpu0 is not None and cpu1 is not None and result.requests:
        deltas = {p: cpu1[p] - cpu0.get(p, 0.0) for p in cpu1}
        total = sum(deltas.values())
        result.server_cpu_ms_per_req = round(total * 1000 / result.requests, 3)
        workers = sorted((d for p, d in deltas.items() if p != pid), reverse=True)
        if total > 0:
            result.worker_cpu_share = [round(d / total, 3) for d in workers]
    return result


def growth_window(cfg: BenchConfig, ms_per_call: float | None) -> float:
    """Long enough for ~20 answers per client-core share on big charts (capped at 30 s)."""
    if not ms_per_call:
        return cfg.growth_duration_s
    cores = max(1, os.cpu_count() or 1)
    wanted = 20 * ms_per_call / 1000 * cfg.clients / cores
    return round(min(30.0, max(cfg.growth_duration_s, wanted)), 1)


def combine(windows: list[LoadResult]) -> dict[str, Any]:
    """Several measured windows of one server: medians of req/s, p50 and p99; the worst p99; totals."""
    def med(key: str) -> float | None:
        values = [getattr(w, key) for w in windows if getattr(w, key) is not None]
        return round(statistics.median(values), 2) if values else None

    kinds: dict[str, int] = {}
    for w in windows:
        for k, v in w.error_kinds.items():
            kinds[k] = kinds.get(k, 0) + v
    return {
        "tool": windows[0].tool, "clients": windows[0].clients, "windows": len(windows),
        "duration_s": round(sum(w.duration_s for w in windows), 2), "requests": sum(w.requests for w in windows),
        "errors": sum(w.errors for w in windows), "error_kinds": kinds,
        "rps": med("rps"), "p50_ms": med("p50_ms"), "p90_ms": med("p90_ms"), "p99_ms": med("p99_ms"),
        "p99_max_ms": max((w.p99_ms for w in windows if w.p99_ms is not None), default=None),
        "rps_windows": [w.rps for w in windows], "p99_windows": [w.p99_ms for w in windows],
        "cpu_ms_per_req": med("server_cpu_ms_per_req"),
        "worker_cpu_share": [w.worker_cpu_share for w in windows],
    }


def compare(cfg: BenchConfig, floor_url: str, service_url: str, body: bytes | list[bytes], duration_s: float,
            rounds: int) -> dict[str, Any]:
    """Floor and service in alternating windows (F S F S ...): other load on a shared machine drifts,
    and alternating puts both under the same drift; the ratio is the median of per-round ratios."""
    floors: list[LoadResult] = []
    services: list[LoadResult] = []
    for i in range(rounds):
        floors.append(measure(cfg, floor_url, body, duration_s, warmup=i == 0))
        services.append(measure(cfg, service_url, body, duration_s, warmup=i == 0))
    ratios = [s.rps / f.rps for f, s in zip(floors, services, strict=True) if f.rps]
    floor, service = combine(floors), combine(services)
    return {"floor": floor, "service": service,
            "ratio": round(statistics.median(ratios), 3) if ratios else None,
            "ratio_windows": [round(r, 3) for r in ratios],
            # floor CPU / service CPU per request: the throughput ratio of an otherwise idle machine
            "cpu_ratio": round(floor["cpu_ms_per_req"] / service["cpu_ms_per_req"], 3)
            if floor["cpu_ms_per_req"] and service["cpu_ms_per_req"] else None}


def check_answer(url: str, body: bytes) -> dict[str, Any]:
    """One request before the load: the answer must be 200 with cards (a fast 4xx is not a result)."""
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        data = orjson.loads(resp.read())
    return {"status": 200, "cards": len(data.get("cards", []))}


# ------------------------------------------------------------------------------- fetch mode
def _fhir_server_class() -> Any:
    """The project's FHIR test double (tests/fhir_server.py: FhirTestServer(resources, delay_s=...))."""
    return patients.fhir_test_double().FhirTestServer


def round_trips(times: list[float], delay_s: float) -> int:
    """Sequential round trips in a list of request arrival times at a server that holds every
    request `delay_s` before answering: the longest chain of requests each of which arrived after
    the previous one's answer could have been received (arrival + delay). Parallel requests that
    a busy machine dispatches a few ms apart stay one round trip."""
    ts = sorted(times)
    chain: list[int] = []
    for i, t in enumerate(ts):
        before = [chain[j] for j in range(i) if ts[j] + 0.9 * delay_s <= t]
        chain.append(1 + max(before, default=0))
    return max(chain, default=0)


def audited_timings(db: Path, since: float) -> dict[str, Any]:
    """Server-side gather/total times of the calls audited since `since` (the service's own
    `timings_ms`, one row per card, so rows are grouped back into calls): under concurrent load,
    gather time / FHIR delay shows how many round trips a call really waited for."""
    if not db.exists():
        return {}
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        rows = con.execute("SELECT DISTINCT created_at, timings_ms FROM mmcds_audit_card WHERE created_at >= ?",
                           (since,)).fetchall()
    except sqlite3.Error:
        return {}
    finally:
        con.close()
    timings = [orjson.loads(t) for _c, t in rows]
    out: dict[str, Any] = {"audited_calls": len(timings)}
    for key in ("gather", "total"):
        values = sorted(float(t[key]) for t in timings if key in t)
        if values:
            out[f"server_{key}_p50_ms"] = round(values[len(values) // 2], 2)
            out[f"server_{key}_p99_ms"] = round(values[min(len(values) - 1, int(0.99 * len(values)))], 2)
    return out


def bench_fetch(cfg: BenchConfig, case: Case, settings: Any, knowledge: Any, work: Path,
                http: bool) -> dict[str, Any]:
    from cds_service.pipeline import run

    server_cls = _fhir_server_class()
    out: dict[str, Any] = {"case": case.name, "resources": len(patients.served_resources(case.resources)),
                           "delay_ms": round(cfg.fetch_delay_s * 1000, 1)}
    # a server that applies the search filters, as a US Core server does
    with server_cls(patients.served_resources(case.resources), delay_s=cfg.fetch_delay_s, filters=True) as srv:
        request = patients.hook_request(case.patient_id, None, fhir_server=srv.base_url)
        body = orjson.dumps(request)
        calls, rounds, gather_ms, total_ms, cards = [], [], [], [], 0
        for i in range(cfg.fetch_reps + 1):
            before = srv.request_count
            result = run(SERVICE_ID, orjson.loads(body), settings, knowledge)
            log = srv.requests[before:]
            if i == 0:
                continue  # the first call opens the keep-alive connections
            calls.append(len(log))
            rounds.append(round_trips([entry["time"] for entry in log], cfg.fetch_delay_s))
            gather_ms.append(result.timings_ms.get("gather", 0.0))
            total_ms.append(result.timings_ms.get("total", 0.0))
            cards = len(result.response.get("cards", []))
        out.update({
            # median over calls: on a loaded machine a thread can start late enough to look sequential
            "reps": len(calls), "fhir_calls_per_hook": max(calls),
            "round_trips_per_hook": statistics.median_low(rounds), "round_trips_max": max(rounds),
            "gather_ms": round(statistics.median(gather_ms), 2), "total_ms": round(statistics.median(total_ms), 2),
            "compute_ms": round(statistics.median(t - g for t, g in zip(total_ms, gather_ms, strict=True)), 2),
            "cards": cards, "fetched_keys": sorted(result.gathered.fetched) if result.gathered else [],
            "missing_keys": sorted(result.gathered.missing) if result.gathered else [],
        })
        if http:
            with server_process("service", cfg, work / "fetch") as base:
                url = f"{base}/cds-services/{SERVICE_ID}"
                check_answer(url, body)
                if cfg.warmup_s > 0:
                    run_load(cfg.loadgen, url, body, cfg.clients, cfg.warmup_s)
                before = srv.request_count
                started = time.time()
                window = measure(cfg, url, body, cfg.growth_duration_s, warmup=False)
                out["http"] = combine([window])
                if window.requests:
                    out["http"]["fhir_calls_per_hook"] = round((srv.request_count - before) / window.requests, 2)
                out["http"].update(audited_timings(work / "fetch" / "service-data" / "mmcds.sqlite3", started))
    return out


# ------------------------------------------------------------------------------------- main
def run_benchmark(cfg: BenchConfig) -> dict[str, Any]:
    """Run every enabled part and return (and, with `cfg.write`, save) the results."""
    from cds_service.knowledge.loader import default_knowledge
    from cds_service.server import gunicorn_options

    started = datetime.now(UTC)
    if cfg.loadgen == "auto":
        cfg.loadgen = "wrk" if wrk_available() else "python"
    opts = gunicorn_options("127.0.0.1", 0, cfg.workers, cfg.threads)
    opts.update(cfg.overrides)
    results: dict[str, Any] = {
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "loadavg_start": [round(x, 2) for x in os.getloadavg()]},
        "server": {k: opts[k] for k in ("worker_class", "workers", "threads", "keepalive", "preload_app")},
        "config": cfg.as_dict(),
    }
    cases = build_cases(cfg)
    by_name = {c.name: c for c in cases}
    target = by_name[f"penta-{cfg.target_size}"]
    bodies = distinct.distinct_bodies(cfg.distinct) if cfg.distinct else []
    work = Path(tempfile.mkdtemp(prefix="mmcds-bench-"))
    try:
        settings = _settings(cfg, work / "inprocess")
        knowledge = default_knowledge()
        # As `serve` does around forking its workers (cds_service/server.py): long-lived objects —
        # here also every benchmark chart — out of the collector, so that a large request's
        # collections scan that request, not the benchmark's own data.
        gc.collect()
        gc.freeze()
        from cds_service.server import GC_THRESHOLDS

        gc.set_threshold(*GC_THRESHOLDS)  # as every served worker does after the fork (post_fork)
        if cfg.inprocess:
            rows = [time_inprocess(c, settings, knowledge, cfg.inprocess_min_time_s, cfg.inprocess_min_reps)
                    for c in cases]
            results["inprocess"] = rows
            results["linearity"] = linearity(rows)
        if cfg.inprocess and cfg.distinct:
            results["distinct"] = distinct.time_distinct(bodies[:64], settings, knowledge)
            results["long_chart"] = distinct.time_long_chart(settings, knowledge, cfg.long_years, cfg.long_reps)
            if cfg.cache_charts:
                results["cache"] = distinct.cache_patterns(cfg.cache_charts, settings, knowledge)
        if cfg.http:
            # The target: different patients, each request another chart (round-robin over
            # `cfg.distinct` charts), the service as deployed against the floor on the same requests.
            with server_process("floor", cfg, work) as floor, server_process("service", cfg, work) as service:
                floor_url = f"{floor}/cds-services/{SERVICE_ID}"
                service_url = f"{service}/cds-services/{SERVICE_ID}"
                load = bodies if bodies else [target.body]
                answer = check_answer(service_url, load[0])
                results["http"] = {
                    "case": f"{len(load)} distinct charts" if bodies else target.name,
                    "resources": round(statistics.fmean(patients.count_resources(orjson.loads(b)) for b in load), 1),
                    "body_kib": round(statistics.fmean(len(b) for b in load) / 1024, 1),
                    "cards": answer["cards"],
                    **compare(cfg, floor_url, service_url, load, cfg.duration_s, cfg.rounds),
                }
                if cfg.http_growth:
                    growth = []
                    per_call = {r["case"]: r["parse_ms"] + r["run_ms"] for r in results.get("inprocess", [])}
                    for case in cases:
                        window = growth_window(cfg, per_call.get(case.name))
                        growth.append({"case": case.name, "resources": case.size,
                                       "body_kib": round(len(case.body) / 1024, 1),
                                       **compare(cfg, floor_url, service_url, [case.body], window, 1)})
                    results["http_growth"] = growth
        if cfg.fetch:
            results["fetch"] = bench_fetch(cfg, target, settings, knowledge, work, http=cfg.http and cfg.fetch_http)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    results["targets"] = evaluate_targets(results)
    results["elapsed_s"] = round((datetime.now(UTC) - started).total_seconds(), 1)
    if cfg.write:
        write_results(results, cfg.out_dir)
    return results


def evaluate_targets(results: dict[str, Any]) -> dict[str, Any]:
    t: dict[str, Any] = {}
    http = results.get("http")
    if http:
        s = http["service"]
        t["throughput_ratio"] = {"value": http["ratio"], "target": f">= {TARGET_RATIO}",
                                 "ok": http["ratio"] is not None and http["ratio"] >= TARGET_RATIO}
        cpu = http.get("cpu_ratio")
        t["throughput_ratio_cpu"] = {"value": cpu, "target": f">= {TARGET_RATIO} (idle-machine projection, info)",
                                     "ok": None if cpu is None else cpu >= TARGET_RATIO, "info": True}
        t["p99_ms"] = {"value": s["p99_ms"], "target": f"<= {TARGET_P99_MS}",
                       "ok": s["p99_ms"] is not None and s["p99_ms"] <= TARGET_P99_MS}
        errors = s["errors"] + http["floor"]["errors"]
        for row in results.get("http_growth", []):
            errors += row["service"]["errors"] + row["floor"]["errors"]
        if "http" in results.get("fetch", {}):
            errors += results["fetch"]["http"]["errors"]
        t["errors"] = {"value": errors, "target": "0", "ok": errors == 0}
    long = results.get("long_chart")
    if long:
        whole = next(r for r in long["rows"] if r["variant"] == "filter-ignoring EHR")
        t["long_chart_cpu_ms"] = {"value": whole["cpu_ms"], "target": f"<= {TARGET_LONG_MS} (process CPU)",
                                  "ok": whole["cpu_ms"] <= TARGET_LONG_MS}
        t["long_chart_wall_ms"] = {"value": whole["wall_ms"], "target": f"<= {TARGET_LONG_MS} (wall, info)",
                                   "ok": whole["wall_ms"] <= TARGET_LONG_MS, "info": True}
        t["long_chart_same_cards"] = {"value": all(r["same_cards"] for r in long["rows"]), "target": "True",
                                      "ok": all(r["same_cards"] for r in long["rows"])}
    lin = results.get("linearity")
    if lin and "linear" in lin:
        t["linear"] = {"value": lin["marginal_growth"], "target": f"marginal cost growth <= {LINEARITY_TOLERANCE}",
                       "ok": lin["linear"]}
    fetch = results.get("fetch")
    if fetch:
        t["fetch_round_trips"] = {"value": fetch["round_trips_per_hook"], "target": f"<= {TARGET_ROUND_TRIPS}",
                                  "ok": fetch["round_trips_per_hook"] <= TARGET_ROUND_TRIPS}
    return t


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, float):
        return f"{v:,.1f}" if v >= 100 else f"{v:.2f}"
    return str(v)


def markdown(results: dict[str, Any]) -> str:
    """A results section: the tables docs/benchmarks.md quotes (single-machine figures)."""
    srv = results["server"]
    lines = [
        f"Single-machine figures, {results['date']}: {results['machine']['cpus']} CPUs, Python "
        f"{results['machine']['python']}; gunicorn {srv['worker_class']} × {srv['workers']} workers"
        + (f" × {srv['threads']} threads" if srv["worker_class"] == "gthread" else "")
        + f", keep-alive {srv['keepalive']} s; {results['config']['clients']} clients "
        f"({results['config']['loadgen']}); load average at start/end "
        f"{results['machine']['loadavg_start'][0]}/{results['machine'].get('loadavg_end', ['?'])[0]}. Command: `{results['config']['command'] or 'python -m bench.run'}`.",
        "",
    ]
    http = results.get("http")
    if http:
        lines += [
            f"**Charts never seen** ({http['case']}, {http['resources']} resources and {http['body_kib']} KiB "
            f"on average, each request another patient, round-robin; {http['cards']} cards for the first):",
            "",
            "| server | req/s | p50 ms | p99 ms | errors | server CPU ms/req | ratio to floor (req/s) "
            "| ratio to floor (CPU) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, r, ratio in (("floor (same requests, orjson parse + one card)", http["floor"], ("1.00", "1.00")),
                               ("service (as deployed)", http["service"],
                                (_fmt(http["ratio"]), _fmt(http.get("cpu_ratio"))))):
            lines.append(f"| {name} | {_fmt(r['rps'])} | {_fmt(r['p50_ms'])} | {_fmt(r['p99_ms'])} | "
                         f"{r['errors']} | {_fmt(r.get('cpu_ms_per_req'))} | {ratio[0]} | {ratio[1]} |")
        lines += ["", f"Ratio per round: {http.get('ratio_windows')}.", ""]
    d = results.get("distinct")
    if d:
        stages = ", ".join(f"{k} {v}" for k, v in d["stages_ms"].items())
        lines += [f"In process, the same {d['charts']} charts: {d['cpu_ms_per_call']} ms CPU per call "
                  f"(rounds {d['cpu_ms_per_call_rounds']}; orjson parse alone {d['orjson_parse_ms']} ms); "
                  f"median stages (ms): {stages}.", ""]
    long = results.get("long_chart")
    if long:
        lines += [f"**The {long['years']:g}-year chart** (in process: body bytes → decode → pipeline, median):", "",
                  "| prefetch | resources | body MiB | wall ms | CPU ms | cards | same cards |",
                  "|---|---:|---:|---:|---:|---:|---|"]
        for r in long["rows"]:
            lines.append(f"| {r['variant']} | {r['resources']} | {r['body_mib']} | {_fmt(r['wall_ms'])} | "
                         f"{_fmt(r['cpu_ms'])} | {r['cards']} | {_fmt(r['same_cards'])} |")
        lines.append("")
    cache = results.get("cache")
    if cache:
        lines += ["**StateCache** (in process, CPU ms per call):", "", "| pattern | calls | cache off | cache on | change |",
                  "|---|---:|---:|---:|---:|"]
        for name, c in cache.items():
            lines.append(f"| {name} | {c['calls']} | {_fmt(c['cpu_ms_cache_off'])} | {_fmt(c['cpu_ms_cache_on'])} | "
                         f"{c['change'] * 100:+.0f} % |")
        lines.append("")
    rows = results.get("inprocess")
    if rows:
        lines += [
            "**Growth** (in process, one chart read afresh each call: decode + `pipeline.run`, median):",
            "",
            "| patient | resources | body KiB | decode ms | pipeline ms | pipeline CPU ms | record ms "
            "| pipeline CPU ms (sent again, cached) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in rows:
            lines.append(f"| {r['case']} | {r['resources']} | {r['body_kib']} | {_fmt(r['parse_ms'])} | "
                         f"{_fmt(r['run_ms'])} | {_fmt(r.get('run_cpu_ms'))} | {_fmt(r['stages_ms'].get('record'))} | "
                         f"{_fmt(r.get('repeat_ms'))} |")
        lin = results.get("linearity", {})
        if lin.get("steps"):
            steps = ", ".join(f"{s['from']}→{s['to']}: {s['us_per_resource']} µs" for s in lin["steps"])
            lines += ["", f"Marginal `pipeline.run` CPU per resource: {steps}; least-squares fit "
                          f"{lin.get('fit_ms')} ms + {lin.get('fit_us_per_resource')} µs/resource "
                          f"(R² {lin.get('r2')})."]
        lines.append("")
    fetch = results.get("fetch")
    if fetch:
        lines += [
            f"**FHIR-fetch mode** ({fetch['case']}, no prefetch, FHIR server adding {fetch['delay_ms']} ms "
            "per request):",
            "",
            "| FHIR calls / hook | round trips / hook | gather ms | compute ms | total ms | HTTP req/s | p50 ms "
            "| p99 ms | gather p50 / p99 ms under load |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        h = fetch.get("http") or {}
        lines.append(f"| {fetch['fhir_calls_per_hook']} | {fetch['round_trips_per_hook']} | {_fmt(fetch['gather_ms'])} | "
                     f"{_fmt(fetch['compute_ms'])} | {_fmt(fetch['total_ms'])} | {_fmt(h.get('rps'))} | "
                     f"{_fmt(h.get('p50_ms'))} | {_fmt(h.get('p99_ms'))} | "
                     f"{_fmt(h.get('server_gather_p50_ms'))} / {_fmt(h.get('server_gather_p99_ms'))} |")
        lines.append("")
    targets = results.get("targets") or {}
    if targets:
        lines += ["| target | value | goal | met |", "|---|---:|---|---|"]
        for name, t in targets.items():
            met = "–" if t["ok"] is None else ("yes" if t["ok"] else "NO")
            lines.append(f"| {name} | {_fmt(t['value'])} | {t['target']} | {met} |")
        lines.append("")
    return "\n".join(lines)


def write_results(results: dict[str, Any], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out_dir / f"bench-{stamp}.json"
    data = orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
    path.write_bytes(data)
    (out_dir / "latest.json").write_bytes(data)
    md = markdown(results)
    (out_dir / f"bench-{stamp}.md").write_text(md)
    (out_dir / "latest.md").write_text(md)
    return path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=5.0, help="seconds per measured HTTP window (target patient)")
    p.add_argument("--rounds", type=int, default=3, help="alternating floor/service windows for the target patient")
    p.add_argument("--growth-duration", type=float, default=4.0, help="seconds per HTTP window for each size")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up load before each window")
    p.add_argument("--clients", type=int, default=8, help="concurrent clients (requests in flight)")
    p.add_argument("--sizes", default=",".join(str(s) for s in patients.DEFAULT_SIZES),
                   help="synthetic patient sizes (resources), comma-separated")
    p.add_argument("--target-size", type=int, default=200, help="size of the target patient")
    p.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    p.add_argument("--workers", type=int, help="gunicorn workers for both servers (default: the service default)")
    p.add_argument("--threads", type=int, help="gthread threads per worker for both servers")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="change a gunicorn option for both servers (experiments; e.g. worker_class=sync)")
    p.add_argument("--no-synthea", action="store_true", help="skip the largest Synthea patient")
    p.add_argument("--no-inprocess", action="store_true", help="skip the in-process timings")
    p.add_argument("--no-http", action="store_true", help="in-process timings only")
    p.add_argument("--http-growth", action="store_true", help="also every penta size over HTTP (slow)")
    p.add_argument("--distinct", type=int, default=1000,
                   help="different patients sent round-robin (the target; more than the StateCache holds)")
    p.add_argument("--long-years", type=float, default=8.0, help="years of treatment of the long chart")
    p.add_argument("--no-fetch", action="store_true", help="skip FHIR-fetch mode")
    p.add_argument("--fetch-delay", type=float, default=0.02, help="seconds the FHIR test server adds per request")
    p.add_argument("--quick", action="store_true", help="short windows and sizes 50/200/1000 (a few tens of seconds)")
    p.add_argument("--out", type=Path, default=RESULTS_DIR, help="results folder")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = BenchConfig(
        duration_s=args.duration, rounds=args.rounds, growth_duration_s=args.growth_duration, warmup_s=args.warmup,
        clients=args.clients, sizes=tuple(int(s) for s in args.sizes.split(",") if s.strip()),
        target_size=args.target_size, loadgen=args.loadgen, workers=args.workers, threads=args.threads,
        overrides=parse_overrides(args.set),
        synthea=not args.no_synthea, inprocess=not args.no_inprocess, http=not args.no_http, http_growth=args.http_growth,
        distinct=args.distinct, long_years=args.long_years,
        fetch=not args.no_fetch, fetch_delay_s=args.fetch_delay, out_dir=args.out,
        command="python -m bench.run " + " ".join(argv if argv is not None else sys.argv[1:]),
    )
    if args.quick:
        cfg.duration_s, cfg.growth_duration_s, cfg.warmup_s, cfg.rounds = 3.0, 2.0, 1.0, 2
        cfg.sizes = tuple(s for s in cfg.sizes if s <= 1000)
        cfg.inprocess_min_time_s, cfg.fetch_reps, cfg.long_reps, cfg.cache_charts = 0.5, 8, 3, 15
    results = run_benchmark(cfg)
    print(markdown(results))
    return 0 if all(t["ok"] for t in results["targets"].values() if not t.get("info")) else 1


if __name__ == "__main__":
    raise SystemExit(main())

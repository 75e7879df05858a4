"""In-process measurements on charts the service has never seen, and on the eight-year chart.

- `time_distinct`: decode + `pipeline.run` for N different patients, each once per round, in
  order (no chart repeats within a round, and the StateCache of the served app is used as
  deployed): CPU per call and the median of each stage.
- `time_long_chart`: the eight-year chart three ways — the myeloma history alone, what an EHR that
  honours the templates' filters sends, and the whole chart from an EHR that ignores them — body
  bytes to answer (decode + pipeline), wall and CPU time, and whether the cards are the same.
- `cache_patterns`: what the StateCache costs or saves, CPU per call with and without it, on the
  distinct charts (every call a new chart) and on the patterns of an EHR: patient-view on chart
  open, then order-select twice on the same chart; a chart opened twice.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import orjson

from bench import charts, patients

SERVICE_ID = "mm-next-line"
ORDER_SERVICE_ID = "mm-order-check"


def distinct_bodies(n: int, seed: int = 1000) -> list[bytes]:
    return [orjson.dumps(charts.requests_for(pid, chart)) for pid, chart in charts.distinct_charts(n, seed=seed)]


def _call(service_id: str, body: bytes, settings: Any, knowledge: Any, cache: Any = None) -> Any:
    from cds_service.pipeline import run
    from cds_service.record.decode import decode_request

    request, _skipped = decode_request(body, knowledge)
    return run(service_id, request, settings, knowledge, cache=cache)


def time_distinct(bodies: list[bytes], settings: Any, knowledge: Any, rounds: int = 3) -> dict[str, Any]:
    from cds_service.statecache import StateCache

    cache = StateCache(settings.state_cache_size)
    for body in distinct_bodies(5, seed=90_000):
        _call(SERVICE_ID, body, settings, knowledge)  # warm the code paths' memos on other charts
    per_round: list[float] = []
    stages: dict[str, list[float]] = {}
    parse: list[float] = []
    for _ in range(rounds):
        cache.clear()
        started = time.process_time()
        for body in bodies:
            result = _call(SERVICE_ID, body, settings, knowledge, cache)
            for k, v in result.timings_ms.items():
                stages.setdefault(k, []).append(v)
        per_round.append((time.process_time() - started) * 1000 / len(bodies))
        t0 = time.process_time()
        for body in bodies:
            orjson.loads(body)
        parse.append((time.process_time() - t0) * 1000 / len(bodies))
    sizes = [patients.count_resources(orjson.loads(b)) for b in bodies]
    return {"charts": len(bodies), "resources_mean": round(statistics.fmean(sizes), 1),
            "body_kib_mean": round(statistics.fmean(len(b) for b in bodies) / 1024, 1),
            "cpu_ms_per_call": round(statistics.median(per_round), 3),
            "cpu_ms_per_call_rounds": [round(x, 3) for x in per_round],
            "orjson_parse_ms": round(statistics.median(parse), 3),
            "stages_ms": {k: round(statistics.median(v), 3) for k, v in stages.items()}}


def cards_without_uuids(result: Any) -> list[dict[str, Any]]:
    """The answer's cards with card and suggestion uuids left out (fresh on every call): what two
    answers must agree on."""
    out = []
    for card in result.response["cards"]:
        card = {k: v for k, v in card.items() if k != "uuid"}
        card["suggestions"] = [{k: v for k, v in s.items() if k != "uuid"} for s in card.get("suggestions", [])]
        out.append(card)
    return out


def time_long_chart(settings: Any, knowledge: Any, years: float = 8.0, reps: int = 5) -> dict[str, Any]:
    bare, full = charts.long_chart(years=years)
    variants = {"bare history": bare, "filtering EHR": charts.filtered(full), "filter-ignoring EHR": full}
    rows = []
    expected = None
    for name, resources in variants.items():
        body = orjson.dumps(charts.requests_for("bench-long", resources))
        result = _call(SERVICE_ID, body, settings, knowledge)
        cards = cards_without_uuids(result)
        expected = cards if expected is None else expected
        wall: list[float] = []
        cpu: list[float] = []
        for _ in range(reps):
            t0, c0 = time.perf_counter(), time.process_time()
            _call(SERVICE_ID, body, settings, knowledge)
            wall.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
        rows.append({"variant": name, "resources": len(resources), "body_mib": round(len(body) / 2**20, 2),
                     "wall_ms": round(statistics.median(wall), 1), "cpu_ms": round(statistics.median(cpu), 1),
                     "wall_ms_min": round(min(wall), 1), "cards": len(cards), "same_cards": cards == expected})
    return {"years": years, "rows": rows}


def cache_patterns(n: int, settings: Any, knowledge: Any, rounds: int = 3) -> dict[str, Any]:
    from cds_service.statecache import StateCache

    chart_list = charts.distinct_charts(n, seed=5000)
    distinct = [(SERVICE_ID, orjson.dumps(charts.requests_for(pid, c))) for pid, c in chart_list]
    pattern: list[tuple[str, bytes]] = []
    for pid, c in chart_list:
        pattern.append((SERVICE_ID, orjson.dumps(charts.requests_for(pid, c))))
        for i, agent in enumerate(("carfilzomib", "pomalidomide")):
            pattern.append((ORDER_SERVICE_ID, orjson.dumps(charts.requests_for(
                pid, c, hook="order-select", draft_agent=agent, instance=f"{pid}-os{i}"))))

    reopen = [(SERVICE_ID, orjson.dumps(charts.requests_for(pid, c, instance=f"{pid}-{i}")))
              for pid, c in chart_list for i in range(2)]

    def cpu(seq: list[tuple[str, bytes]], size: int) -> float:
        cache = StateCache(size)
        started = time.process_time()
        for service_id, body in seq:
            _call(service_id, body, settings, knowledge, cache)
        return (time.process_time() - started) * 1000 / len(seq)

    out: dict[str, Any] = {}
    for name, seq in (("distinct charts, patient-view once", distinct),
                      ("patient-view then order-select twice, same chart", pattern),
                      ("patient-view twice, same chart (opened again)", reopen)):
        off = [cpu(seq, 0) for _ in range(rounds)]
        on = [cpu(seq, 256) for _ in range(rounds)]
        out[name] = {"calls": len(seq), "cpu_ms_cache_off": round(statistics.median(off), 3),
                     "cpu_ms_cache_on": round(statistics.median(on), 3),
                     "change": round(statistics.median(on) / statistics.median(off) - 1, 3)}
    return out

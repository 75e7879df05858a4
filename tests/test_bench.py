"""Smoke test of the benchmark machinery, end to end on tiny settings (not a timed test).

Why: a benchmark that silently broke (a server that does not start, a generator that counts
4xx as answers, a fetch mode that never reaches the FHIR server) would report nonsense. This runs
`bench.run` for real — the service under `python -m cds_service serve`, the floor under the same
gunicorn options, the Python load generator, the FHIR test server — with one-second windows,
and checks that the result is well formed and error-free. Speed targets live in bench/, not here.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from bench import charts, patients
from bench.run import BenchConfig, linearity, markdown, round_trips, run_benchmark
from cds_service.knowledge.loader import default_knowledge
from cds_service.record.decode import observation_is_read


def test_patient_generator_is_sized_deterministic_and_uses_reference_codes() -> None:
    chart = patients.penta_refractory_patient(200)
    assert len(chart) == 200
    assert chart == patients.penta_refractory_patient(200)
    ids = [(r["resourceType"], r["id"]) for r in chart]
    assert len(set(ids)) == len(ids)
    request = patients.hook_request(patients.PATIENT_ID, patients.prefetch_for(chart))
    assert patients.count_resources(request) == 200
    assert set(request["prefetch"]) == set(patients.PREFETCH)
    rxnorm = {c["code"] for r in chart for c in (r.get("medicationCodeableConcept") or {}).get("coding", [])}
    allowed = {code for ingredient, product, _d, _r in patients.DRUGS.values() for code in (ingredient, product)}
    allowed |= {code for code, _t in patients.UNRELATED_MEDS if code}
    assert rxnorm <= allowed


KNOWLEDGE = default_knowledge()


def test_distinct_charts_differ_and_are_the_size_a_filtering_ehr_sends() -> None:
    made = charts.distinct_charts(16)
    assert made == charts.distinct_charts(16)  # deterministic
    assert len({pid for pid, _c in made}) == 16
    for pid, chart in made:
        assert 170 <= len(chart) <= 240
        assert all(r.get("subject", {}).get("reference", f"Patient/{pid}") == f"Patient/{pid}" for r in chart)
        kept = charts.filtered(chart)
        left_out = [r for r in chart if r not in kept]  # only results no rule reads (not in the mappings)
        assert all(not observation_is_read(orjson.dumps(r), KNOWLEDGE) for r in left_out)
    kinds = {(r["resourceType"], "coding" in (r.get("medicationCodeableConcept") or {"coding": 1}))
             for _p, c in made for r in c}
    assert {("MedicationStatement", True), ("MedicationRequest", False)} & kinds  # encodings vary
    assert len({tuple(sorted({r["resourceType"] for r in c})) for _p, c in made}) > 1


def test_long_chart_is_an_eight_year_chart_with_its_noise() -> None:
    bare, full = charts.long_chart()
    routine = [r for r in full if r["resourceType"] == "Observation" and r["id"].startswith("n")]
    admins = [r for r in full if r["resourceType"] == "MedicationAdministration" and r["id"].startswith("n")]
    assert len(routine) == 16_000 + 1_500 and len(admins) == 2_500
    assert set(map(id, bare)) <= set(map(id, full))


def test_round_trips_counts_sequential_waves() -> None:
    assert round_trips([0.0, 0.001, 0.002], 0.02) == 1
    assert round_trips([0.0, 0.012, 0.015], 0.02) == 1  # parallel, dispatched late on a busy machine
    assert round_trips([0.0, 0.001, 0.025, 0.026], 0.02) == 2
    assert round_trips([0.0, 0.021, 0.043], 0.02) == 3
    assert round_trips([], 0.02) == 0


def test_linearity_flags_superlinear_cost() -> None:
    linear = [{"case": f"penta-{n}", "resources": n, "parse_ms": 0.0, "run_ms": 1 + n * 0.01} for n in (50, 200, 1000)]
    quadratic = [{"case": f"penta-{n}", "resources": n, "parse_ms": 0.0, "run_ms": 1 + n * n * 1e-5}
                 for n in (50, 200, 1000)]
    assert linearity(linear)["linear"] is True
    assert linearity(quadratic)["linear"] is False


@pytest.mark.slow
def test_benchmark_runs_end_to_end(tmp_path: Path) -> None:
    cfg = BenchConfig(
        duration_s=1.0, rounds=1, warmup_s=0.0, clients=2, sizes=(50,), target_size=50, synthea=False,
        loadgen="python", http_growth=False, fetch_reps=2, fetch_http=False, inprocess_min_time_s=0.05,
        inprocess_min_reps=3, out_dir=tmp_path, command="pytest tests/test_bench.py", distinct=4, long_years=0.5,
        long_reps=1, cache_charts=2,
    )
    results = run_benchmark(cfg)

    http = results["http"]
    assert http["case"] == "4 distinct charts" and 170 <= http["resources"] <= 240
    assert http["cards"] >= 1  # a real answer (a fast 4xx would not be a benchmark)
    for name in ("floor", "service"):
        r = http[name]
        assert r["errors"] == 0, r["error_kinds"]
        assert r["requests"] > 0 and r["rps"] > 0
        assert 0 < r["p50_ms"] <= r["p99_ms"]
    assert http["ratio"] > 0

    (row,) = results["inprocess"]
    assert row["resources"] == 50 and row["cards"] >= 1 and row["run_ms"] > 0
    assert "record" in row["stages_ms"]

    fetch = results["fetch"]
    assert fetch["fhir_calls_per_hook"] >= len(patients.PREFETCH)  # every key fetched, no prefetch sent
    assert 1 <= fetch["round_trips_per_hook"] <= 2
    assert fetch["cards"] >= 1

    assert results["targets"]["errors"]["ok"] is True
    saved = orjson.loads((tmp_path / "latest.json").read_bytes())
    assert saved["http"]["service"]["requests"] == http["service"]["requests"]
    md = (tmp_path / "latest.md").read_text()
    assert md == markdown(results) and "Single-machine figures" in md
    assert "| service (as deployed) |" in md and "**Charts never seen**" in md
    assert [r["variant"] for r in results["long_chart"]["rows"]] == ["bare history", "filtering EHR",
                                                                      "filter-ignoring EHR"]
    assert all(r["same_cards"] for r in results["long_chart"]["rows"])
    assert results["distinct"]["charts"] == 4 and results["distinct"]["cpu_ms_per_call"] > 0
    assert set(results["cache"]) == {"distinct charts, patient-view once",
                                     "patient-view then order-select twice, same chart",
                                     "patient-view twice, same chart (opened again)"}

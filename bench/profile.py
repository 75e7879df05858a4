"""Profile one benchmark request in process with pyinstrument.

    python -m bench.profile                 # the 200-resource penta-refractory patient, 200 runs
    python -m bench.profile --size 1000 --reps 50
    python -m bench.profile --synthea
    python -m bench.profile --distinct 200   # 200 charts never seen, each once (the target workload)
    python -m bench.profile --by-type        # record-building CPU per resource, by kind of resource

Writes `bench/results/profile-<case>.txt` and `.html` (gitignored) and prints the text tree. The
knowledge is loaded and the request run a few times before profiling starts: what is shown is
the steady state a gunicorn worker sees, not start-up.
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from bench import patients
from bench.run import RESULTS_DIR, SERVICE_ID, BenchConfig, _settings


def _kind(res: dict[str, Any]) -> str:
    """Resource type, split where the generator makes kinds that cost differently."""
    rtype = str(res.get("resourceType"))
    rid = str(res.get("id"))
    if rtype == "Observation":
        return "Observation (vital sign, text code)" if rid.startswith("vital") else "Observation (lab, LOINC)"
    if rtype == "MedicationRequest":
        coded = "coding" in (res.get("medicationCodeableConcept") or {})
        return "MedicationRequest (RxNorm)" if coded else "MedicationRequest (text only)"
    return rtype


def record_cost_by_type(size: int = 2000, reps: int = 5) -> list[tuple[str, int, float]]:
    """CPU µs per resource that `build_record` spends on each kind of resource of the synthetic chart.

    Measured as (core + the resources of one kind) minus (core alone), process CPU time, so the
    fixed cost of the clinical core does not count against the noise resources.
    """
    from cds_service.knowledge.loader import default_knowledge
    from cds_service.record.normalise import build_record

    knowledge = default_knowledge()
    chart = patients.penta_refractory_patient(size)
    core_len = len(patients.penta_refractory_patient(0))
    core, noise = chart[:core_len], chart[core_len:]
    groups: dict[str, list[dict[str, Any]]] = {}
    for res in noise:
        groups.setdefault(_kind(res), []).append(res)

    def cpu(resources: list[dict[str, Any]], n: int) -> float:
        build_record(resources, patients.AS_OF, knowledge)
        t0 = time.process_time()
        for _ in range(n):
            build_record(resources, patients.AS_OF, knowledge)
        return (time.process_time() - t0) / n

    base = cpu(core, reps * 10)
    out = [(kind, len(items), round((cpu(core + items, reps) - base) / len(items) * 1e6, 1))
           for kind, items in sorted(groups.items())]
    return sorted(out, key=lambda row: -row[2])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--synthea", action="store_true", help="profile the largest Synthea patient instead")
    parser.add_argument("--distinct", type=int, default=0, metavar="N",
                        help="profile N different charts, each once, decoded as served (bench/charts.py)")
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.0005, help="sampling interval (s)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--by-type", action="store_true", help="record CPU per resource by kind, then exit")
    args = parser.parse_args(argv)
    if args.by_type:
        print("| kind of resource | count | record CPU µs/resource |\n|---|---:|---:|")
        for kind, count, us in record_cost_by_type():
            print(f"| {kind} | {count} | {us} |")
        return 0

    from pyinstrument import Profiler

    from cds_service.knowledge.loader import default_knowledge
    from cds_service.pipeline import run
    from cds_service.record.decode import decode_request

    settings = _settings(BenchConfig(), Path(tempfile.mkdtemp(prefix="mmcds-profile-")))
    knowledge = default_knowledge()
    if args.distinct:
        from bench.distinct import distinct_bodies

        bodies, name = distinct_bodies(args.distinct), f"distinct-{args.distinct}"
        warm = distinct_bodies(5, seed=90_000)
    else:
        if args.synthea:
            pid, chart = patients.largest_synthea_patient()
            name = "synthea-largest"
        else:
            pid, chart = patients.PATIENT_ID, patients.penta_refractory_patient(args.size)
            name = f"penta-{args.size}"
        bodies = [orjson.dumps(patients.hook_request(pid, patients.prefetch_for(chart)))] * args.reps
        warm = bodies[:5]
    for body in warm:
        run(SERVICE_ID, decode_request(body, knowledge)[0], settings, knowledge)
    # The collector as a served worker runs it (cds_service/server.py: pre_fork, post_fork).
    from cds_service.server import GC_THRESHOLDS

    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)

    profiler = Profiler(interval=args.interval)
    profiler.start()
    for body in bodies:
        run(SERVICE_ID, decode_request(body, knowledge)[0], settings, knowledge)
    profiler.stop()

    args.out.mkdir(parents=True, exist_ok=True)
    text = profiler.output_text(unicode=True, color=False, show_all=False)
    (args.out / f"profile-{name}.txt").write_text(text)
    (args.out / f"profile-{name}.html").write_text(profiler.output_html())
    print(text)
    print(f"written: {args.out / f'profile-{name}.txt'} and .html")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

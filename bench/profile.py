"""Profile one benchmark request in process with pyinstrument.

    python -m bench.profile                 # the 200-resource penta-refractory patient, 200 runs
    python -m bench.profile --size 1000 --reps 50
    python -m bench.profile --synthea

Writes `bench/results/profile-<case>.txt` and `.html` (gitignored) and prints the text tree. The
knowledge is loaded and the request run a few times before profiling starts: what is shown is
the steady state a gunicorn worker sees, not start-up.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import orjson

from bench import patients
from bench.run import RESULTS_DIR, SERVICE_ID, BenchConfig, _settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--synthea", action="store_true", help="profile the largest Synthea patient instead")
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.0005, help="sampling interval (s)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)

    from pyinstrument import Profiler

    from cds_service.knowledge.loader import default_knowledge
    from cds_service.pipeline import run

    if args.synthea:
        pid, chart = patients.largest_synthea_patient()
        name = "synthea-largest"
    else:
        pid, chart = patients.PATIENT_ID, patients.penta_refractory_patient(args.size)
        name = f"penta-{args.size}"
    body = orjson.dumps(patients.hook_request(pid, patients.prefetch_for(chart)))
    settings = _settings(BenchConfig(), Path(tempfile.mkdtemp(prefix="mmcds-profile-")))
    knowledge = default_knowledge()
    for _ in range(5):
        run(SERVICE_ID, orjson.loads(body), settings, knowledge)

    profiler = Profiler(interval=args.interval)
    profiler.start()
    for _ in range(args.reps):
        run(SERVICE_ID, orjson.loads(body), settings, knowledge)
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

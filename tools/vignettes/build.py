"""Build the vignette fixtures (complete CDS Hooks requests) from the patient data files.

Each `patients/<key>.yaml` describes one patient: demographics, the chart as an ordered list of
records (each rendered by one encoder, see clinical.py / medications.py) and the order scenarios
(orders.py). One patient-view request is written per patient and one request per order scenario;
the expected outcomes live in tests/vignettes/expected.yaml. Output is deterministic: hookInstance is a
UUIDv5 of the scenario, resource ids are numbered in record order.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path
from typing import Any

from tools.vignettes import clinical, medications  # noqa: F401 - importing registers the encoders
from tools.vignettes.catalog import load_yaml
from tools.vignettes.chart import ENCODERS, PREFETCH_KEYS, Chart, DataError, Spec
from tools.vignettes.orders import draft_orders

HERE = Path(__file__).resolve().parent
PATIENTS = HERE / "patients"
ROOT = HERE.parent.parent
FIXTURES = ROOT / "fixtures" / "patients"
AS_OF = "2026-11-01"  # the date the order drafts are written; expected.yaml's as_of
FHIR_PLACEHOLDER = "http://localhost/fhir"
PATIENT_KEYS = {"patient", "chart", "outcomes", "orders"}


def build_chart(key: str, data: dict[str, Any]) -> Chart:
    """Render the chart records of one patient, in order, through their encoders."""
    chart = Chart(pid=data["patient"]["id"])
    for i, item in enumerate(data.get("chart") or []):
        if not isinstance(item, dict) or len(item) != 1:
            raise DataError(f"{key}: chart item {i + 1} must be one `kind: {{...}}` mapping, got {item!r}")
        (kind, body), = item.items()
        if kind not in ENCODERS:
            raise DataError(f"{key}: chart item {i + 1}: unknown kind {kind!r}; known: {sorted(ENCODERS)}")
        spec = Spec(f"{key}: chart item {i + 1} ({kind})", body)
        try:
            ENCODERS[kind](chart, spec)
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"{key}: chart item {i + 1} ({kind}): {e}") from e
        spec.done()
    for bundle_key, issues in (data.get("outcomes") or {}).items():
        chart.outcomes[bundle_key] = [{"resourceType": "OperationOutcome", "id": o["id"], "issue": [{
            "severity": o["severity"], "code": o["code"], "diagnostics": o["diagnostics"]}]} for o in issues]
    return chart


def patient_resource(key: str, data: dict[str, Any]) -> dict[str, Any]:
    p = data["patient"]
    return {"resourceType": "Patient", "id": p["id"], "active": True, "gender": p["gender"],
            "birthDate": p["birthDate"], "name": [{"family": "Vignette", "given": [key.split("-")[0].upper()]}]}


def prefetch(key: str, data: dict[str, Any], chart: Chart) -> dict[str, Any]:
    out: dict[str, Any] = {"patient": patient_resource(key, data)}
    for k in PREFETCH_KEYS[1:]:
        matches = chart.res[k]
        entry = [{"fullUrl": f"{FHIR_PLACEHOLDER}/{r['resourceType']}/{r['id']}", "resource": r,
                  "search": {"mode": "match"}} for r in matches]
        entry += [{"fullUrl": f"{FHIR_PLACEHOLDER}/Medication/{m['id']}", "resource": m,
                   "search": {"mode": "include"}} for m in chart.includes[k]]
        entry += [{"resource": oo, "search": {"mode": "outcome"}} for oo in chart.outcomes.get(k, [])]
        b: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": len(matches)}
        if entry:
            b["entry"] = entry
        out[k] = b
    return out


def request(key: str, chart: Chart, pf: dict[str, Any], hook: str, suffix: str,
            context: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "hookInstance": str(uuid.uuid5(uuid.NAMESPACE_URL, f"mmcds-vignette/{key}/{hook}/{suffix}")),
        "hook": hook,
        "fhirServer": FHIR_PLACEHOLDER,
        "context": {"userId": "Practitioner/vignette-hematologist", "patientId": chart.pid, **(context or {})},
        "prefetch": pf,
    }


def build_patient(key: str, data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """All requests of one patient: {fixture file name: request}."""
    unknown = set(data) - PATIENT_KEYS
    if unknown or "patient" not in data:
        raise DataError(f"{key}: top-level keys must be {sorted(PATIENT_KEYS)} (patient required), got {sorted(data)}")
    chart = build_chart(key, data)
    pf = prefetch(key, data, chart)
    out = {f"{key}.json": request(key, chart, pf, "patient-view", "pv")}
    for order in data.get("orders") or []:
        ctx = draft_orders(chart, order, AS_OF)
        out[f"{key}.{order['name']}.{order['hook']}.json"] = request(key, chart, pf, order["hook"], order["name"], ctx)
    return out


def patient_files(folder: Path = PATIENTS) -> list[Path]:
    return sorted(folder.glob("*.yaml"))


def render(obj: Any) -> str:
    return json.dumps(obj, indent=1, ensure_ascii=False) + "\n"


def render_all(folder: Path = PATIENTS) -> dict[str, str]:
    """Every fixture the patient files generate: {file name: file text}."""
    out: dict[str, str] = {}
    for path in patient_files(folder):
        for name, req in build_patient(path.stem, load_yaml(path)).items():
            out[name] = render(req)
    return out


def write(out_dir: Path, fixtures: dict[str, str]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.json"):
        old.unlink()
    for name, text in fixtures.items():
        (out_dir / name).write_text(text)


def drift(out_dir: Path, fixtures: dict[str, str]) -> list[str]:
    """File names whose shipped text differs from the generated one (missing and extra files included)."""
    shipped = {p.name: p.read_text() for p in out_dir.glob("*.json")}
    return sorted(n for n in set(shipped) | set(fixtures) if shipped.get(n) != fixtures.get(n))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write the vignette fixtures from tools/vignettes/patients/*.yaml.")
    ap.add_argument("--out", type=Path, default=FIXTURES, help="output folder (default fixtures/patients)")
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 if the folder differs")
    args = ap.parse_args(argv)
    fixtures = render_all()
    if args.check:
        stale = drift(args.out, fixtures)
        print("\n".join(stale) if stale else f"{len(fixtures)} fixtures match the patient data")
        return 1 if stale else 0
    write(args.out, fixtures)
    print(f"wrote {len(fixtures)} fixtures from {len(patient_files())} patients to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

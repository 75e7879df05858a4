"""Builders for record tests: knowledge from mappings/ only, and small FHIR dicts."""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from typing import Any

from cds_service.knowledge.loader import Knowledge, _load_folder, data_root, schema_validators
from tests.shared_paths import SYNTHEA

SYNTHEA_DIR = SYNTHEA
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ATC = "http://www.whocc.no/atc"


@functools.lru_cache(maxsize=1)
def knowledge() -> Knowledge:
    """The mappings/ knowledge (cards/ are not needed to build a record)."""
    mappings = _load_folder(data_root() / "mappings", schema_validators())
    return Knowledge(version="test", mappings=mappings, cards={}, digest="test")


def cc(code: str | None = None, system: str | None = None, display: str | None = None, text: str | None = None) -> dict:
    out: dict[str, Any] = {}
    if code is not None or display is not None:
        coding: dict[str, Any] = {}
        if system:
            coding["system"] = system
        if code is not None:
            coding["code"] = code
        if display is not None:
            coding["display"] = display
        out["coding"] = [coding]
    if text is not None:
        out["text"] = text
    return out


def synthea_patients() -> dict[str, list[dict]]:
    """Synthea NDJSON grouped by patient reference ("Patient/<id>" -> resources)."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for path in sorted(SYNTHEA_DIR.glob("*.ndjson")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            res = json.loads(line)
            if res.get("resourceType") == "Patient":
                key = f"Patient/{res['id']}"
            else:
                key = (res.get("subject") or res.get("patient") or {}).get("reference", "")
            groups[key].append(res)
    return dict(groups)

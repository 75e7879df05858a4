"""Labs in their units: free light chains, beta-2-microglobulin, creatinine, urine M-protein."""

from __future__ import annotations

from datetime import date

import pytest
from record_helpers import LOINC, cc, knowledge

from cds_service.record.labs import convert, lab_kind_of_text
from cds_service.record.normalise import build_record


@pytest.mark.parametrize(("kind", "value", "unit", "expected"), [
    ("flc-kappa", 45.0, "mg/L", 45.0), ("flc-kappa", 4.5, "mg/dL", 45.0), ("flc-lambda", 0.045, "g/L", 45.0),
    ("flc-kappa", 45.0, "", 45.0), ("b2m", 6.2, "mg/L", 6.2), ("b2m", 6.2, "ug/mL", 6.2), ("b2m", 6.2, "µg/mL", 6.2),
    ("b2m", 0.62, "mg/dL", 6.2), ("b2m", 6200.0, "ng/mL", 6.2), ("creatinine", 0.9, "mg/dL", 0.9),
    ("creatinine", 88.4, "umol/L", 1.0), ("creatinine", 106.08, "µmol/L", 1.2), ("creatinine", 1.1, "", 1.1),
    ("urine-m-protein", 350.0, "mg/24h", 350.0), ("urine-m-protein", 0.35, "g/24 h", 350.0),
    ("urine-m-protein", 0.35, "g/(24.h)", 350.0), ("urine-m-protein", 350.0, "mg/d", 350.0),
])
def test_units_are_converted(kind, value, unit, expected):
    assert convert(kind, value, unit) == pytest.approx(expected)


@pytest.mark.parametrize(("kind", "value", "unit"), [
    ("flc-kappa", 45.0, "mmol/L"), ("creatinine", 90.0, ""), ("urine-m-protein", 350.0, ""),
    ("urine-m-protein", 35.0, "mg/dL"), ("b2m", 6.2, "nmol/L")])
def test_units_not_understood_are_not_guessed(kind, value, unit):
    assert convert(kind, value, unit) is None


@pytest.mark.parametrize(("text", "kind"), [
    ("Free Kappa Light Chains, serum", "flc-kappa"), ("FLC kappa", "flc-kappa"), ("Kappa free light chain", "flc-kappa"),
    ("Free lambda light chains", "flc-lambda"), ("Kappa/Lambda free light chain ratio", None),
    ("Kappa free light chain, urine", None), ("Beta-2 Microglobulin", "b2m"), ("β2-microglobulin (serum)", "b2m"),
    ("B2M", "b2m"), ("Beta-2 microglobulin, CSF", None), ("Creatinine", "creatinine"), ("Creatinine, serum", "creatinine"),
    ("Creatinine clearance", None), ("eGFR (creatinine-based)", None), ("Albumin/Creatinine ratio, urine", None),
    ("M-protein, 24h urine", "urine-m-protein"), ("Urine monoclonal protein (24 hour)", "urine-m-protein"),
    ("M-protein, serum", None), ("Potassium", None),
])
def test_local_lab_wording(text, kind):
    assert lab_kind_of_text(text, knowledge()) == kind


def test_unreadable_unit_is_a_note_not_a_value():
    rec = build_record([{"resourceType": "Observation", "id": "x", "status": "final", "code": cc("1952-1", LOINC),
                         "effectiveDateTime": "2026-01-01", "valueQuantity": {"value": 500, "unit": "nmol/L"}}],
                       date(2026, 11, 1), knowledge())
    assert rec.b2m == [] and any("beta-2-microglobulin" in n and "nmol/L" in n for n in rec.notes)


def test_value_string_with_unit_and_comparator():
    rec = build_record([
        {"resourceType": "Observation", "id": "k", "status": "final", "code": cc("36916-5", LOINC),
         "effectiveDateTime": "2026-01-01", "valueString": "12.5 mg/dL"},
        {"resourceType": "Observation", "id": "l", "status": "final", "code": cc(text="Free lambda light chains"),
         "effectiveDateTime": "2026-01-01", "valueString": "<0.5 mg/L"},
    ], date(2026, 11, 1), knowledge())
    assert sorted((v.code, v.value) for v in rec.flc) == [("36916-5", 125.0), ("lambda", 0.5)]

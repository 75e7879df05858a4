"""FISH / cytogenetics in its many encodings → CytoFinding (documented negatives included)."""

from __future__ import annotations

import base64
from datetime import date

import pytest
from record_helpers import LOINC, SNOMED, cc, knowledge

from cds_service.record.fish import parse_fish_text
from cds_service.record.normalise import build_record

AS_OF = date(2026, 11, 1)


def record(*resources):
    return build_record(list(resources), AS_OF, knowledge())


def findings(rec):
    return sorted((f.abnormality, f.present) for f in rec.cytogenetics)


@pytest.mark.parametrize(("text", "expected"), [
    ("TP53 (17p13.1) deletion DETECTED in 47% of nuclei; CCND1/IGH t(11;14) not detected",
     [("del(17p)", True, 0.47), ("t(11;14)", False, None)]),
    ("IGH/FGFR3 fusion positive", [("t(4;14)", True, None)]),
    ("1q21 gain (CKS1B) 3 copies", [("1q-gain", True, None)]),
    ("CKS1B 2 copies (normal)", [("1q-gain", False, None)]),
    ("MAF/IGH t(14;16) negative", [("t(14;16)", False, None)]),
    ("MAFB/IGH rearrangement detected", [("t(14;20)", True, None)]),
    ("Negative for t(4;14), t(14;16), del(17p)",
     [("t(4;14)", False, None), ("t(14;16)", False, None), ("del(17p)", False, None)]),
    ("t(4;14), t(14;16) and del(17p) not detected",
     [("t(4;14)", False, None), ("del(17p)", False, None), ("t(14;16)", False, None)]),
    ("No evidence of IGH/CCND1 fusion", [("t(11;14)", False, None)]),
    ("CDKN2C (1p32) deletion present in 30% of cells", [("del(1p)", True, 0.30)]),
    ("Gain of 1q detected, TP53 deletion absent", [("1q-gain", True, None), ("del(17p)", False, None)]),
    ("NSD2/IGH fusion: POSITIVE", [("t(4;14)", True, None)]),
    ("Probes used: TP53, IGH/FGFR3 fusion, CCND1/IGH, 1q21", []),  # names genes, gives no result
    ("FGFR3 mutation analysis pending", []),
    ("t(4;14) negative, t(11;14) inconclusive", [("t(4;14)", False, None)]),
    ("TP53 deletion: 0% of nuclei", [("del(17p)", False, None)]),
    ("IGH/CCND1 fusion in 3% of nuclei, below cutoff", [("t(11;14)", False, None)]),
    ("Negative: del(17p), t(4;14). Positive: t(11;14) (60%).",
     [("del(17p)", False, None), ("t(4;14)", False, None), ("t(11;14)", True, 0.6)]),
    ("del(17p)\tNot detected\nt(4;14)\tDetected", [("del(17p)", False, None), ("t(4;14)", True, None)]),
    ("IGH/MAF: no call; TP53 deletion not detected", [("del(17p)", False, None)]),
    ("Karyotype 46,XY,t(11;14)(q13;q32)[20]", [("t(11;14)", True, None)]),
])
def test_narrative(text, expected):
    got = parse_fish_text(text, knowledge())
    assert sorted(got, key=str) == sorted(
        [(a, p, pytest.approx(f) if f is not None else None) for a, p, f in expected], key=str)


def variant(iscn=None, value=None, gene=None, loc=None, oid="v1", extra_components=()):
    comps = []
    if iscn:
        comps.append({"code": cc("81291-7", LOINC), "valueCodeableConcept": {"coding": [
            {"system": "http://varnomen.hgvs.org", "code": iscn}], "text": iscn}})
    if gene:
        comps.append({"code": cc("48018-6", LOINC), "valueCodeableConcept": cc(gene, "http://www.genenames.org/geneId", gene)})
    if loc:
        comps.append({"code": cc("48001-2", LOINC), "valueString": loc})
    comps.extend(extra_components)
    res = {"resourceType": "Observation", "id": oid, "status": "final", "code": cc("69548-6", LOINC),
           "method": cc("426329006", SNOMED), "effectiveDateTime": "2022-11-30", "component": comps}
    if value:
        res["valueCodeableConcept"] = value
    return res


def test_genomics_reporting_variants():
    rec = record(
        variant("t(11;14)(q13;q32)", cc("LA9633-4", LOINC, "Present"), oid="a"),
        variant("del(17)(p13.1)", cc("LA9634-2", LOINC, "Absent"), oid="b"),
        variant("+1q", None, oid="c"),
        variant(None, cc("LA9633-4", LOINC, "Present"), gene="HGNC:3690", loc="4p16.3", oid="d",
                extra_components=[{"code": cc(text="gene studied display"), "valueString": "FGFR3::IGH"}]),
        variant("t(4;14)(p16;q32)", cc(text="Not detected"), oid="e"),
        variant("t(14;16)", {"coding": [{"system": LOINC, "code": "LA9634-2"}]}, oid="g"),  # code only
        variant("t(14;20)", cc("LA18198-4", LOINC, "No call"), oid="h"),  # no result: no finding
        variant(None, cc("LA9634-2", LOINC, "Absent"), oid="i",
                extra_components=[{"code": cc("48018-6", LOINC), "valueCodeableConcept": {"coding": [
                    {"system": "http://www.genenames.org/geneId", "code": "HGNC:11998"}]}}]),
        variant(None, cc("LA9633-4", LOINC, "Present"), gene="CKS1B", loc="1q21",
                extra_components=[{"code": cc("82155-3", LOINC), "valueQuantity": {"value": 4}}], oid="f"),
    )
    got = sorted((f.source, f.abnormality, f.present) for f in rec.cytogenetics)
    assert got == [("Observation/a", "t(11;14)", True), ("Observation/b", "del(17p)", False),
                   ("Observation/c", "1q-gain", True), ("Observation/d", "t(4;14)", True),
                   ("Observation/e", "t(4;14)", False), ("Observation/f", "1q-gain", True),
                   ("Observation/g", "t(14;16)", False), ("Observation/i", "del(17p)", False)]
    assert all(f.date == date(2022, 11, 30) for f in rec.cytogenetics)


def test_variant_with_allelic_fraction():
    rec = record(variant("del(17p)", cc("LA9633-4", LOINC, "Present"),
                         extra_components=[{"code": cc("81258-6", LOINC), "valueQuantity": {"value": 35, "unit": "%"}}]))
    assert rec.cytogenetics[0].clonal_fraction == pytest.approx(0.35)


def test_lab_style_observations():
    rec = record(
        {"resourceType": "Observation", "id": "l1", "status": "final", "code": cc(text="FISH del(17p)"),
         "valueCodeableConcept": cc(text="Detected"), "effectiveDateTime": "2023-01-01"},
        {"resourceType": "Observation", "id": "l2", "status": "final", "code": cc("LAB123", "urn:lab", "FISH t(11;14)"),
         "valueString": "Negative", "effectiveDateTime": "2023-01-01"},
        {"resourceType": "Observation", "id": "l3", "status": "final", "code": cc(text="Myeloma FISH panel"),
         "effectiveDateTime": "2023-01-01",
         "component": [{"code": cc(text="IGH/FGFR3 t(4;14)"), "valueString": "Not detected"},
                       {"code": cc(text="1q21 (CKS1B) gain"), "valueCodeableConcept": cc(text="Detected")}]},
        {"resourceType": "Observation", "id": "l4", "status": "final", "code": cc(text="Cytogenetics"),
         "effectiveDateTime": "2023-01-01", "note": [{"text": "IGH/MAF fusion detected in 12% of nuclei."}]},
    )
    assert sorted((f.source, f.abnormality, f.present) for f in rec.cytogenetics) == [
        ("Observation/l1", "del(17p)", True), ("Observation/l2", "t(11;14)", False),
        ("Observation/l3", "1q-gain", True), ("Observation/l3", "t(4;14)", False), ("Observation/l4", "t(14;16)", True)]


def test_diagnostic_report_conclusion_and_presented_form():
    text = "FISH (plasma cell enriched): TP53 deletion detected in 62% of nuclei.\nCCND1/IGH: not detected."
    rec = record(
        {"resourceType": "DiagnosticReport", "id": "r1", "status": "final", "code": cc(text="Plasma cell FISH panel"),
         "effectiveDateTime": "2024-02-02", "conclusion": "Positive for t(4;14). Negative for t(14;16)."},
        {"resourceType": "DiagnosticReport", "id": "r2", "status": "final", "code": cc(text="Bone marrow report"),
         "issued": "2024-02-03T10:00:00Z",
         "presentedForm": [{"contentType": "text/plain", "data": base64.b64encode(text.encode()).decode()}]},
        {"resourceType": "DiagnosticReport", "id": "r3", "status": "final", "code": cc(text="Cytogenetics"),
         "conclusionCode": [cc(text="del(1p32) detected")]},
        {"resourceType": "DiagnosticReport", "id": "r4", "status": "final", "code": cc(text="CBC"),
         "conclusion": "TP53 deletion detected"},  # no FISH wording anywhere: not a FISH report
    )
    got = sorted((f.source, f.abnormality, f.present, f.clonal_fraction) for f in rec.cytogenetics)
    assert got == [("DiagnosticReport/r1", "t(14;16)", False, None), ("DiagnosticReport/r1", "t(4;14)", True, None),
                   ("DiagnosticReport/r2", "del(17p)", True, pytest.approx(0.62)),
                   ("DiagnosticReport/r2", "t(11;14)", False, None), ("DiagnosticReport/r3", "del(1p)", True, None)]
    r2 = [f for f in rec.cytogenetics if f.source == "DiagnosticReport/r2"]
    assert all(f.date == date(2024, 2, 3) for f in r2)


def test_bad_base64_is_ignored():
    rec = record({"resourceType": "DiagnosticReport", "id": "r", "code": cc(text="FISH"),
                  "presentedForm": [{"contentType": "text/plain", "data": "%%%not base64%%%"}]})
    assert rec.cytogenetics == []


def test_observation_named_by_the_abnormality_and_document_reference():
    doc = "Interphase FISH on CD138-enriched cells: IGH::CCND1 fusion detected in 80% of nuclei."
    rec = record(
        {"resourceType": "Observation", "id": "o", "status": "final", "code": cc("L9", "urn:lab", "TP53 deletion"),
         "valueCodeableConcept": cc(text="Not detected"), "effectiveDateTime": "2023-05-05"},
        {"resourceType": "Observation", "id": "q", "status": "final", "code": cc(text="TP53 deletion"),
         "effectiveDateTime": "2023-05-05"},  # no result: no finding
        {"resourceType": "DocumentReference", "id": "d", "status": "current", "date": "2023-05-06T10:00:00Z",
         "type": cc(text="Cytogenetics report"),
         "content": [{"attachment": {"contentType": "text/plain; charset=utf-8",
                                     "data": base64.b64encode(doc.encode()).decode()}}]},
    )
    got = sorted((f.source, f.abnormality, f.present, f.clonal_fraction) for f in rec.cytogenetics)
    assert got == [("DocumentReference/d", "t(11;14)", True, pytest.approx(0.8)),
                   ("Observation/o", "del(17p)", False, None)]

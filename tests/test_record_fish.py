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


# --- negated mentions are never positives ------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    # one negation for a whole list, after it or before it
    ("TP53 deletion, 1q21 gain, t(4;14), t(14;16) … not detected",
     {("del(17p)", False), ("1q-gain", False), ("t(4;14)", False), ("t(14;16)", False)}),
    ("TP53 deletion, 1q21 gain, t(4;14), t(14;16) and t(14;20) were not detected.",
     {("del(17p)", False), ("1q-gain", False), ("t(4;14)", False), ("t(14;16)", False), ("t(14;20)", False)}),
    ("IGH/FGFR3 FUSION, T(4;14): NOT DETECTED", {("t(4;14)", False)}),
    ("No evidence of TP53 deletion, 1q gain or IGH/MAF fusion",
     {("del(17p)", False), ("1q-gain", False), ("t(14;16)", False)}),
    ("Not detected:\nTP53 deletion,\n1q21 gain,\nt(4;14)", {("del(17p)", False), ("1q-gain", False), ("t(4;14)", False)}),
    ("TP53 deletion\n1q21 gain\nIGH/FGFR3 t(4;14)\nNEGATIVE", {("del(17p)", False), ("1q-gain", False), ("t(4;14)", False)}),
    ("No TP53 deletion detected", {("del(17p)", False)}),
    ("del(17p): absent", {("del(17p)", False)}),
    ("IGH/CCND1 fusion: No", {("t(11;14)", False)}),
    # mixed reports: exactly the right positives
    ("t(11;14) detected; del(17p) not detected", {("t(11;14)", True), ("del(17p)", False)}),
    ("t(11;14) detected, del(17p) not detected", {("t(11;14)", True), ("del(17p)", False)}),
    ("Positive for t(11;14) in 60% of nuclei, negative for del(17p), 1q gain and t(4;14)",
     {("t(11;14)", True), ("del(17p)", False), ("1q-gain", False), ("t(4;14)", False)}),
    ("Abnormal result: IGH/FGFR3 t(4;14) detected. No evidence of TP53 deletion, 1q gain.",
     {("t(4;14)", True), ("del(17p)", False), ("1q-gain", False)}),
    ("t(4;14) and del(17p) were not detected, but t(11;14) was detected in 60%.",
     {("t(4;14)", False), ("del(17p)", False), ("t(11;14)", True)}),
])
def test_negated_lists_and_mixed_reports(text, expected):
    assert {(a, p) for a, p, _ in parse_fish_text(text, knowledge())} == expected


def test_del17p_clone_fraction_and_del1p_allelic_state_from_text():
    from cds_service.record.fish import read_fish_text
    got = {r.abnormality: r for r in read_fish_text(
        "del(17p) in 45% of plasma cells; CDKN2C (1p32) biallelic deletion detected in 30% of nuclei; "
        "TP53 mutation detected (p.R273H)", knowledge())}
    assert got["del(17p)"].present and got["del(17p)"].fraction == pytest.approx(0.45)
    assert got["del(1p)"].present and got["del(1p)"].allelic == "bi"
    assert got["TP53-mutation"].present and "del(17p)" in got  # the mutation is not a second del(17p)
    assert read_fish_text("CDKN2C (1p32): 1 copy", knowledge())[0].allelic == "mono"
    assert [(r.abnormality, r.present) for r in read_fish_text(
        "TP53 sequencing: no pathogenic variant detected", knowledge())] == [("TP53-mutation", False)]


def _lab_fish(oid, code_text, components=None, **value):
    res = {"resourceType": "Observation", "id": oid, "status": "final", "code": cc(text=code_text),
           "effectiveDateTime": "2024-03-01", **value}
    if components:
        res["component"] = components
    return res


def test_issue_encodings_of_negated_fish_give_no_positive():
    """The report and the component of the issue, in the ways labs send them."""
    report = "Plasma cell FISH: TP53 deletion, 1q21 gain, t(4;14), t(14;16) … not detected."
    rec = record(
        {"resourceType": "DiagnosticReport", "id": "r", "status": "final", "code": cc(text="Myeloma FISH panel"),
         "effectiveDateTime": "2024-03-01",
         "presentedForm": [{"contentType": "text/plain", "data": base64.b64encode(report.encode()).decode()}]},
        _lab_fish("text", "Myeloma FISH panel", valueString=report),
        _lab_fish("comp", "Myeloma FISH panel", [
            {"code": cc(text="IGH/FGFR3 FUSION, T(4;14)"), "valueString": "NOT DETECTED"},
            {"code": cc(text="TP53 (17p13.1) deletion"), "valueCodeableConcept": cc("260415000", SNOMED)},
            {"code": cc(text="1q21 (CKS1B) gain"), "valueCodeableConcept": cc(text="Negative")}]),
        variant(None, None, oid="var", extra_components=[
            {"code": cc(text="IGH/FGFR3 FUSION, T(4;14)"), "valueCodeableConcept": cc(text="NOT DETECTED")}]),
        _lab_fish("one", "IGH/FGFR3 FUSION, T(4;14)", valueCodeableConcept=cc("LA9634-2", LOINC)),
    )
    assert rec.cytogenetics and not [f for f in rec.cytogenetics if f.present]
    by_src = {}
    for f in rec.cytogenetics:
        by_src.setdefault(f.source, set()).add(f.abnormality)
    assert by_src["DiagnosticReport/r"] == by_src["Observation/text"] == {"del(17p)", "1q-gain", "t(4;14)", "t(14;16)"}
    assert by_src["Observation/comp"] == {"t(4;14)", "del(17p)", "1q-gain"}
    assert by_src["Observation/var"] == by_src["Observation/one"] == {"t(4;14)"}


def test_mixed_report_in_three_encodings():
    text = "t(11;14) detected; del(17p) not detected"
    rec = record(
        {"resourceType": "DiagnosticReport", "id": "r", "status": "final", "code": cc(text="FISH"),
         "effectiveDateTime": "2024-03-01", "conclusion": text},
        _lab_fish("s", "Cytogenetics (FISH)", valueString=text),
        _lab_fish("c", "Myeloma FISH panel", [
            {"code": cc(text="CCND1/IGH t(11;14)"), "valueCodeableConcept": cc("260373001", SNOMED, "Detected")},
            {"code": cc(text="TP53 deletion del(17p)"), "valueCodeableConcept": cc("260415000", SNOMED, "Not detected")}]),
    )
    for src in ("DiagnosticReport/r", "Observation/s", "Observation/c"):
        got = {(f.abnormality, f.present) for f in rec.cytogenetics if f.source == src}
        assert got == {("t(11;14)", True), ("del(17p)", False)}, src


def test_del17p_clone_size_coded_and_free_text():
    rec = record(
        variant("del(17)(p13.1)", cc("LA9633-4", LOINC, "Present"), oid="v", extra_components=[
            {"code": cc("81258-6", LOINC), "valueQuantity": {"value": 45, "unit": "%", "code": "%"}}]),
        _lab_fish("q", "FISH del(17p) % of plasma cells", valueQuantity={"value": 45, "unit": "%"}),
        _lab_fish("c", "Myeloma FISH panel", [
            {"code": cc(text="TP53 deletion"), "valueCodeableConcept": cc(text="Detected")},
            {"code": cc(text="TP53 deletion, % of plasma cells"), "valueQuantity": {"value": 45, "unit": "%"}}]),
        {"resourceType": "DiagnosticReport", "id": "r", "status": "final", "code": cc(text="FISH"),
         "effectiveDateTime": "2024-03-01", "conclusion": "del(17p) in 45% of plasma cells"},
    )
    got = {f.source: (f.abnormality, f.present, f.clonal_fraction) for f in rec.cytogenetics}
    for src in ("Observation/v", "Observation/q", "Observation/c", "DiagnosticReport/r"):
        assert got[src] == ("del(17p)", True, pytest.approx(0.45)), src


def test_tp53_mutation_coded_and_free_text_is_not_del17p():
    rec = record(
        variant(None, cc("LA9633-4", LOINC, "Present"), gene="TP53", oid="v", extra_components=[
            {"code": cc("48005-3", LOINC), "valueCodeableConcept": cc(text="p.Arg273His")}]),
        _lab_fish("t", "TP53 mutation analysis (NGS)", valueString="Pathogenic variant detected: TP53 p.R273H"),
    )
    assert {(f.source, f.abnormality, f.present) for f in rec.cytogenetics} == {
        ("Observation/v", "TP53-mutation", True), ("Observation/t", "TP53-mutation", True)}


def test_biallelic_del1p_coded_copy_number_and_text():
    rec = record(
        variant(None, cc("LA9633-4", LOINC, "Present"), gene="CDKN2C", loc="1p32.3", oid="v",
                extra_components=[{"code": cc("82155-3", LOINC), "valueQuantity": {"value": 0}}]),
        {"resourceType": "DiagnosticReport", "id": "r", "status": "final", "code": cc(text="FISH"),
         "effectiveDateTime": "2024-03-01", "conclusion": "Homozygous (biallelic) deletion of CDKN2C (1p32) detected."},
    )
    assert {(f.source, f.abnormality, f.present, f.allelic) for f in rec.cytogenetics} == {
        ("Observation/v", "del(1p)", True, "bi"), ("DiagnosticReport/r", "del(1p)", True, "bi")}

"""Encoders of the disease record: conditions, disease status, labs (M-protein, free light chains), ECOG,
FISH (coded Genomics Reporting variants, local probe observations, free-text reports) and procedures
(transplants, CAR-T infusions).

Why these variants: progression reaches an EHR as an mCODE disease status, a relapse Condition
(C90.02 or clinicalStatus relapse), or only as lab values; FISH as coded variants or as a report's
sentence. Each shape is one data key, so a specialist can vary the encoding without writing FHIR.
"""

from __future__ import annotations

from typing import Any

from tools.vignettes.catalog import catalog, coding, codings
from tools.vignettes.chart import Chart, DataError, Spec, drug_concept, encoder

FISH_METHOD = {"coding": [{"system": "http://snomed.info/sct", "code": "426329006",
                           "display": "Fluorescence in situ hybridization"}]}
UCUM = "http://unitsofmeasure.org"


# ------------------------------------------------------------------------------ conditions
def add_condition(chart: Chart, rows: list[list[str]], onset: str, text: str, clinical: str = "active",
                  verification: str = "confirmed") -> None:
    """A problem-list Condition; R4 forbids clinicalStatus when the verification is entered-in-error."""
    r: dict[str, Any] = {"resourceType": "Condition", "id": chart.nid("cond")}
    if verification != "entered-in-error":
        r["clinicalStatus"] = {"coding": [coding("condition-clinical", clinical)]}
    r.update({
        "verificationStatus": {"coding": [coding("condition-ver-status", verification)]},
        "category": [{"coding": [coding("condition-category", "problem-list-item")]}],
        "code": {"coding": codings(rows), "text": text},
        "subject": chart.subject, "onsetDateTime": onset, "recordedDate": onset})
    chart.add("conditions", r)


@encoder("condition")
def condition(chart: Chart, spec: Spec) -> None:
    """Any Condition: `codes` [[system, code, display], ...], `text`, `onset`, `clinical` (active), `verification`."""
    add_condition(chart, spec.req("codes"), spec.req("onset"), spec.req("text"), spec.opt("clinical", "active"),
                  spec.opt("verification", "confirmed"))


@encoder("myeloma")
def myeloma(chart: Chart, spec: Spec) -> None:
    """The myeloma diagnosis coded `snomed` (109989006), `icd` (C90.00) or `both`."""
    rows = catalog()["myeloma"][spec.opt("coding", "snomed")]
    add_condition(chart, rows, spec.req("onset"), "Multiple myeloma", verification=spec.opt("verification", "confirmed"))


@encoder("relapse")
def relapse(chart: Chart, spec: Spec) -> None:
    """Relapse as a Condition: `as: c90.02` (ICD-10-CM in relapse) or `as: clinical-status` (myeloma Condition
    with clinicalStatus relapse), dated by `onset`."""
    preset = catalog()["relapse"][spec.req("as")]
    add_condition(chart, preset["codes"], spec.req("onset"), preset["text"], preset.get("clinical", "active"),
                  spec.opt("verification", "confirmed"))


# ------------------------------------------------------------------------------ observations
def add_obs(chart: Chart, code: list[str], when: str, category: str, status: str = "final", **value: Any) -> None:
    system, c, display = code
    chart.add("observations", {
        "resourceType": "Observation", "id": chart.nid("obs"), "status": status,
        "category": [{"coding": [coding("observation-category", category)]}],
        "code": {"coding": [coding(system, c, display)], "text": display},
        "subject": chart.subject, "effectiveDateTime": when, **value})


def obs_code(role: str) -> list[str]:
    return catalog()["observations"][role]


@encoder("disease-status")
def disease_status(chart: Chart, spec: Spec) -> None:
    """mCODE CancerDiseaseStatus (LOINC 97509-4): `value` worsened | improved | stable (SNOMED), or a `text`
    answer without a code; `status` (final) e.g. entered-in-error."""
    if spec.has("text"):
        value: dict[str, Any] = {"text": spec.req("text")}
    else:
        code, disp = catalog()["disease_status"][spec.req("value")]
        value = {"coding": [coding("snomed", code, disp)], "text": disp}
    add_obs(chart, obs_code("disease-status"), spec.req("date"), "exam", spec.opt("status", "final"),
            valueCodeableConcept=value)


def quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


@encoder("m-protein")
def m_protein(chart: Chart, spec: Spec) -> None:
    """Serum M-protein (LOINC 33358-3): `series` [[date, value], ...] in `unit` (g/dL; g/L also seen)."""
    unit = spec.opt("unit", "g/dL")
    for when, value in spec.req("series"):
        add_obs(chart, obs_code("m-protein"), when, "laboratory", valueQuantity=quantity(value, unit))


@encoder("free-light-chains")
def free_light_chains(chart: Chart, spec: Spec) -> None:
    """Serum free light chains: `series` [[date, kappa, lambda], ...] in `unit` mg/L (or mg/dL); one
    Observation per chain (LOINC 36916-5 kappa, 33944-0 lambda); null leaves a chain out."""
    unit = spec.opt("unit", "mg/L")
    if unit not in ("mg/L", "mg/dL"):
        raise DataError(f"free-light-chains: unit {unit!r} is not mg/L or mg/dL")
    for when, kappa, lam in spec.req("series"):
        for role, value in (("flc-kappa", kappa), ("flc-lambda", lam)):
            if value is not None:
                add_obs(chart, obs_code(role), when, "laboratory", valueQuantity=quantity(value, unit))


@encoder("ecog")
def ecog(chart: Chart, spec: Spec) -> None:
    add_obs(chart, obs_code("ecog"), spec.req("date"), "survey", valueInteger=spec.req("score"))


@encoder("fish")
def fish_variant(chart: Chart, spec: Spec) -> None:
    """A Genomics Reporting IG variant (69548-6), method FISH, ISCN in 81291-7 with `text`. `result`: present |
    absent (LOINC answers) or any other words sent as text ('Not detected'); optional `gene` (TP53 only,
    HGNC sourced), `location`; `source_class: false` drops the somatic genomic-source component."""
    comps: list[dict[str, Any]] = [{
        "code": {"coding": [coding("loinc", "81291-7", "Variant ISCN")]},
        "valueCodeableConcept": {"coding": [coding("iscn", spec.req("iscn"))], "text": spec.req("text")}}]
    gene = spec.opt("gene")
    if gene is not None:
        if gene != "TP53":
            raise DataError(f"fish: no sourced HGNC id for gene {gene!r}")
        comps.append({"code": {"coding": [coding("loinc", "48018-6", "Gene studied [ID]")]},
                      "valueCodeableConcept": {"coding": [coding("hgnc", "HGNC:11998", "TP53")]}})
    if spec.has("location"):
        comps.append({"code": {"coding": [coding("loinc", "48001-2", "Cytogenetic (chromosome) location")]},
                      "valueCodeableConcept": {"text": spec.req("location")}})
    if spec.opt("source_class", True):
        comps.append({"code": {"coding": [coding("loinc", "48002-0", "Genomic source class")]},
                      "valueCodeableConcept": {"coding": [coding("loinc", "LA6684-0", "Somatic")]}})
    result = spec.req("result")
    answers = {"present": ("LA9633-4", "Present"), "absent": ("LA9634-2", "Absent")}
    value = {"coding": [coding("loinc", *answers[result])]} if result in answers else {"text": result}
    add_obs(chart, obs_code("variant"), spec.req("date"), "laboratory", valueCodeableConcept=value,
            method=FISH_METHOD, component=comps)


@encoder("fish-observation")
def fish_observation(chart: Chart, spec: Spec) -> None:
    """A local lab's FISH probe result: `code` [system, code, display] and its words as valueString `value`
    ('DETECTED in 45% of nuclei', 'Not detected')."""
    add_obs(chart, spec.req("code"), spec.req("date"), "laboratory", valueString=spec.req("value"),
            method=FISH_METHOD)


@encoder("fish-report")
def fish_report(chart: Chart, spec: Spec) -> None:
    """A free-text FISH DiagnosticReport (no LOINC for MM FISH panels is verified: text code only). The
    `conclusion` is the report's wording; `not_detected` [probe, ...] appends one sentence per negative
    probe ('t(11;14) not detected.')."""
    parts = [spec.opt("conclusion", "")] + [f"{p} not detected." for p in spec.opt("not_detected", [])]
    conclusion = " ".join(p for p in parts if p)
    if not conclusion:
        raise DataError("fish-report: needs a conclusion or not_detected")
    when = spec.req("date")
    chart.add("diagnosticReports", {
        "resourceType": "DiagnosticReport", "id": chart.nid("dr"), "status": "final",
        "category": [{"coding": [coding("v2-0074", "CG")]}],
        "code": {"text": "FISH, plasma cell myeloma panel (CD138-enriched bone marrow)"},
        "subject": chart.subject, "effectiveDateTime": when, "issued": f"{when}T16:00:00Z", "conclusion": conclusion})


# ------------------------------------------------------------------------------ procedures
@encoder("transplant")
def transplant(chart: Chart, spec: Spec) -> None:
    """Autologous transplant by `code` 58776007 | 234336002 (sent with performedPeriod) | 38241 (CPT); `status`
    (completed), optional fixed `id`, code `text` (null = none)."""
    system, code, disp = catalog()["transplants"][str(spec.req("code"))]
    when = spec.req("date")
    cc: dict[str, Any] = {"coding": [coding(system, code, disp)]}
    text = spec.opt("text", "Autologous stem cell transplant")
    if text is not None:
        cc["text"] = text
    r: dict[str, Any] = {"resourceType": "Procedure", "id": spec.opt("id") or chart.nid("proc"),
                         "status": spec.opt("status", "completed"), "code": cc, "subject": chart.subject}
    if code == "234336002":
        r["performedPeriod"] = {"start": when, "end": when}
    else:
        r["performedDateTime"] = when
    chart.add("procedures", r)


@encoder("cell-therapy")
def cell_therapy(chart: Chart, spec: Spec) -> None:
    """A CAR-T infusion as a Procedure on `date`. The product (`agent` + drug keys, e.g. coding: atc, or coding: text
    with a brand `text`) goes to usedCode under the `procedure` name ('CAR-T cell infusion'), or with
    `product_as_code: true` is itself Procedure.code ('Carvykti infusion' as the only name)."""
    product = drug_concept(spec.drug())
    r: dict[str, Any] = {"resourceType": "Procedure", "id": chart.nid("proc"), "status": spec.opt("status", "completed")}
    if spec.opt("product_as_code", False):
        if spec.has("procedure"):
            raise DataError("cell-therapy: product_as_code names the procedure by the product; drop procedure")
        r["code"] = product
    else:
        r["code"] = {"text": spec.opt("procedure", "CAR-T cell infusion")}
        r["usedCode"] = [product]
    r.update({"subject": chart.subject, "performedDateTime": spec.req("date")})
    chart.add("procedures", r)

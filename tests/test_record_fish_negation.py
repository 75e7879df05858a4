"""Property: no negated mention of a FISH abnormality is ever read as present.

Lab wording varies endlessly, so the parser is checked against generated reports: one negation for
a list (before or after it), lists over several lines, any case, mixed with stated positives for
other abnormalities, as narrative text and as Observation components (code text + value, the value
as words or as a bare code). A wrong positive changes the risk class and the advice.
"""

from __future__ import annotations

from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from record_helpers import LOINC, SNOMED, cc, knowledge

from cds_service.record.fish import parse_fish_text
from cds_service.record.normalise import build_record

# surface forms labs use for each abnormality (ISCN, gene pairs, plain words)
FORMS = {
    "del(17p)": ["TP53 deletion", "del(17p)", "17p13.1 (TP53) loss", "deletion 17p", "TP53 (17p13) deletion",
                 "monosomy 17"],
    "1q-gain": ["1q21 gain", "gain of 1q", "CKS1B amplification", "+1q", "1q21 (CKS1B) gain/amplification",
                "1q gain"],
    "t(4;14)": ["t(4;14)", "IGH/FGFR3 fusion", "FGFR3/IGH rearrangement", "IGH::NSD2 fusion, t(4;14)",
                "IGH/FGFR3 FUSION, T(4;14)"],
    "t(14;16)": ["t(14;16)", "IGH/MAF fusion", "IGH::MAF rearrangement"],
    "t(14;20)": ["t(14;20)", "IGH/MAFB fusion"],
    "t(11;14)": ["t(11;14)", "CCND1/IGH fusion", "IGH::CCND1 rearrangement"],
    "del(1p)": ["del(1p32)", "CDKN2C deletion", "1p32 (CDKN2C) loss"],
}
PREFIX = ["Negative for {L}", "No evidence of {L}", "Not detected: {L}", "NOT DETECTED:\n{L}", "Absence of {L}",
          "No {L}", "FISH negative for {L}", "There is no evidence of {L}", "Without {L}", "No {L} detected",
          "No evidence of {L} was detected"]
POSTFIX = ["{L} not detected", "{L}: NOT DETECTED", "{L} were not identified", "{L} … negative", "{L}\nNot detected",
           "{L}: absent", "{L}: Negative", "{L} - not detected", "{L}: none detected", "{L}\tNOT DETECTED",
           "{L} (not detected)", "{L}: no"]
JOINERS = [", ", " and ", ",\n", " / ", ", and ", " or "]
POSITIVE = ["{P} detected in 45% of nuclei", "{P} DETECTED", "Positive for {P}", "{P}: detected (60%)", "{P} present"]
BETWEEN = ["; ", ". ", "\n", ".\n\n", " but "]
CASES = [str, str.upper, str.lower]


@st.composite
def report(draw):
    abns = list(FORMS)
    neg = draw(st.lists(st.sampled_from(abns), min_size=1, max_size=4, unique=True))
    pos = draw(st.lists(st.sampled_from([a for a in abns if a not in neg]), max_size=2, unique=True))
    forms = [draw(st.sampled_from(FORMS[a])) for a in neg]
    joiner = draw(st.sampled_from(JOINERS))
    listed = joiner.join(forms) if len(forms) < 3 else ", ".join(forms[:-1]) + joiner + forms[-1]
    negated = draw(st.sampled_from(PREFIX + POSTFIX)).format(L=listed)
    parts = [negated]
    for a in pos:
        parts.append(draw(st.sampled_from(POSITIVE)).format(P=draw(st.sampled_from(FORMS[a]))))
    order = draw(st.permutations(parts))
    sep = draw(st.sampled_from(BETWEEN))
    text = draw(st.sampled_from(CASES))(sep.join(order))
    if draw(st.booleans()):
        text += draw(st.sampled_from([".", "", " ", "\n"]))
    return text, set(neg), set(pos)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(report())
def test_negated_mentions_never_positive_and_positives_exact(case):
    text, negated, positives = case
    got = parse_fish_text(text, knowledge())
    found_pos = {a for a, p, _ in got if p}
    assert not (found_pos & negated), text
    assert found_pos == positives, text


NEG_VALUES = [{"valueString": "NOT DETECTED"}, {"valueString": "Negative"}, {"valueString": "Not detected"},
              {"valueString": "absent"}, {"valueCodeableConcept": cc(text="Not detected")},
              {"valueCodeableConcept": cc("260415000", SNOMED)},  # bare code, no display
              {"valueCodeableConcept": cc("LA9634-2", LOINC, "Absent")},
              {"valueCodeableConcept": cc("260415000", SNOMED, "Not detected (qualifier value)")},
              {"valueString": "neg"}, {"valueString": "No"}]
POS_VALUES = [{"valueString": "DETECTED"}, {"valueCodeableConcept": cc("260373001", SNOMED, "Detected")},
              {"valueCodeableConcept": cc("LA9633-4", LOINC)}, {"valueString": "Positive (45%)"}]
CODE_TEXT = ["Myeloma FISH panel", "Plasma cell FISH", "Cytogenetics"]


@st.composite
def component_observation(draw):
    abns = list(FORMS)
    neg = draw(st.lists(st.sampled_from(abns), min_size=1, max_size=4, unique=True))
    pos = draw(st.lists(st.sampled_from([a for a in abns if a not in neg]), max_size=2, unique=True))
    comps = []
    for a in neg:
        comps.append({"code": cc(text=draw(st.sampled_from(CASES))(draw(st.sampled_from(FORMS[a])))),
                      **draw(st.sampled_from(NEG_VALUES))})
    for a in pos:
        comps.append({"code": cc(text=draw(st.sampled_from(FORMS[a]))), **draw(st.sampled_from(POS_VALUES))})
    comps = draw(st.permutations(comps))
    variant = draw(st.booleans())
    res = {"resourceType": "Observation", "id": "o", "status": "final", "effectiveDateTime": "2024-01-05",
           "component": comps}
    if variant:  # Genomics Reporting Variant shape with lab components and no value of its own
        res["code"] = cc("69548-6", LOINC, "Genetic variant assessment")
        res["method"] = cc("426329006", SNOMED)
    else:
        res["code"] = cc(text=draw(st.sampled_from(CODE_TEXT)))
    return res, set(neg), set(pos), variant


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(component_observation())
def test_negated_components_never_positive(case):
    res, negated, positives, variant = case
    rec = build_record([res], date(2026, 11, 1), knowledge())
    found_pos = {f.abnormality for f in rec.cytogenetics if f.present}
    assert not (found_pos & negated), res
    assert found_pos == positives, (variant, res)

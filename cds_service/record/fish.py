"""FISH / cytogenetics text → CONTRACT findings, positives and documented negatives.

Lab reports are narrative more often than coded ("TP53 (17p13.1) deletion DETECTED in 47% of
nuclei; CCND1/IGH t(11;14) not detected"). Each clause is read on its own: the abnormalities it
names and whether it says detected or not. A clause that names a gene but gives no result is no
finding. Patterns live in `mappings/fish.yaml`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cds_service.knowledge.loader import Knowledge
from cds_service.record.fhirutil import as_dict, as_list

_CLAUSE_SPLIT = re.compile(r";(?![^()]*\))|[\n\r]+|\.(?=\s|$)|\u2022|\s-\s")
_SEGMENT_SPLIT = re.compile(r",(?![^()]*\))|\s+but\s+|\s+while\s+|\s+whereas\s+", re.I)
_PERCENT = re.compile(r"(\d{1,3}(?:[.,]\d+)?)\s*%")
_COPIES = re.compile(r"(\d+)\s*(?:copies|copy|signals)\b", re.I)
_KARYOTYPE = re.compile(r"\b\d{2},\s*X{1,2}Y?\b|\bnuc\s*ish\b", re.I)


@dataclass
class FishIndex:
    patterns: dict[str, list[re.Pattern[str]]]
    kinds: dict[str, str]
    partner: list[re.Pattern[str]]
    negative: list[re.Pattern[str]]
    positive: list[re.Pattern[str]]
    positive_strong: list[re.Pattern[str]]
    no_result_context: list[re.Pattern[str]]
    no_result: list[re.Pattern[str]]
    clause_negative: list[re.Pattern[str]]
    gene_ids: dict[str, str]
    test: list[re.Pattern[str]]
    # text -> answer of is_fish_text / abnormalities_in: every lab Observation's code text is
    # checked and labs repeat a few texts (~50 regex searches each, ~50 µs per lab; bench/, issue 6)
    memo_test: dict[str, bool] = field(default_factory=dict)
    memo_abnormalities: dict[str, tuple[str, ...]] = field(default_factory=dict)


def build_fish_index(knowledge: Knowledge) -> FishIndex:
    doc = as_dict(knowledge.mappings.get("fish"))

    def comp(lst: object) -> list[re.Pattern[str]]:
        return [re.compile(p, re.I) for p in as_list(lst) if isinstance(p, str)]

    pats = {}
    kinds = {}
    for ab, body in as_dict(doc.get("abnormalities")).items():
        pats[ab] = comp(as_dict(body).get("patterns"))
        kinds[ab] = str(as_dict(body).get("kind", ""))
    return FishIndex(
        patterns=pats,
        kinds=kinds,
        partner=comp(doc.get("translocation_partner")),
        negative=comp(doc.get("negative")),
        positive=comp(doc.get("positive")),
        positive_strong=comp(doc.get("positive_strong")),
        no_result_context=comp(doc.get("no_result_context")),
        no_result=comp(doc.get("no_result")),
        clause_negative=comp(doc.get("clause_negative")),
        gene_ids={k.upper(): str(as_dict(v).get("symbol", "")) for k, v in as_dict(doc.get("gene_ids")).items()},
        test=comp(doc.get("test_text")),
    )


def fish_index(knowledge: Knowledge) -> FishIndex:
    return knowledge.index("record.fish", build_fish_index)


_MEMO_MAX = 20000  # entries, and only texts up to _MEMO_TEXT characters (code texts, not narratives)
_MEMO_TEXT = 256


def is_fish_text(text: str, knowledge: Knowledge) -> bool:
    """Whether a code/report text names a FISH / cytogenetic test."""
    if not text:
        return False
    idx = fish_index(knowledge)
    hit = idx.memo_test.get(text)
    if hit is None:
        hit = any(p.search(text) for p in idx.test)
        if len(text) <= _MEMO_TEXT and len(idx.memo_test) < _MEMO_MAX:
            idx.memo_test[text] = hit
    return hit


def abnormalities_in(text: str, idx: FishIndex) -> list[str]:
    """CONTRACT abnormalities named in a text (translocation genes only with a partner/IGH word)."""
    hit = idx.memo_abnormalities.get(text)
    if hit is None:
        hit = tuple(_abnormalities_in(text, idx))
        if len(text) <= _MEMO_TEXT and len(idx.memo_abnormalities) < _MEMO_MAX:
            idx.memo_abnormalities[text] = hit
    return list(hit)


def _abnormalities_in(text: str, idx: FishIndex) -> list[str]:
    found: list[str] = []
    has_partner = any(p.search(text) for p in idx.partner)
    for ab, pats in idx.patterns.items():
        for p in pats:
            m = p.search(text)
            if not m:
                continue
            literal_iscn = m.group(0).lower().lstrip().startswith(("t(", "t (", "del", "+", "-"))
            if idx.kinds.get(ab) == "translocation" and not literal_iscn and not has_partner:
                continue
            found.append(ab)
            break
    return found


def polarity(segment: str, idx: FishIndex, allow_weak: bool = True) -> bool | None:
    """True detected, False documented negative, None no result stated."""
    pct = [float(x.replace(",", ".")) for x in _PERCENT.findall(segment)]
    if pct and all(p == 0 for p in pct):
        return False  # "TP53 deletion: 0% of nuclei"
    m = _COPIES.search(segment)
    if m:
        try:
            return int(m.group(1)) >= 3
        except ValueError:
            pass
    if any(p.search(segment) for p in idx.negative):
        return False
    if any(p.search(segment) for p in idx.positive_strong):
        return True
    if not allow_weak or any(p.search(segment) for p in idx.no_result_context):
        return None
    if any(p.search(segment) for p in idx.positive):
        return True
    if _KARYOTYPE.search(segment):
        return True
    return None


def parse_fish_text(text: str, knowledge: Knowledge) -> list[tuple[str, bool, float | None]]:
    """(abnormality, present, clonal fraction 0..1 or None) for every finding a narrative states."""
    idx = fish_index(knowledge)
    out: list[tuple[str, bool, float | None]] = []
    if not text:
        return out
    for clause in _CLAUSE_SPLIT.split(text[:20000]):
        if not clause or not clause.strip():
            continue
        # An ISCN karyotype ("46,XY,t(11;14)(q13;q32)[20]") is one statement of what was found.
        segs = [clause] if _KARYOTYPE.search(clause) else [s for s in _SEGMENT_SPLIT.split(clause) if s and s.strip()]
        weak_ok = not any(p.search(clause) for p in idx.no_result_context)
        info = [(abnormalities_in(s, idx), polarity(s, idx, weak_ok), s) for s in segs]
        if not any(a for a, _, _ in info):
            continue
        if any(p.search(clause) for p in idx.clause_negative):
            info = [(a, False, seg) for a, _, seg in info]
        pols = [p for _, p, _ in info if p is not None]
        clause_pol = pols[0] if pols and all(p == pols[0] for p in pols) else None
        for i, (abs_, pol, seg) in enumerate(info):
            if not abs_ or any(p.search(seg) for p in idx.no_result):
                continue
            if pol is None:
                pol = clause_pol
            if pol is None:  # inherit from the nearest stated result, previous first
                for j in list(range(i - 1, -1, -1)) + list(range(i + 1, len(info))):
                    if info[j][1] is not None:
                        pol = info[j][1]
                        break
            if pol is None:
                continue
            frac = None
            m = _PERCENT.search(seg)
            if m and pol is True:
                try:
                    v = float(m.group(1).replace(",", "."))
                    if 0 <= v <= 100:
                        frac = v / 100.0
                except ValueError:
                    frac = None
            for ab in abs_:
                out.append((ab, pol, frac))
    return out

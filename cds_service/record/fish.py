"""FISH / cytogenetics text → CONTRACT findings, positives and documented negatives.

Lab reports are narrative more often than coded ("TP53 (17p13.1) deletion DETECTED in 47% of
nuclei; CCND1/IGH t(11;14) not detected"), and they often list several abnormalities under one
result ("TP53 deletion, 1q21 gain, t(4;14), t(14;16): not detected"). A wrong positive changes the
risk class and the advice, so the reading is built around one rule: an abnormality is positive only
when a stated positive result binds to it and no negation does.

How a clause is read: every abnormality mention and every result cue ("not detected", "negative
for", "no evidence of", "detected", "positive", "45 %") is located. A cue that opens a list
("Negative for", "No evidence of", "Detected:") binds the mentions after it up to the next cue; a
cue that closes one ("... not detected", "X: NEGATIVE") binds the mentions since the previous cue.
A mention bound by a negation is negative whatever else binds it; a mention no cue binds is no
finding. Nouns like "deletion", "gain" or "fusion" are names of the abnormality, never results.
Patterns live in `mappings/fish.yaml`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cds_service.knowledge.loader import Knowledge
from cds_service.record.fhirutil import as_dict, as_list

_CLAUSE_SPLIT = re.compile(r";(?![^()]*\))|[\n\r]+|\.(?=\s|$)|\u2022|\s-\s")
_SEGMENT_SPLIT = re.compile(r"\s+but\s+|\s+while\s+|\s+whereas\s+|\s+however,?\s+", re.I)
_LIST_BREAK = re.compile(r"(,|\band\b|\bor\b|/)\s*[\r\n]+\s*", re.I)  # a list wrapped over lines
_PERCENT = re.compile(r"(\d{1,3}(?:[.,]\d+)?)\s*%")
_COPIES = re.compile(r"(\d+)\s*(?:copies|copy|signals)\b", re.I)
_KARYOTYPE = re.compile(r"\b\d{2},\s*X{1,2}Y?\b|\bnuc\s*ish\b", re.I)
_OPENS_LIST = re.compile(r"\s*(for\b|of\b|:|-(?!\d))", re.I)
_BIALLELIC = re.compile(r"\bbi-?allelic\b|\bhomozygous\b", re.I)
_MONOALLELIC = re.compile(r"\bmono-?allelic\b|\bhemizygous\b|\bheterozygous\b", re.I)


@dataclass
class FishIndex:
    patterns: dict[str, list[re.Pattern[str]]]
    kinds: dict[str, str]
    partner: list[re.Pattern[str]]
    negative: list[re.Pattern[str]]
    negative_prefix: list[re.Pattern[str]]
    positive_strong: list[re.Pattern[str]]
    no_result_context: list[re.Pattern[str]]
    no_result: list[re.Pattern[str]]
    clause_negative: list[re.Pattern[str]]
    gene_ids: dict[str, str]
    test: list[re.Pattern[str]]
    # text -> answer of is_fish_text / abnormalities_in: every lab Observation's code text is
    # checked and labs repeat a few texts (~50 regex searches each, ~50 µs per lab)
    memo_test: dict[str, bool] = field(default_factory=dict)
    memo_abnormalities: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class FishResult:
    """One stated result: abnormality (CONTRACT vocabulary, or "TP53-mutation"), present or a
    documented negative, the clone fraction 0..1 where stated, and for a deletion whether it is
    mono- or biallelic where stated ("mono" | "bi" | None)."""

    abnormality: str
    present: bool
    fraction: float | None = None
    allelic: str | None = None


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
        negative_prefix=comp(doc.get("negative_prefix")),
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
    """Abnormalities named in a text (translocation genes only with a partner/IGH word)."""
    hit = idx.memo_abnormalities.get(text)
    if hit is None:
        found: list[str] = []
        for ab, _start, _end in _mentions(text, idx):
            if ab not in found:
                found.append(ab)
        hit = tuple(found)
        if len(text) <= _MEMO_TEXT and len(idx.memo_abnormalities) < _MEMO_MAX:
            idx.memo_abnormalities[text] = hit
    return list(hit)


def _mentions(text: str, idx: FishIndex) -> list[tuple[str, int, int]]:
    """(abnormality, start, end) of every mention, in text order, overlaps of one abnormality merged."""
    has_partner = any(p.search(text) for p in idx.partner)
    out: list[tuple[str, int, int]] = []
    for ab, pats in idx.patterns.items():
        spans: list[tuple[int, int]] = []
        for p in pats:
            for m in p.finditer(text):
                literal_iscn = m.group(0).lower().lstrip().startswith(("t(", "t (", "del", "+", "-"))
                if idx.kinds.get(ab) == "translocation" and not literal_iscn and not has_partner:
                    continue
                spans.append((m.start(), max(m.end(), m.start() + 1)))
        spans.sort()
        merged: list[list[int]] = []
        for s, e in spans:
            if merged and s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        out.extend((ab, s, e) for s, e in merged)
    # "TP53 mutation" is not a del(17p) mention: drop del(17p) mentions inside a TP53-mutation one
    muts = [(s, e) for ab, s, e in out if ab == "TP53-mutation"]
    if muts:
        out = [(ab, s, e) for ab, s, e in out
               if not (ab == "del(17p)" and any(ms <= s < me or s <= ms < e for ms, me in muts))]
    out.sort(key=lambda t: (t[1], t[0]))
    return out


@dataclass
class _Cue:
    start: int
    end: int
    present: bool | None  # None: the test gave no result ("no call", "failed")
    opens: bool = False  # binds the mentions after it (a list opener) rather than before it


def _cues(seg: str, idx: FishIndex, allow_positive: bool) -> list[_Cue]:
    taken: list[tuple[int, int]] = []

    def free(s: int, e: int) -> bool:
        return not any(s < te and ts < e for ts, te in taken)

    cues: list[_Cue] = []
    for pol, pats in ((None, idx.no_result), (False, idx.negative_prefix), (False, idx.negative),
                      (True, idx.positive_strong if allow_positive else [])):
        for p in pats:
            for m in p.finditer(seg):
                if not free(m.start(), m.end()):
                    continue
                present: bool | None = pol
                if pol is True and m.group(0).strip().endswith("%"):
                    pm = _PERCENT.search(m.group(0))
                    if pm and float(pm.group(1).replace(",", ".")) == 0:
                        present = False  # "TP53 deletion: 0% of nuclei"
                taken.append((m.start(), m.end()))
                cues.append(_Cue(m.start(), m.end(), present, opens=pats is idx.negative_prefix))
    cues.sort(key=lambda c: c.start)
    return cues


def _read_segment(seg: str, idx: FishIndex, allow_positive: bool, clause_negative: bool) -> list[FishResult]:
    mentions = _mentions(seg, idx)
    if not mentions:
        return []
    cues = _cues(seg, idx, allow_positive)
    # a cue opens a list when it is followed by "for/of/:" or when no mention stands between it and
    # the previous cue (or the segment start) while one follows it
    # ("X: No" closes: a list opener with nothing after it binds what came before)
    for i, c in enumerate(cues):
        prev_end = cues[i - 1].end if i else 0
        before = any(prev_end <= s < c.start for _, s, _ in mentions)
        after = any(s >= c.end and (i + 1 == len(cues) or s < cues[i + 1].start) for _, s, _ in mentions)
        syntax = not seg[c.start:c.end].endswith("%") and bool(_OPENS_LIST.match(seg, c.end))
        c.opens = after and (c.opens or syntax or not before)
    bound: list[list[bool | None]] = [[] for _ in mentions]
    for i, c in enumerate(cues):
        if c.opens:
            nxt = cues[i + 1].start if i + 1 < len(cues) else len(seg)
            for k, (_, s, _) in enumerate(mentions):
                if c.end <= s < nxt:
                    bound[k].append(c.present)
        else:
            prev = cues[i - 1].end if i else 0
            for k, (_, s, _) in enumerate(mentions):
                if prev <= s < c.start:
                    bound[k].append(c.present)
    karyotype = bool(_KARYOTYPE.search(seg)) and allow_positive
    any_negative = any(c.present is False for c in cues)
    out: list[FishResult] = []
    for k, (ab, _s, e) in enumerate(mentions):
        pols = bound[k]
        if None in pols:
            continue  # "no call", "failed", "not performed": a test without a result
        nxt = next((ms for a2, ms, _ in mentions[k + 1:] if a2 != ab), len(seg))
        tail = seg[e:nxt]
        copies = _COPIES.search(tail)
        kind = idx.kinds.get(ab)
        present: bool | None
        if clause_negative or False in pols:
            present = False
        elif True in pols:
            present = True
        elif karyotype and not any_negative:
            present = True  # an ISCN karyotype lists what was found
        else:
            present = None
        allelic = None
        if copies and kind in ("gain", "loss") and present is not False:
            n = int(copies.group(1))
            if kind == "gain":
                present = n >= 3
            else:
                present = n <= 1
                allelic = ("bi" if n == 0 else "mono") if present else None
        if present is None:
            continue
        frac = None
        if present:
            pm = _PERCENT.search(tail)
            if pm:
                v = float(pm.group(1).replace(",", "."))
                frac = v / 100.0 if 0 < v <= 100 else None
            if kind == "loss" and allelic is None:
                allelic = "bi" if _BIALLELIC.search(seg) else "mono" if _MONOALLELIC.search(seg) else None
        out.append(FishResult(ab, present, frac, allelic))
    return out


def _clauses(text: str, idx: FishIndex) -> list[str]:
    """Clauses of a report, with lists wrapped over lines re-joined and a header ("Not detected:")
    or a trailing result line ("... not detected") attached to the list it belongs to."""
    text = _LIST_BREAK.sub(r"\1 ", text[:20000])
    raw = [c.strip() for c in _CLAUSE_SPLIT.split(text) if c and c.strip()]
    out: list[str] = []
    bare: list[bool] = []  # the clause names abnormalities but states no result
    pending_header = ""
    for c in raw:
        has_ab = bool(_mentions(c, idx))
        has_result = any(p.search(c) for p in (*idx.negative, *idx.negative_prefix, *idx.positive_strong))
        if not has_ab and has_result and c.endswith(":"):
            pending_header += c + " "
            continue
        if pending_header:
            c = pending_header + c
            pending_header = ""
        if not has_ab and has_result:
            # "TP53 deletion, 1q21 gain, t(4;14)" / "not detected": the result closes the list
            # above it, including a list written one abnormality per line
            j = len(out)
            while j > 0 and bare[j - 1]:
                j -= 1
            if j < len(out):
                out[j:] = [" , ".join(out[j:]) + " " + c]
                bare[j:] = [False]
                continue
        out.append(c)
        bare.append(has_ab and not has_result)
    return out


def read_fish_text(text: str, knowledge: Knowledge) -> list[FishResult]:
    """Every result a narrative states. One abnormality stated both present and absent in the same
    text counts as absent: the reading never turns a negated mention into a positive."""
    idx = fish_index(knowledge)
    if not text:
        return []
    found: list[FishResult] = []
    for clause in _clauses(text, idx):
        allow_positive = not any(p.search(clause) for p in idx.no_result_context)
        clause_negative = any(p.search(clause) for p in idx.clause_negative)
        for seg in _SEGMENT_SPLIT.split(clause):
            if seg and seg.strip():
                found.extend(_read_segment(seg, idx, allow_positive, clause_negative))
    negated = {r.abnormality for r in found if not r.present}
    out: list[FishResult] = []
    for r in found:
        if r.present and r.abnormality in negated:
            continue
        if r in out:
            continue
        same = next((i for i, o in enumerate(out) if o.abnormality == r.abnormality and o.present == r.present), None)
        if same is not None:
            o = out[same]
            out[same] = FishResult(o.abnormality, o.present, o.fraction if o.fraction is not None else r.fraction,
                                   o.allelic or r.allelic)
            continue
        out.append(r)
    return out


def parse_fish_text(text: str, knowledge: Knowledge) -> list[tuple[str, bool, float | None]]:
    """(abnormality, present, clone fraction 0..1 or None) for every finding a narrative states."""
    return [(r.abnormality, r.present, r.fraction) for r in read_fish_text(text, knowledge)]

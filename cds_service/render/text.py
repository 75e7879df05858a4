"""Clinician-facing wording: sources named as clinicians name them, no internal ids, each fact once.

Card texts are assembled from several knowledge files (regimen figures, modifier notes, order-check
templates) that speak of the evidence by its internal source id ("003 [1A]", "(002)") and may
carry chart references ("MedicationRequest/abc"). Clinicians need neither: the guideline is named
as they name it ("IMWG 2021 grade 1A"), chart references live in the evidence view, and the
machine-readable ids stay in the card extension (`sources[].seed`). Everything shown to a
clinician passes through `clinician_text`, so a new knowledge entry cannot leak an id.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

MAX_DETAIL = 2500

# chart references: FHIR "Type/id" as the record reader reports them
_RESOURCE_TYPES = (
    "MedicationRequest|MedicationStatement|MedicationAdministration|MedicationDispense|MedicationOrder|Medication|"
    "Observation|Procedure|Condition|DiagnosticReport|Encounter|ServiceRequest|Patient|Specimen|ClinicalImpression"
)
_CHART_REF = re.compile(rf"\b(?:{_RESOURCE_TYPES})/[A-Za-z0-9\-.]{{1,64}}")
_EMPTY_PAREN = re.compile(r"\s*_?[(\[]\s*(?:chart|sources?|FISH sources)?\s*:?\s*(?:[,;…]|\.\.\.|\s)*[)\]]_?")
_SEED_FILE = re.compile(r"\s*\[?\b\d{3}_[0-9a-f]{16}\.txt\]?")
_SEED_REF = re.compile(r"\s*\(seed \d{3}(?: ref \d+)?\)")
_SEED_GRADE = re.compile(r"(?<![\w-])(?:[Ss]eed\s+)?(00\d)(?:'s)?\s*\[(\d[ABC])\]")
_SEED_PAREN = re.compile(r"\(\s*(?:[Ss]eed\s+)?(00\d(?:\s*(?:,|/|and)\s*(?:[Ss]eed\s+)?00\d)*)\s*\)")
_SEED_LEAD = re.compile(r"(^|(?<=[.;:!?]\s)|(?<=\n)|(?<=—\s)|(?<=-\s)|(?<=\(\s)|(?<=\())(?:[Ss]eed\s+)?(00\d(?:/00\d)*)(?:'s)?\s*(?::|—|–)\s*")
_SEED_BARE = re.compile(r"(?<![\w-])(?:[Ss]eed\s+)?(00\d)(?:'s)?(?![\w-])")
_GRADE_ALONE = re.compile(r"\s\[(\d[ABC])\]")
_SEARCH_URL = re.compile(r"^https?://(?:pubmed\.ncbi\.nlm\.nih\.gov/\?|www\.google\.|scholar\.google\.|www\.bing\.)")
_YEAR_JOURNAL = re.compile(r"\.\s+([A-Z][A-Za-z .&-]{1,60}?)\.?\s+((?:19|20)\d{2})\s*[;:(,.]")
_AUTHOR = re.compile(r"^\s*([A-Z][A-Za-z'’\-]+(?: [a-z]{1,3} [A-Z][A-Za-z'’\-]+)?)\s+[A-Z]{1,3}(?:-[A-Z])?\b")
_TRIAL = re.compile(r"\((?!(?:MM|RRMM|NDMM|SC|IV)\))([A-Z][A-Za-z]*[A-Z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*)\)")
_TRIAL_WORD = re.compile(r"\b((?!RRMM\b|NDMM\b)[A-Z]{3,}(?:-\d+)?)\b(?= (?:study|trial|Study|Trial))")

# The seeds' names for clinicians (texts.yaml `sourceNames` overrides): None = never cited by name.
DEFAULT_SOURCE_NAMES: dict[str, str | None] = {"003": "IMWG 2021", "004": "Janssen Medical Information 2025"}
GENERIC_MENTION = "expert guidance"
_CAP = "\x00"  # marks a place where a dropped attribution may leave a sentence without its capital


def _names(names: Mapping[str, Any] | None) -> dict[str, str | None]:
    out: dict[str, str | None] = dict(DEFAULT_SOURCE_NAMES)
    for k, v in (names or {}).items():
        out[str(k)] = str(v) if v else None
    return out


def strip_chart_refs(text: str) -> str:
    """Drop FHIR resource references (they belong in the evidence view) and the brackets left empty."""
    if "/" not in text:
        return text
    text = _CHART_REF.sub("", text)
    if "(" in text or "[" in text:
        text = _EMPTY_PAREN.sub("", text)
    if "(" in text:
        text = _OPEN_PAREN_PUNCT.sub("(", text)
    if ")" in text:
        text = _PUNCT_CLOSE_PAREN.sub(")", text)
    return _RUN_OF_SPACES.sub(" ", text) if "  " in text or "\t" in text else text


_OPEN_PAREN_PUNCT = re.compile(r"\(\s*[,;]\s*")
_PUNCT_CLOSE_PAREN = re.compile(r"[,;]\s*\)")
_RUN_OF_SPACES = re.compile(r"[ \t]{2,}")


_SEEDS_BEYOND = re.compile(r"beyond the seeds(?:['’] graded recommendations)?")
_SEEDS_DISAGREE = re.compile(r"\b(?:[Tt]he )?[Ss]eeds disagree\b")
_THE_SEEDS = re.compile(r"\bthe seeds\b")
_EMPTY_PARENS = re.compile(r"\(\s*\)")
_SPACE_BEFORE_PUNCT = re.compile(r"[ \t]+([,.;:])")
_SPACES = re.compile(r"[ \t]{2,}")
_CAP_LETTER = re.compile(_CAP + r"\s*([a-z])?")
_IDS = re.compile(r"00\d")


def clinician_text(text: str, names: Mapping[str, Any] | None = None) -> str:
    """The text with internal source ids replaced by the names clinicians use, chart ids removed.

    Each substitution runs only when the text holds what its pattern cannot match without (a
    substring test costs far less than a regex scan, and most card texts name no source id):
    the result is the same as running every substitution.
    """
    if not text:
        return text
    nm = _names(names)

    def name(sid: str) -> str | None:
        return nm.get(sid)

    if ".txt" in text:
        text = _SEED_FILE.sub("", text)
    if "(seed " in text:
        text = _SEED_REF.sub("", text)

    if "00" in text:
        def grade(m: re.Match[str]) -> str:
            n = name(m.group(1))
            return f"{n} grade {m.group(2)}" if n else f"grade {m.group(2)}"

        if "[" in text:
            text = _SEED_GRADE.sub(grade, text)

        def paren(m: re.Match[str]) -> str:
            ids = _IDS.findall(m.group(1))
            named = list(dict.fromkeys(n for n in (name(i) for i in ids) if n))
            return f"({', '.join(named)})" if named else ""

        if "(" in text:
            text = _SEED_PAREN.sub(paren, text)

        def lead(m: re.Match[str]) -> str:
            ids = _IDS.findall(m.group(2))
            named = list(dict.fromkeys(n for n in (name(i) for i in ids) if n))
            return m.group(1) + (f"{' and '.join(named)}: " if named else _CAP)

        if "00" in text:
            text = _SEED_LEAD.sub(lead, text)
        if "00" in text:
            text = _SEED_BARE.sub(lambda m: name(m.group(1)) or (_CAP + GENERIC_MENTION), text)
    if "[" in text:
        text = _GRADE_ALONE.sub(r" (grade \1)", text)
    if "eeds" in text:
        text = _SEEDS_BEYOND.sub("not graded in IMWG 2021", text)
        text = _SEEDS_DISAGREE.sub("Sources disagree", text)
        text = _THE_SEEDS.sub("the sources", text)
    text = strip_chart_refs(text)
    if "(" in text:
        text = _EMPTY_PARENS.sub("", text)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    if "  " in text or "\t" in text:
        text = _SPACES.sub(" ", text)
    # a sentence whose attribution was dropped (or now starts with a generic mention) is capitalised
    if _CAP in text:
        text = _CAP_LETTER.sub(_capitalise_marked, text).replace(_CAP, "")
    return text.strip()


def _capitalise_marked(m: re.Match[str]) -> str:
    start = m.start()
    src = m.string
    at_start = start == 0 or src[:start].rstrip()[-1:] in ("", ".", "!", "?", "\n", "(", ":", "—") or src[:start].endswith("\n")
    ch = m.group(1) or ""
    return (ch.upper() if at_start else ch) if ch else ""


def opens_work(url: str | None) -> bool:
    """A link that opens the work itself (DOI, publisher, label), not a search results page."""
    return bool(url) and not _SEARCH_URL.match(str(url))


def source_name(src: Mapping[str, Any], names: Mapping[str, Any] | None = None) -> str | None:
    """'IKEMA — Moreau et al., Lancet 2021'; a guideline by its name and year; None if not citable.

    Sources are knowledge, cited on every card: the name is worked out once per source (by the
    fields it is made of and the names in force) and remembered.
    """
    try:
        key = (src.get("label"), src.get("seed"), src.get("citation"), src.get("url"),
               tuple(names.items()) if names else ())
        return _source_name_cached(key, src, names)
    except TypeError:  # an unhashable field (not from the knowledge files): worked out each time
        return _source_name(src, names)


def _source_name_cached(key: tuple[Any, ...], src: Mapping[str, Any], names: Mapping[str, Any] | None) -> str | None:
    hit = _SOURCE_NAMES.get(key, _MISSING)
    if hit is _MISSING:
        hit = _source_name(src, names)
        if len(_SOURCE_NAMES) >= 4096:
            _SOURCE_NAMES.clear()
        _SOURCE_NAMES[key] = hit
    return hit  # type: ignore[return-value]


_SOURCE_NAMES: dict[tuple[Any, ...], str | None] = {}
_MISSING = object()


def _source_name(src: Mapping[str, Any], names: Mapping[str, Any] | None = None) -> str | None:
    if src.get("label"):
        return str(src["label"])
    seed = str(src.get("seed") or "")[:3]
    citation = str(src.get("citation") or "")
    if not _AUTHOR.match(citation):  # not a journal article: a seed document, a label, a guideline
        if seed and seed in _names(names) and (src.get("seed") and citation.lower().startswith(("guideline", "dr.", "review", "janssen", "practical", "european"))):
            return _names(names).get(seed)
        if not opens_work(src.get("url")) and re.search(r"dr\.?\s?oracle|practical summary", citation, re.I):
            return None
    citation = clinician_text(citation, names)
    author = _AUTHOR.match(citation)
    yj = _YEAR_JOURNAL.search(citation)
    trial = _TRIAL.search(citation) or _TRIAL_WORD.search(citation)
    if author and yj:
        label = f"{author.group(1)} et al., {yj.group(1).strip()} {yj.group(2)}"
        return f"{trial.group(1)} — {label}" if trial else label
    text = citation.split(". ")[0] if len(citation) > 90 else citation
    return text if len(text) <= 90 else text[:88].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def source_link(src: Mapping[str, Any], names: Mapping[str, Any] | None = None) -> str | None:
    """A markdown link (or plain name when the source has no link that opens it); None if not citable."""
    label = source_name(src, names)
    if not label:
        return None
    url = src.get("url")
    return f"[{label}]({url})" if opens_work(url) else label


def cite(sources: Iterable[Mapping[str, Any]], names: Mapping[str, Any] | None = None, limit: int = 2) -> str:
    """Up to `limit` distinct citable sources, joined for one line of text."""
    out: list[str] = []
    for s in sources:
        link = source_link(s, names)
        if link and link not in out:
            out.append(link)
        if len(out) >= limit:
            break
    return "; ".join(out)


def card_source(sources: list[dict[str, Any]], fallback: str, names: Mapping[str, Any] | None = None) -> dict[str, str]:
    """CDS Hooks `card.source`: the first source that opens its work, named; never a search page."""
    for s in sources:
        if opens_work(s.get("url")):
            label = source_name(s, names)
            if label:
                return {"label": label[:100], "url": str(s["url"])}
    for s in sources:
        label = source_name(s, names)
        if label:
            return {"label": label[:100]}
    return {"label": fallback}


_NON_WORD = re.compile(r"[^a-z0-9]+")
_WORD = re.compile(r"[a-z0-9]+")  # the words of _norm(text).split(), found in one pass


def _norm(text: str) -> str:
    return _NON_WORD.sub(" ", text.lower()).strip()


def unique(parts: Iterable[str]) -> list[str]:
    """Each fact once: drop empty parts and any part whose words another kept part already says."""
    kept: list[str] = []
    keys: list[str] = []
    for p in parts:
        p = (p or "").strip()
        k = _norm(p)
        if not k:
            continue
        if any(k in other for other in keys):
            continue
        # a longer part that contains an earlier one replaces it
        for i, other in enumerate(keys):
            if other and other in k:
                kept[i], keys[i] = "", ""
        kept.append(p)
        keys.append(k)
    return [p for p in kept if p]


_FILLER = frozenset({"eha", "esmo", "2021", "grade", "the", "a", "an", "of", "in", "and", "with"})


def adds_to(note: str, line: str) -> bool:
    """Whether a note says anything the line does not already say (word level)."""
    words = set(_WORD.findall(note.lower())) - _FILLER
    return bool(words - set(_WORD.findall(line.lower())))


_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+\.)\s")


def paragraphs(text: str) -> str:
    """Markdown that renders as meant: a bold lead-in or a list that follows a text line gets the
    blank line before it (with a single newline it would run into the sentence before)."""
    lines = text.split("\n")
    out: list[str] = []
    for line in lines:
        prev = out[-1] if out else ""
        starts_block = line.startswith("**") or (_LIST_ITEM.match(line) and not line.startswith(" "))
        if starts_block and prev.strip() and not _LIST_ITEM.match(prev) and not prev.startswith("  ") \
                and not prev.endswith("  ") and not prev.startswith("|"):
            out.append("")
        elif prev.startswith("**") and prev.rstrip().endswith(".") and line[:1].isupper() and not starts_block:
            out.append("")  # a bold-led paragraph ends with its sentence: what follows is a new one
        out.append(line)
    return "\n".join(out)


def similar(a: str, b: str, ratio: float = 0.6) -> bool:
    """Two texts that say mostly the same thing (shared words over the shorter one's words)."""
    wa = set(_WORD.findall(a.lower())) - _FILLER
    wb = set(_WORD.findall(b.lower())) - _FILLER
    if not wa or not wb:
        return False
    return len(wa & wb) / min(len(wa), len(wb)) >= ratio


def fit(blocks: list[tuple[int, str]], limit: int = MAX_DETAIL) -> str:
    """Join markdown blocks with blank lines; drop the least important (highest number) until it fits."""
    items = [(prio, paragraphs(b.strip())) for prio, b in blocks if b and b.strip()]
    text = "\n\n".join(b for _, b in items)
    while len(text) > limit and len(items) > 1:
        worst = max(range(len(items)), key=lambda i: (items[i][0], i))
        if items[worst][0] == 0:
            break
        items.pop(worst)
        text = "\n\n".join(b for _, b in items)
    if len(text) > limit:
        cut = text[: limit - 3].rsplit("\n", 1)[0]
        text = cut.rstrip() + "\n\n…"
    return text


def clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:—-") + "…"

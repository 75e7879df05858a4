"""Tolerant accessors for inbound FHIR dicts (R4, R4B, R5 and DSTU2 shapes).

Inbound FHIR is read as plain dicts. EHRs send single objects where arrays belong, strings where
objects belong, partial dates and dateTimes with or without a timezone: every helper here accepts
anything and returns a safe default instead of raising, so one odd field never loses a record.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any, Generic, TypeVar

import orjson

T = TypeVar("T")
_MISSING = object()

# first ten characters of a full date or dateTime -> the date they spell (calendar days only)
_DAYS: dict[str, date] = {}
_DATE_RE = re.compile(r"^\s*(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?")


def as_list(value: Any) -> list:
    """A list whatever came: None -> [], a single object -> [object]."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def as_dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def as_str(value: Any) -> str:
    """Strings and numbers as text; anything else (dicts, lists, None) as ""."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int | float):
        return str(value)
    return ""


def as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        f = float(value)
        return f if f == f and abs(f) != float("inf") else None
    if isinstance(value, str):
        m = re.search(r"[-+]?\d+(?:[.,]\d+)?", value)
        if m:
            try:
                return float(m.group(0).replace(",", "."))
            except ValueError:
                return None
    return None


def parse_date(value: Any, end: bool = False) -> date | None:
    """A FHIR date/dateTime (full or partial, any timezone) as the calendar date written.

    The date part is taken as written (a dose given at 23:30-05:00 was given on that local day).
    Partial dates: the first day of the month/year, or the last one when `end` is True, so a
    period "2023-04" covers all of April.
    """
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        return None
    if len(value) >= 10 and value[4] == "-" and value[7] == "-" and value[:4].isdigit():
        day = value[:10]
        hit = _DAYS.get(day)
        if hit is not None:  # a calendar day read before (a chart repeats its days on every result)
            return hit
        try:  # fast path: a full date or dateTime, the usual case
            d = date(int(value[:4]), int(value[5:7]), int(value[8:10]))
            if not 1800 <= d.year <= 2200:
                return None
            if len(_DAYS) >= 50_000:
                _DAYS.clear()
            _DAYS[day] = d
            return d
        except ValueError:
            pass  # odd shapes ("2023-04-5T..."): the general reader below decides
    m = _DATE_RE.match(value)
    if not m:
        return None
    try:
        year = int(m.group(1))
        if year < 1800 or year > 2200:
            return None
        month = int(m.group(2)) if m.group(2) else (12 if end else 1)
        if not 1 <= month <= 12:
            return None
        day = int(m.group(3)) if m.group(3) else calendar.monthrange(year, month)[1] if end else 1
        return date(year, month, day)
    except (ValueError, OverflowError):
        return None


def first_date(*values: Any, end: bool = False) -> date | None:
    for v in values:
        d = parse_date(v, end=end)
        if d is not None:
            return d
    return None


def period_bounds(period: Any) -> tuple[date | None, date | None]:
    p = as_dict(period)
    return parse_date(p.get("start")), parse_date(p.get("end"), end=True)


def codings(concept: Any) -> list[dict]:
    """The codings of a CodeableConcept (or a bare Coding, or a list of either)."""
    out: list[dict] = []
    for c in as_list(concept):
        if not isinstance(c, dict):
            continue
        cods = c.get("coding")
        if cods is None and ("code" in c or "system" in c):
            out.append(c)
            continue
        out.extend(x for x in as_list(cods) if isinstance(x, dict))
    return out


def concept_texts(concept: Any) -> list[str]:
    """Every human-readable string of a CodeableConcept: text, then coding displays."""
    out: list[str] = []
    for c in as_list(concept):
        if isinstance(c, str):
            if c.strip():
                out.append(c)
            continue
        if not isinstance(c, dict):
            continue
        t = as_str(c.get("text"))
        if t.strip():
            out.append(t)
        for cod in codings(c):
            d = as_str(cod.get("display"))
            if d.strip():
                out.append(d)
    return out


def concept_display(concept: Any) -> str:
    texts = concept_texts(concept)
    if texts:
        return texts[0]
    for cod in codings(concept):
        code = as_str(cod.get("code"))
        if code:
            return code
    return ""


def status_code(value: Any) -> str:
    """A status given as a plain code (R4) or as a CodeableConcept (Condition.clinicalStatus R4)."""
    if isinstance(value, str):
        return value.strip().lower()
    for cod in codings(value):
        code = as_str(cod.get("code")).strip().lower()
        if code:
            return code
    texts = concept_texts(value)
    return texts[0].strip().lower() if texts else ""


# HL7 OIDs of the code systems we read (EHRs send "urn:oid:..." instead of the FHIR URL).
_OIDS = {
    "2.16.840.1.113883.6.88": "rxnorm",
    "2.16.840.1.113883.6.96": "snomed",
    "2.16.840.1.113883.6.1": "loinc",
    "2.16.840.1.113883.6.90": "icd10",
    "2.16.840.1.113883.6.3": "icd10",
    "2.16.840.1.113883.6.12": "cpt",
    "2.16.840.1.113883.6.73": "atc",
}


def namespace(system: Any, code: str = "") -> str:
    """A short name for a code system URL: snomed, loinc, rxnorm, icd10, icdo3, cpt, atc, ..."""
    s = as_str(system).lower()
    if s.startswith("urn:oid:"):
        return _OIDS.get(s[8:], "other")
    if s:
        if "snomed" in s or s.endswith("sct"):
            return "snomed"
        if "loinc" in s:
            return "loinc"
        if "rxnorm" in s:
            return "rxnorm"
        if "icd-o" in s or "icdo" in s or "icd-o-3" in s:
            return "icdo3"
        if "icd" in s:
            return "icd10"
        if "cpt" in s or "ama-assn" in s:
            return "cpt"
        if "atc" in s or "whocc" in s:
            return "atc"
        return "other"
    return ""


def ref_string(reference: Any) -> str:
    if isinstance(reference, dict):
        return as_str(reference.get("reference"))
    return as_str(reference)


def walk_strings(value: Any, limit: int = 2000) -> Iterator[str]:
    """Strings nested anywhere in a value (bounded), for last-resort text search."""
    stack = [value]
    seen = 0
    while stack and seen < limit:
        v = stack.pop()
        seen += 1
        if isinstance(v, str):
            yield v
        elif isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)


class JsonMemo(Generic[T]):
    """A bounded memo for a pure function of a FHIR fragment, keyed by the fragment's JSON bytes.

    Why: EHRs repeat the same concepts on every cycle, dose and lab (the same drug coding, route,
    lab code and category hundreds of times in one chart); orjson serialises a small concept in
    well under a microsecond, far less than reading it again. Results must be immutable (tuples,
    strings, frozen objects): every caller shares them. Full → cleared (no unbounded growth).
    """

    def __init__(self, fn: Callable[..., T], max_entries: int = 50_000) -> None:
        self.fn = fn
        self.max_entries = max_entries
        self.data: dict[bytes, T] = {}

    def __call__(self, value: Any) -> T:
        try:
            key = orjson.dumps(value)
        except (TypeError, orjson.JSONEncodeError):  # not JSON (a hand-built dict in a test): no memo
            return self.fn(value)
        hit = self.data.get(key, _MISSING)
        if hit is _MISSING:
            hit = self.fn(value)
            if len(self.data) >= self.max_entries:
                self.data.clear()
            self.data[key] = hit
        return hit  # type: ignore[return-value]

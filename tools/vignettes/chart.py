"""The chart under construction and the reader of one data record.

`Chart` numbers resource ids in entry order, files every resource under its prefetch key and keeps
referenced Medications apart (they travel as `search.mode: include` entries). `Spec` reads one record of
a patient file strictly: a misspelt key is an error naming the record, not a silently different fixture.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from tools.vignettes.catalog import concept, is_fixed

PREFETCH_KEYS = ("patient", "conditions", "observations", "diagnosticReports", "procedures",
                 "medicationStatements", "medicationRequests", "medicationAdministrations")
# keys that describe how a drug is encoded; on a record listing several drugs they apply to each
DRUG_KEYS = ("coding", "product", "text", "medication", "medication_id", "label", "strength")
MEDICATION_FORMS = ("codeable", "contained", "reference")


class DataError(ValueError):
    """A patient file that cannot be built; the message names the record."""


@dataclass
class Chart:
    pid: str
    res: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {k: [] for k in PREFETCH_KEYS[1:]})
    includes: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {k: [] for k in PREFETCH_KEYS[1:]})
    outcomes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # search.mode "outcome" entries
    n: int = 0

    def nid(self, prefix: str) -> str:
        self.n += 1
        return f"{self.pid}-{prefix}-{self.n}"

    @property
    def subject(self) -> dict[str, str]:
        return {"reference": f"Patient/{self.pid}"}

    def add(self, key: str, resource: dict[str, Any]) -> dict[str, Any]:
        self.res[key].append(resource)
        return resource

    def medication(self, d: dict[str, Any], into: list[dict[str, Any]]) -> dict[str, Any]:
        """medication[x] fields of one drug: a CodeableConcept, a contained Medication (#id) or a reference to a
        Medication resource, which is appended once to `into` (the includes of a bundle, or draft entries)."""
        form = d.get("medication", "codeable")
        if form == "codeable":
            return {"medicationCodeableConcept": drug_concept(d)}
        if form == "contained":
            mid = d.get("medication_id", "med")
            return {"contained": [medication_resource(d, mid)], "medicationReference": {"reference": f"#{mid}"}}
        if form == "reference":
            mid = d.get("medication_id") or f"{self.pid}-med-{d['agent']}-{d.get('coding', 'rx-in')}"
            med = medication_resource(d, mid)
            same_id = [m for m in into if m["id"] == mid]
            if not same_id:
                into.append(med)
            elif same_id[0] != med:
                raise DataError(f"medication_id {mid} names two different Medications")
            return {"medicationReference": {"reference": f"Medication/{mid}"}}
        raise DataError(f"medication: {form!r} is not one of {MEDICATION_FORMS}")


def drug_concept(d: dict[str, Any]) -> dict[str, Any]:
    enc = d.get("coding", "rx-in")
    if enc == "ingredient":
        raise DataError(f"{d['agent']}: coding: ingredient needs medication: contained or reference")
    return concept(d["agent"], enc, d.get("product"), d.get("text"))


def medication_resource(d: dict[str, Any], mid: str) -> dict[str, Any]:
    """A Medication resource; `coding: ingredient` names the drug only by Medication.ingredient under a generic
    pharmacy label (`label`), with an optional `strength` {value, unit, per}."""
    if d.get("coding") != "ingredient":
        return {"resourceType": "Medication", "id": mid, "code": drug_concept(d)}
    item: dict[str, Any] = {"itemCodeableConcept": concept(d["agent"], "rx-in")}
    if d.get("strength"):
        s = d["strength"]
        item["strength"] = {"numerator": {"value": s["value"], "unit": s["unit"], "system": "http://unitsofmeasure.org",
                                          "code": s["unit"]},
                            "denominator": {"value": 1, "unit": s["per"]}}
    return {"resourceType": "Medication", "id": mid, "code": {"text": d["label"]}, "ingredient": [item]}


class Spec:
    """One record of a patient file, read key by key; `done` rejects keys no encoder read."""

    def __init__(self, kind: str, data: dict[str, Any] | None) -> None:
        if data is not None and not isinstance(data, dict):
            raise DataError(f"{kind}: expected a mapping of keys, got {data!r}")
        self.kind = kind
        self.data = dict(data or {})
        self.used: set[str] = set()

    def has(self, key: str) -> bool:
        return key in self.data

    def opt(self, key: str, default: Any = None) -> Any:
        self.used.add(key)
        return self.data.get(key, default)

    def req(self, key: str) -> Any:
        self.used.add(key)
        if key not in self.data:
            raise DataError(f"{self.kind}: missing key {key!r} in {self.data}")
        return self.data[key]

    def drugs(self) -> list[dict[str, Any]]:
        """The drugs of a record: `agent: x` or `drugs: [x, {agent: y, coding: ...}]`; drug keys on the record
        are defaults for each drug listed."""
        shared = {k: self.opt(k) for k in DRUG_KEYS if k in self.data}
        items = self.opt("drugs") if self.has("drugs") else [self.req("agent")]
        out = []
        for item in items:
            d = {**shared, **({"agent": item} if isinstance(item, str) else item)}
            unknown = set(d) - {"agent", "dosage", *DRUG_KEYS}
            if unknown or "agent" not in d:
                raise DataError(f"{self.kind}: bad drug {item!r} (unknown keys {sorted(unknown)})")
            if "product" in d:
                d["product"] = str(d["product"])
            if is_fixed(d["agent"]) and "coding" in d:
                raise DataError(f"{self.kind}: {d['agent']} has one fixed coding; drop coding: {d['coding']}")
            out.append(d)
        return out

    def drug(self) -> dict[str, Any]:
        """The one drug of a record that can only name one (a draft, a procedure)."""
        drugs = self.drugs()
        if len(drugs) != 1:
            raise DataError(f"{self.kind}: names {len(drugs)} drugs; one only")
        return drugs[0]

    def done(self) -> None:
        unknown = set(self.data) - self.used
        if unknown:
            raise DataError(f"{self.kind}: unknown keys {sorted(unknown)} in {self.data}")


# ------------------------------------------------------------------------------ encoder registry
Encoder = Callable[[Chart, Spec], None]
ENCODERS: dict[str, Encoder] = {}


def encoder(kind: str) -> Callable[[Encoder], Encoder]:
    """Register the encoder of one record kind (the key of a `chart:` item)."""

    def register(fn: Encoder) -> Encoder:
        ENCODERS[kind] = fn
        return fn

    return register


# ------------------------------------------------------------------------------ dates
def day(s: str) -> date:
    return date.fromisoformat(s)


def iso(x: date | str) -> str:
    return x if isinstance(x, str) else x.isoformat()


def schedule(spec: Spec) -> list[date]:
    """Dose dates: `dates: [...]`, or from `start` with `every` + `count`, `segments` [[interval, count], ...]
    (e.g. weekly x8 then every 2 weeks x4) or `cycles` x `cycle_days` on `on_days` (day 1 = start)."""
    if spec.has("dates"):
        return [day(x) for x in spec.req("dates")]
    start = day(spec.req("start"))
    if spec.has("every"):
        every, count = spec.req("every"), spec.req("count")
        return [start + timedelta(days=i * every) for i in range(count)]
    if spec.has("segments"):
        out, cur = [], start
        for interval, count in spec.req("segments"):
            for _ in range(count):
                out.append(cur)
                cur += timedelta(days=interval)
        return out
    cycles, length, on_days = spec.req("cycles"), spec.req("cycle_days"), spec.req("on_days")
    return [start + timedelta(days=c * length + d - 1) for c in range(cycles) for d in on_days]

"""Request bytes → request dict, leaving out the Observations the record never reads.

Why: an EHR that ignores the discovery templates' filters sends a long chart whole — tens of
thousands of routine lab results and vital signs, megabytes of JSON — and building a Python
dict for each of them costs more than everything the service does with the rest. Here the body
is decoded with msgspec: each prefetch resource is first seen as raw bytes, an Observation's
`code`, `category` and `method` are read without building the resource, and only an
Observation that `record/normalise.py` would read (its code plan is not "other", or it has
components, or it names FISH) is decoded into a dict. Every other resource, and everything
outside `prefetch`, is decoded in full as before, so normalise reads exactly the dicts it read
without this module (tests/test_decode.py builds both records and compares them).

Anything unusual — a body that is not JSON, a prefetch that is not an object, a Bundle of odd
shape — takes the plain `orjson.loads` path for that part, so errors and tolerance are unchanged.
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from cds_service.knowledge.loader import Knowledge
from cds_service.record.normalise import _plans

_NONE = msgspec.Raw(b"")  # a field that was absent


class _Head(msgspec.Struct):
    """What decides whether an Observation is read (normalise.read_observation's first lines)."""

    resourceType: Any = None  # noqa: N815 - FHIR names
    code: msgspec.Raw = _NONE
    category: msgspec.Raw = _NONE
    method: msgspec.Raw = _NONE
    component: msgspec.Raw = _NONE


class _Entry(msgspec.Struct):
    resource: msgspec.Raw = _NONE


class _Bundle(msgspec.Struct):
    resourceType: Any = None  # noqa: N815
    entry: list[_Entry] | None = None
    link: msgspec.Raw = _NONE


_TOP = msgspec.json.Decoder(dict[str, msgspec.Raw])
_BUNDLE = msgspec.json.Decoder(_Bundle)
_HEAD = msgspec.json.Decoder(_Head)
_EMPTY = (b"", b"null", b"[]", b"{}")
_READ: dict[str, dict[bytes, bool]] = {}  # per knowledge digest: code/category/method JSON → read?


def _names_fish(kind: str, raw: bytes, knowledge: Knowledge) -> bool:
    """The plan of an Observation code, or whether a method/category names FISH — memoised per bytes."""
    memo = _READ.setdefault(knowledge.digest, {})
    key = kind.encode() + raw
    hit = memo.get(key)
    if hit is None:
        code_plans, category_fish, fish_method = _plans(knowledge)
        value = orjson.loads(raw)
        if kind == "code":
            plan = code_plans(value)
            hit = plan.branch != "other" or plan.code_fish or plan.code_abnormality
        elif kind == "category":
            hit = bool(category_fish(value))
        else:
            hit = bool(fish_method(value))
        if len(memo) >= 50_000:
            memo.clear()
        memo[key] = hit
    return hit


def observation_is_read(raw: bytes, knowledge: Knowledge) -> bool:
    """False only for an Observation that normalise.read_observation returns from unread."""
    head = _HEAD.decode(raw)
    if head.resourceType != "Observation":
        return True
    if bytes(head.component) not in _EMPTY:
        return True
    if _names_fish("code", bytes(head.code) or b"null", knowledge):
        return True
    if len(head.method) and _names_fish("method", bytes(head.method), knowledge):
        return True
    return bool(len(head.category)) and _names_fish("category", bytes(head.category), knowledge)


def _resource(raw: bytes, knowledge: Knowledge) -> Any:
    if b"Observation" not in raw:  # a quick byte search: other resources are decoded in full at once
        return orjson.loads(raw)
    try:
        if not observation_is_read(raw, knowledge):
            return None
    except (msgspec.DecodeError, msgspec.ValidationError, orjson.JSONDecodeError):
        pass  # not an object, or odd fields: decoded in full below, as before
    return orjson.loads(raw)


def _prefetch_value(raw: bytes, knowledge: Knowledge) -> tuple[Any, int]:
    """A prefetch value with unread Observations left out of its Bundle, and how many were left out."""
    try:
        bundle = _BUNDLE.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return orjson.loads(raw), 0
    if bundle.resourceType != "Bundle" or bundle.entry is None:
        return orjson.loads(raw), 0
    entries: list[dict[str, Any]] = []
    skipped = 0
    for entry in bundle.entry:
        if not len(entry.resource):
            continue
        res = _resource(bytes(entry.resource), knowledge)
        if res is None:
            skipped += 1
            continue
        entries.append({"resource": res})
    out: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "entry": entries}
    if len(bundle.link):
        out["link"] = orjson.loads(bytes(bundle.link))
    return out, skipped


def decode_request(body: bytes, knowledge: Knowledge) -> tuple[Any, int]:
    """The request as `orjson.loads(body)` would give it, minus the Observations never read; and
    the number left out. Raises orjson.JSONDecodeError for a body that is not JSON."""
    try:
        top = _TOP.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return orjson.loads(body), 0  # not a JSON object (or not JSON): the plain path says why
    request: dict[str, Any] = {}
    skipped = 0
    for key, raw in top.items():
        data = bytes(raw)
        if key != "prefetch":
            request[key] = orjson.loads(data)
            continue
        try:
            values = _TOP.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            request[key] = orjson.loads(data)
            continue
        prefetch: dict[str, Any] = {}
        for name, value in values.items():
            prefetch[name], n = _prefetch_value(bytes(value), knowledge)
            skipped += n
        request[key] = prefetch
    return request, skipped

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


class _Request(msgspec.Struct, forbid_unknown_fields=True):
    """A CDS Hooks request's fields (an unknown one: the plain path, so validation sees it)."""

    hook: msgspec.Raw = _NONE
    hookInstance: msgspec.Raw = _NONE  # noqa: N815
    fhirServer: msgspec.Raw = _NONE  # noqa: N815
    fhirAuthorization: msgspec.Raw = _NONE  # noqa: N815
    context: msgspec.Raw = _NONE
    extension: msgspec.Raw = _NONE
    prefetch: dict[str, msgspec.Raw] | None | msgspec.UnsetType = msgspec.UNSET


_FIELDS = ("hook", "hookInstance", "fhirServer", "fhirAuthorization", "context", "extension")
_REQUEST = msgspec.json.Decoder(_Request)
_BUNDLE = msgspec.json.Decoder(_Bundle)
_HEAD = msgspec.json.Decoder(_Head)
_EMPTY = (b"", b"null", b"[]", b"{}")
# Bodies smaller than this are parsed whole with orjson: measured on this service's charts, the
# skipping decoder only pays when a body carries megabytes of Observations nobody reads.
SKIP_FROM_BYTES = 2 * 1024 * 1024
_MEMOS: dict[str, tuple[dict[bytes, bool], dict[bytes, bool], dict[bytes, bool]]] = {}


def _memos(knowledge: Knowledge) -> tuple[dict[bytes, bool], dict[bytes, bool], dict[bytes, bool]]:
    """Per knowledge release: Observation.code / .category / .method JSON → does it make the resource read?"""
    memos = _MEMOS.get(knowledge.digest)
    if memos is None:
        memos = _MEMOS[knowledge.digest] = ({}, {}, {})
    return memos


def _read_because(memo: dict[bytes, bool], raw: bytes, decide: Any) -> bool:
    hit = memo.get(raw)
    if hit is None:
        hit = bool(decide(orjson.loads(raw)))
        if len(memo) >= 50_000:
            memo.clear()
        memo[raw] = hit
    return hit


def observation_is_read(raw: Any, knowledge: Knowledge) -> bool:
    """False only for an Observation that normalise.read_observation returns from unread: its code
    plan is "other", it has no components, and neither code, method nor category names FISH."""
    head = _HEAD.decode(raw)
    if head.resourceType != "Observation":
        return True
    if bytes(head.component) not in _EMPTY:
        return True
    code_plans, category_fish, fish_method = _plans(knowledge)
    by_code, by_category, by_method = _memos(knowledge)

    def code_read(code: Any) -> bool:
        plan = code_plans(code)
        return plan.branch != "other" or plan.code_fish or plan.code_abnormality

    if _read_because(by_code, bytes(head.code) or b"null", code_read):
        return True
    if len(head.method) and _read_because(by_method, bytes(head.method), fish_method):
        return True
    return bool(len(head.category)) and _read_because(by_category, bytes(head.category), category_fish)


def _resource(raw: Any, knowledge: Knowledge) -> Any:
    try:
        if not observation_is_read(raw, knowledge):
            return None
    except (msgspec.DecodeError, msgspec.ValidationError, orjson.JSONDecodeError):
        pass  # not an object, or odd fields: decoded in full below, as before
    return orjson.loads(raw)


def _prefetch_value(raw: Any, knowledge: Knowledge) -> tuple[Any, int]:
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
        res = _resource(memoryview(entry.resource), knowledge)
        if res is None:
            skipped += 1
            continue
        entries.append({"resource": res})
    out: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "entry": entries}
    if len(bundle.link):
        out["link"] = orjson.loads(memoryview(bundle.link))
    return out, skipped


def decode_request(body: bytes, knowledge: Knowledge, skip_from: int = SKIP_FROM_BYTES) -> tuple[Any, int]:
    """The request as `orjson.loads(body)` would give it, minus the Observations never read (in a
    body of `skip_from` bytes or more); and the number left out. Raises orjson.JSONDecodeError for
    a body that is not JSON."""
    if len(body) < skip_from:
        return orjson.loads(body), 0
    try:
        top = _REQUEST.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return orjson.loads(body), 0  # not a request object (or not JSON): the plain path says why
    request: dict[str, Any] = {}
    for name in _FIELDS:
        raw = getattr(top, name)
        if len(raw):
            request[name] = orjson.loads(memoryview(raw))
    skipped = 0
    if top.prefetch is None:
        request["prefetch"] = None
    elif top.prefetch is not msgspec.UNSET:
        prefetch: dict[str, Any] = {}
        for key, value in top.prefetch.items():
            prefetch[key], n = _prefetch_value(memoryview(value), knowledge)
            skipped += n
        request["prefetch"] = prefetch
    return request, skipped

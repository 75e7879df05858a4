"""The Rust validator (fast path) and jsonschema agree on what is valid, for requests and contexts.

`schemas.check` trusts jsonschema-rs when it says "valid" and asks jsonschema otherwise, so the
two must never disagree on an instance: checked on every shipped request and on mutations of them.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_service.conformance import load_fixtures
from cds_service.hooks import schemas
from cds_service.pipeline import envelope

ROOT = Path(__file__).resolve().parent.parent
REQUESTS = [f.request for f in load_fixtures([ROOT / "fixtures" / "patients", ROOT / "fixtures" / "spec"])]
NAMES = ["request", *schemas.HOOK_CONTEXT_SCHEMA.values()]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12) | st.sampled_from(["http://x/fhir", "Patient/1", "urn:uuid:1", "patient-view", ""]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def _envelope_agrees(request: Any) -> None:
    """Validating the envelope (prefetch emptied, pipeline.envelope) gives the full request's verdict."""
    if isinstance(request, dict):
        assert (not schemas.errors("request", envelope(request))) == (not schemas.errors("request", request))


def _agree(name: str, instance: Any) -> None:
    fast = schemas.fast_validator(name)
    assert fast is not None, f"jsonschema-rs (a declared dependency) gave no validator for {name}"
    assert fast.is_valid(instance) == (not schemas.errors(name, instance)), (name, instance)


def test_shipped_requests_agree() -> None:
    assert REQUESTS
    for request in REQUESTS:
        _agree("request", request)
        _envelope_agrees(request)
        hook = request.get("hook")
        if hook in schemas.HOOK_CONTEXT_SCHEMA:
            _agree(schemas.HOOK_CONTEXT_SCHEMA[hook], request.get("context"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=st.integers(0, 10_000), where=st.sampled_from(["top", "context", "prefetch"]), key=st.text(max_size=12),
       known=st.booleans(), value=json_values, drop=st.booleans())
def test_mutated_requests_agree(index: int, where: str, key: str, known: bool, value: Any, drop: bool) -> None:
    request = copy.deepcopy(REQUESTS[index % len(REQUESTS)])
    target = request if where == "top" or not isinstance(request.get(where), dict) else request[where]
    if known and target:
        key = sorted(target)[index % len(target)]
    if drop:
        target.pop(key, None)
    else:
        target[key] = value
    _agree("request", request)
    _envelope_agrees(request)
    for name in schemas.HOOK_CONTEXT_SCHEMA.values():
        _agree(name, request.get("context"))

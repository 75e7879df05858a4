"""record/decode.py: the request without the Observations the record never reads, the same record.

Why: the decoder leaves routine labs and vital signs out before any dict is built; that is only
right if normalise would have ignored each of them. Every shipped fixture and every benchmark
chart is read both ways and the records compared, and the long chart's cards must be the same
whether the EHR honours the templates' filters, ignores them, or sends only the myeloma history.
"""

from __future__ import annotations

import dataclasses
import glob
from datetime import date
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import charts, distinct, patients
from cds_service.config import load_settings
from cds_service.gather.gather import DataUnavailable, gather
from cds_service.hooks.registry import PREFETCH
from cds_service.knowledge.loader import default_knowledge
from cds_service.pipeline import run
from cds_service.record.decode import SKIP_FROM_BYTES, decode_request, observation_is_read
from cds_service.record.normalise import build_record

ROOT = Path(__file__).resolve().parent.parent
AS_OF = date(2026, 11, 1)
KNOWLEDGE = default_knowledge()


def _record(request: dict) -> dict:
    resources = gather(request, PREFETCH, load_settings({}, environ={})).resources
    rec = dataclasses.asdict(build_record(resources, AS_OF, KNOWLEDGE))
    rec.pop("resource_count")
    return rec


def _fixture_bodies() -> list[bytes]:
    return [Path(p).read_bytes() for p in sorted(glob.glob(str(ROOT / "fixtures" / "patients" / "*.json")))]


@pytest.mark.parametrize("body", _fixture_bodies(), ids=lambda b: str(len(b)))
def test_fixtures_give_the_same_record_decoded_or_parsed(body: bytes) -> None:
    plain = orjson.loads(body)
    decoded, _skipped = decode_request(body, KNOWLEDGE, skip_from=0)
    assert {k: v for k, v in decoded.items() if k != "prefetch"} == {k: v for k, v in plain.items() if k != "prefetch"}
    if isinstance(plain.get("prefetch"), dict):
        assert _record(decoded) == _record(plain)


def test_long_chart_skips_routine_results_and_keeps_the_record() -> None:
    _bare, full = charts.long_chart(years=2)
    body = orjson.dumps(patients.hook_request("bench-long", patients.prefetch_for(full)))
    decoded, skipped = decode_request(body, KNOWLEDGE, skip_from=0)
    routine = sum(1 for r in full if r["resourceType"] == "Observation" and r["id"].startswith("n"))
    assert skipped >= routine > 1000  # and any history result no rule reads yet (the record is the check)
    assert _record(decoded) == _record(orjson.loads(body))


def test_distinct_charts_give_the_same_record() -> None:
    for pid, chart in charts.distinct_charts(12):
        body = orjson.dumps(patients.hook_request(pid, patients.prefetch_for(chart)))
        assert _record(decode_request(body, KNOWLEDGE, skip_from=0)[0]) == _record(orjson.loads(body))


@pytest.mark.parametrize("observation,read", [
    ({"resourceType": "Observation", "code": {"text": "Hemoglobin"}}, False),
    ({"resourceType": "Observation", "code": {"coding": [{"system": "http://loinc.org", "code": "33358-3"}]}}, True),
    ({"resourceType": "Observation", "code": {"text": "M-spike"}}, True),  # read by its wording
    ({"resourceType": "Observation", "code": {"text": "del(17p) by FISH"}}, True),
    ({"resourceType": "Observation", "code": {"text": "Panel"}, "component": [{"code": {"text": "x"}}]}, True),
    ({"resourceType": "Observation", "code": {"text": "Chromosome study"},
      "method": {"coding": [{"system": "http://snomed.info/sct", "code": "426329006"}]}}, True),
    ({"resourceType": "Observation", "code": {"text": "Heart rate"}, "category": [{"text": "vital-signs"}]}, False),
    ({"resourceType": "Condition", "code": {"text": "Hemoglobin"}}, True),
])
def test_which_observations_are_read(observation: dict, read: bool) -> None:
    assert observation_is_read(orjson.dumps(observation), KNOWLEDGE) is read


JSONISH = st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | st.text(max_size=8),
                       lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                       max_leaves=12)
RESOURCE = st.fixed_dictionaries({"resourceType": st.sampled_from(["Condition", "Patient", "Bundle", "Observation"])},
                                 optional={"id": st.text(max_size=4), "code": JSONISH, "status": JSONISH})
BUNDLE = st.fixed_dictionaries({"resourceType": st.just("Bundle")}, optional={
    "entry": st.lists(st.fixed_dictionaries({}, optional={"resource": RESOURCE | JSONISH}) | JSONISH, max_size=3) | JSONISH,
    "link": JSONISH})


@settings(max_examples=150, deadline=None)
@given(prefetch=st.dictionaries(st.sampled_from(sorted(PREFETCH)), JSONISH | BUNDLE | RESOURCE, max_size=4)
       | JSONISH, other=JSONISH)
def test_odd_shapes_decode_to_the_same_record(prefetch: object, other: object) -> None:
    """Whatever the EHR sends, the decoder gives what orjson would, apart from Observations the
    record does not read: the same gathering outcome and the same record."""
    body = orjson.dumps({"hook": "patient-view", "prefetch": prefetch, "context": other})
    decoded, _n = decode_request(body, KNOWLEDGE, skip_from=0)
    plain = orjson.loads(body)
    assert {k: v for k, v in decoded.items() if k != "prefetch"} == {k: v for k, v in plain.items() if k != "prefetch"}
    if not isinstance(plain["prefetch"], dict):
        assert decoded["prefetch"] == plain["prefetch"]
        return
    assert _outcome(decoded["prefetch"]) == _outcome(plain["prefetch"])


def _outcome(prefetch: dict) -> tuple:
    request = {"context": {"patientId": "p1"}, "prefetch": prefetch}
    try:
        gathered = gather(request, PREFETCH, load_settings({}, environ={}))
    except DataUnavailable as exc:
        return ("unavailable", exc.missing)
    record = dataclasses.asdict(build_record(gathered.resources, AS_OF, KNOWLEDGE))
    record.pop("resource_count")
    return gathered.missing, gathered.problems, record


def test_small_bodies_are_parsed_whole() -> None:
    """Below SKIP_FROM_BYTES the skipping decoder costs more than it saves: orjson parses the body."""
    _bare, full = charts.long_chart(years=0.2)
    body = orjson.dumps(patients.hook_request("bench-long", patients.prefetch_for(full)))
    assert len(body) < SKIP_FROM_BYTES
    assert decode_request(body, KNOWLEDGE) == (orjson.loads(body), 0)
    assert decode_request(body, KNOWLEDGE, skip_from=0)[1] > 0


def test_not_json_raises_the_same_error() -> None:
    with pytest.raises(orjson.JSONDecodeError):
        decode_request(b'{"hook": ', KNOWLEDGE, skip_from=0)
    assert decode_request(b"[1, 2]", KNOWLEDGE, skip_from=0)[0] == [1, 2]


def _cards(resources: list[dict], decode: bool = True) -> list[dict]:
    body = orjson.dumps(patients.hook_request("bench-long", patients.prefetch_for(resources)))
    request = decode_request(body, KNOWLEDGE, skip_from=0)[0] if decode else orjson.loads(body)
    result = run("mm-next-line", request, load_settings({"AS_OF_DATE": "2026-11-01"}, environ={}), KNOWLEDGE)
    return distinct.cards_without_uuids(result)


def test_eight_year_chart_gives_the_same_cards_filtered_unfiltered_and_bare() -> None:
    """The EHR that honours the filters, the one that ignores them (read without and with the
    decoder), and the myeloma history alone: the same cards."""
    bare, full = charts.long_chart(years=8)
    expected = _cards(bare)
    assert expected and any(c["extension"]["org.mmcds.card"]["kind"] == "options" for c in expected)
    assert _cards(charts.filtered(full)) == expected
    assert _cards(full) == expected
    assert _cards(full, decode=False) == expected


def test_the_filtered_chart_holds_what_the_templates_ask_for() -> None:
    bare, full = charts.long_chart(years=8)
    kept = charts.filtered(full)
    assert len(kept) < len(full) // 5
    assert not any(r["resourceType"] == "Observation" and r["id"].startswith("n") for r in kept)
    kept_ids = {r["id"] for r in kept}
    left_out = [r for r in bare if r["id"] not in kept_ids]  # history results no rule reads (not in mappings)
    assert all(not observation_is_read(orjson.dumps(r), KNOWLEDGE) for r in left_out)


@pytest.mark.parametrize("body", [
    b'{"hook": "patient-view", "unknownField": [1], "prefetch": {"patient": {"resourceType": "Patient", "id": "p"}}}',
    b'{"hook": "patient-view", "prefetch": null}',
    b'{"hook": "patient-view", "prefetch": [1, 2]}',
    b'{"hook": "patient-view"}',
    b'{"hook": 5, "context": "x", "prefetch": {"a": null, "b": {"resourceType": "Bundle", "entry": {"x": 1}}}}',
])
def test_envelopes_of_every_shape_come_through_unchanged(body: bytes) -> None:
    assert decode_request(body, KNOWLEDGE, skip_from=0)[0] == orjson.loads(body)

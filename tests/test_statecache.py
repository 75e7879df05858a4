"""The state cache: a reused chart gives exactly the answer a fresh read gives, and nothing leaks.

Every fixture request is run without a cache, then twice through one shared cache (a miss and a
hit); the cards must be identical apart from the uuids we mint per answer. The cached record and
state must come out of the rules and renderers unchanged (they are shared between calls).
"""

from __future__ import annotations

import copy
import re
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest

from cds_service.config import load_settings
from cds_service.conformance import load_fixtures
from cds_service.knowledge.loader import default_knowledge
from cds_service.pipeline import run
from cds_service.statecache import Entry, StateCache, resources_digest

ROOT = Path(__file__).resolve().parent.parent
SERVICE_FOR_HOOK = {"patient-view": "mm-next-line", "order-select": "mm-order-check", "order-sign": "mm-order-sign"}
UUID_RE = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
FIXTURES = [f for f in load_fixtures([ROOT / "fixtures" / "patients"]) if f.request.get("prefetch")]


@pytest.fixture(scope="module")
def knowledge() -> Any:
    return default_knowledge()


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return load_settings({"AUTH_MODE": "none", "AS_OF_DATE": "2026-11-01",
                          "DATA_DIR": str(tmp_path_factory.mktemp("data"))}, environ={})


def _offline(request: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in request.items() if k not in ("fhirServer", "fhirAuthorization")}


def _cards(response: dict[str, Any]) -> bytes:
    return UUID_RE.sub(b"<uuid>", orjson.dumps(response, option=orjson.OPT_SORT_KEYS))


def test_fixtures_found() -> None:
    assert len(FIXTURES) >= 50


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.path for f in FIXTURES])
def test_cached_answer_equals_fresh_answer(fixture: Any, settings: Any, knowledge: Any) -> None:
    request = _offline(fixture.request)
    service_id = SERVICE_FOR_HOOK[request["hook"]]
    fresh = run(service_id, copy.deepcopy(request), settings, knowledge)
    assert not fresh.state_cached

    cache = StateCache(8)
    miss = run(service_id, copy.deepcopy(request), settings, knowledge, cache=cache)
    assert not miss.state_cached and len(cache) == 1
    (entry,) = cache.entries()
    snapshot = copy.deepcopy((entry.record, entry.state))
    hit = run(service_id, copy.deepcopy(request), settings, knowledge, cache=cache)
    assert hit.state_cached
    assert cache.hits == 1 and cache.misses == 1

    assert _cards(miss.response) == _cards(fresh.response)
    assert _cards(hit.response) == _cards(fresh.response)
    again = run(service_id, copy.deepcopy(request), settings, knowledge, cache=cache)  # rendered cards reused
    assert _cards(again.response) == _cards(fresh.response)
    # every answer has its own card and suggestion uuids, even when its cards were reused
    minted = [set(UUID_RE.findall(orjson.dumps(r.response))) for r in (miss, hit, again)]
    assert all(not (a & b) for i, a in enumerate(minted) for b in minted[i + 1:])
    # the shared objects were not changed by the rules, renderers or the missing-data notes
    assert (entry.record, entry.state) == snapshot


def test_missing_data_notes_stay_with_their_call(settings: Any, knowledge: Any) -> None:
    """Same resources, but one call lacks a prefetch key: its 'not available' note must not stick."""
    fixture = next(f for f in FIXTURES if f.request["hook"] == "patient-view"
                   and f.request["prefetch"].get("observations") is not None)
    complete = _offline(fixture.request)
    empty_obs = {"resourceType": "Bundle", "type": "searchset", "entry": []}
    with_empty = copy.deepcopy(complete)
    with_empty["prefetch"]["observations"] = empty_obs
    without = copy.deepcopy(complete)
    without["prefetch"]["observations"] = None  # the EHR could not prefetch it (and no FHIR server)

    cache = StateCache(8)
    first = run("mm-next-line", with_empty, settings, knowledge, cache=cache)
    second = run("mm-next-line", without, settings, knowledge, cache=cache)
    third = run("mm-next-line", copy.deepcopy(with_empty), settings, knowledge, cache=cache)
    assert second.state_cached and third.state_cached
    assert b"observations: not available" in orjson.dumps(second.response)
    assert b"observations: not available" not in orjson.dumps(first.response)
    assert _cards(third.response) == _cards(first.response)


def test_key_changes_with_any_resource_change() -> None:
    chart = [{"resourceType": "Patient", "id": "p"},
             {"resourceType": "Observation", "id": "o", "valueQuantity": {"value": 1.5}}]
    changed = copy.deepcopy(chart)
    changed[1]["valueQuantity"]["value"] = 1.6
    reordered = list(reversed(chart))
    digests = {resources_digest(chart), resources_digest(changed), resources_digest(reordered)}
    assert len(digests) == 3
    assert resources_digest(copy.deepcopy(chart)) == resources_digest(chart)


def test_unserialisable_chart_is_not_cached() -> None:
    assert resources_digest([{"resourceType": "Patient", "id": object()}]) is None


def test_as_of_date_and_knowledge_are_part_of_the_key(settings: Any, knowledge: Any) -> None:
    fixture = next(f for f in FIXTURES if f.request["hook"] == "patient-view")
    request = _offline(fixture.request)
    cache = StateCache(8)
    run("mm-next-line", copy.deepcopy(request), settings, knowledge, cache=cache)
    later = load_settings({"AUTH_MODE": "none", "AS_OF_DATE": "2027-06-01", "DATA_DIR": str(settings.data_dir)},
                          environ={})
    again = run("mm-next-line", copy.deepcopy(request), later, knowledge, cache=cache)
    assert not again.state_cached and len(cache) == 2
    assert {k[1] for k in cache.entry_keys()} == {date(2026, 11, 1), date(2027, 6, 1)}
    assert {k[2] for k in cache.entry_keys()} == {knowledge.digest}


def test_lru_eviction_and_off_switch() -> None:
    cache = StateCache(2)
    entries = {}
    for name in ("a", "b", "c"):
        key = (name.encode(), date(2026, 1, 1), "k")
        entries[name] = Entry(record=None, state=None)  # type: ignore[arg-type]
        cache.put(key, entries[name])
        if name == "b":
            assert cache.get((b"a", date(2026, 1, 1), "k")) is entries["a"]  # a is now most recent
    assert len(cache) == 2
    assert cache.get((b"b", date(2026, 1, 1), "k")) is None  # least recently used went first
    assert cache.get((b"a", date(2026, 1, 1), "k")) is entries["a"]
    off = StateCache(0)
    off.put((b"a", date(2026, 1, 1), "k"), entries["a"])
    assert not off.enabled and len(off) == 0 and off.get((b"a", date(2026, 1, 1), "k")) is None


def test_setting_turns_the_cache_off(tmp_path: Path) -> None:
    from cds_service.app import create_app

    app = create_app({"AUTH_MODE": "none", "DATA_DIR": str(tmp_path), "STATE_CACHE_SIZE": "0", "WARMUP": "false"})
    assert not app.extensions["mmcds"].cache.enabled
    app = create_app({"AUTH_MODE": "none", "DATA_DIR": str(tmp_path), "WARMUP": "false"})
    assert app.extensions["mmcds"].cache.max_entries == 256


def test_reused_cards_follow_the_settings(settings: Any, knowledge: Any) -> None:
    """The same chart under other institution settings (no CAR-T, an agent unavailable) is re-rendered."""
    fixture = next(f for f in FIXTURES if f.request["hook"] == "patient-view"
                   and b"triple-class-refractory" in orjson.dumps(run("mm-next-line", _offline(f.request), settings,
                                                                      knowledge).response))
    request = _offline(fixture.request)
    cache = StateCache(8)
    base = run("mm-next-line", copy.deepcopy(request), settings, knowledge, cache=cache)
    for overrides in ({"CAR_T_AVAILABLE": "false"}, {"UNAVAILABLE_AGENTS": "teclistamab,elranatamab,talquetamab"}):
        other = load_settings({"AUTH_MODE": "none", "AS_OF_DATE": "2026-11-01", "DATA_DIR": str(settings.data_dir),
                               **overrides}, environ={})
        expected = run("mm-next-line", copy.deepcopy(request), other, knowledge)  # no cache
        got = run("mm-next-line", copy.deepcopy(request), other, knowledge, cache=cache)
        assert got.state_cached
        assert _cards(got.response) == _cards(expected.response)
        assert _cards(got.response) != _cards(base.response), overrides
    again = run("mm-next-line", copy.deepcopy(request), settings, knowledge, cache=cache)
    assert _cards(again.response) == _cards(base.response)


def test_link_is_part_of_the_view_key(settings: Any, knowledge: Any) -> None:
    fixture = next(f for f in FIXTURES if f.request["hook"] == "patient-view")
    request = _offline(fixture.request)
    cache = StateCache(8)
    a = run("mm-next-line", copy.deepcopy(request), settings, knowledge, base_url="http://a.example/", cache=cache)
    b = run("mm-next-line", copy.deepcopy(request), settings, knowledge, base_url="http://b.example/", cache=cache)
    assert b"http://a.example/smart/launch" in orjson.dumps(a.response)
    assert b"http://b.example/smart/launch" in orjson.dumps(b.response)
    assert b"http://a.example" not in orjson.dumps(b.response)


# ------------------------------------------------------------------ a repeated request body


def _body(request: dict[str, Any], hook_instance: str) -> tuple[bytes, dict[str, Any]]:
    req = dict(request, hookInstance=hook_instance)
    raw = orjson.dumps(req)
    return raw, orjson.loads(raw)


def test_a_chart_sent_again_is_not_read_again_and_answers_the_same(settings: Any, knowledge: Any) -> None:
    fixture = next(f for f in FIXTURES if f.request["hook"] == "patient-view")
    request = _offline(fixture.request)
    fresh = run("mm-next-line", copy.deepcopy(request), settings, knowledge)
    cache = StateCache(16)
    raw1, req1 = _body(request, "call-1")
    first = run("mm-next-line", req1, settings, knowledge, cache=cache)
    raw2, req2 = _body(request, "call-2")
    second = run("mm-next-line", req2, settings, knowledge, cache=cache)
    assert not first.state_cached and second.state_cached
    assert second.timings_ms["state"] == 0.0  # record and state reused
    assert _cards(second.response) == _cards(first.response) == _cards(fresh.response)
    assert second.hook_instance == "call-2" and second.input_hash == first.input_hash

    # one value changed anywhere in the chart: a new key, read afresh
    changed = copy.deepcopy(request)
    bundle = next(v for v in changed["prefetch"].values() if isinstance(v, dict) and v.get("entry"))
    bundle["entry"] = bundle["entry"][:-1]
    raw3, req3 = _body(changed, "call-3")
    third = run("mm-next-line", req3, settings, knowledge, cache=cache)
    assert not third.state_cached
    assert _cards(third.response) == _cards(run("mm-next-line", copy.deepcopy(changed), settings, knowledge).response)


def test_a_chart_fetched_from_the_fhir_server_is_fetched_again(settings: Any, knowledge: Any) -> None:
    """The FHIR server's data can change between calls: it is fetched for every call."""
    from tests.fhir_server import FhirTestServer, resources_from_prefetch

    fixture = next(f for f in FIXTURES if f.request["hook"] == "patient-view")
    request = _offline(fixture.request)
    with FhirTestServer(resources_from_prefetch(request["prefetch"])) as srv:
        fetch_req = {**{k: v for k, v in request.items() if k != "prefetch"}, "fhirServer": srv.base_url}
        cache = StateCache(16)
        raw1, req1 = _body(fetch_req, "f-1")
        first = run("mm-next-line", req1, settings, knowledge, cache=cache)
        calls = srv.request_count
        raw2, req2 = _body(fetch_req, "f-2")
        second = run("mm-next-line", req2, settings, knowledge, cache=cache)
        assert calls > 0 and srv.request_count == 2 * calls  # fetched again
        assert second.state_cached  # ... and, the chart being unchanged, not read again
        assert _cards(second.response) == _cards(first.response)


def test_weight_bounds_the_cache() -> None:
    cache = StateCache(4)  # at most 4 entries and 4 x 400 resources
    day = date(2026, 1, 1)
    cache.put((b"big", day, "k"), Entry(record=None, state=None), weight=1500)  # type: ignore[arg-type]
    cache.put((b"mid", day, "k"), Entry(record=None, state=None), weight=200)  # type: ignore[arg-type]
    assert cache.weight == 200 and len(cache) == 1  # the older, heavy entry made room
    cache.put((b"huge", day, "k"), Entry(record=None, state=None), weight=5000)  # type: ignore[arg-type]
    assert cache.get((b"huge", day, "k")) is None  # larger than the whole budget: not kept
    for i in range(6):
        cache.put((b"s%d" % i, day, "k"), Entry(record=None, state=None), weight=10)  # type: ignore[arg-type]
    assert len(cache) == 4 and cache.weight == 40

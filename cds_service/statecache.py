"""A bounded, content-keyed cache of derived clinical states, one per worker process.

Why: an EHR calls the hooks again and again with the same chart — patient-view on every chart
open, order-select on every order the clinician touches, order-sign at the end — and reading the
chart into a record and deriving its state is most of a call's cost. Measured in process
(bench/distinct.py, `python -m bench.run`): patient-view then two order-selects on the same chart
−28 to −38 % CPU per call, a chart opened twice −30 to −40 %; a stream of charts never seen pays
the bookkeeping, +5 to +6 % (the chart digest is computed either way: the audit's input hash). The derivation is a pure
function of (the gathered resources, the as-of date, the knowledge), so its result can be reused
when exactly those are the same: the key is a 128-bit (truncated SHA-256) digest of the gathered
resources' JSON bytes together with the date and the knowledge digest. Any change to any
resource, a new day, or another knowledge release is a different key, never a stale answer.

What is kept: the PatientRecord and ClinicalState objects, which the rules and renderers only
read (tests/test_statecache.py checks that no stage mutates them), and the patient-view cards
rendered from them. Nothing is written to disk or logged; entries live in the worker's memory
until evicted (least recently used first).
`MMCDS_STATE_CACHE_SIZE=0` turns the cache off.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import orjson

from cds_service.clinical.model import ClinicalState
from cds_service.record.model import PatientRecord


@dataclass(frozen=True)
class Entry:
    """One chart's record and state, and the patient-view cards rendered (and validated) from them
    by view key (settings, call-specific notes, link), so a repeated chart open skips rendering;
    each reuse gets fresh card and suggestion uuids (pipeline.py)."""

    record: PatientRecord
    state: ClinicalState
    views: dict[Any, list[dict[str, Any]]] = field(default_factory=dict, compare=False)

    MAX_VIEWS = 8


def resources_digest(resources: list[dict[str, Any]]) -> bytes | None:
    """A digest of the gathered resources exactly as they will be read (order and all).

    None when they cannot be serialised (then nothing is cached and the chart is read afresh).
    """
    try:  # parsed JSON has string keys only; orjson serialises them ~2x faster without OPT_NON_STR_KEYS
        raw = orjson.dumps(resources)
    except TypeError:  # a non-string key (a hand-built dict): the same bytes the option has always given
        try:
            raw = orjson.dumps(resources, option=orjson.OPT_NON_STR_KEYS)
        except (TypeError, orjson.JSONEncodeError):
            return None
    return hashlib.sha256(raw).digest()[:16]  # SHA-256: hardware-accelerated, ~2x BLAKE2b here


class StateCache:
    """LRU map from (resources digest, as-of date, knowledge digest) to an Entry (record, state).

    Bounded twice: at most `max_entries` entries, and at most `RESOURCES_PER_ENTRY` × that many
    resources in all (an entry weighs its chart's resource count), so a few huge charts cannot
    hold a worker's memory (a record costs roughly 1 KiB per resource read).
    """

    RESOURCES_PER_ENTRY = 400

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max(0, int(max_entries))
        self.max_weight = self.max_entries * self.RESOURCES_PER_ENTRY
        self._data: OrderedDict[tuple[Any, ...], tuple[Any, int]] = OrderedDict()
        self._weight = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0

    @property
    def weight(self) -> int:
        return self._weight

    def __len__(self) -> int:
        return len(self._data)

    def entries(self) -> list[Any]:
        with self._lock:
            return [v for v, _w in self._data.values()]

    def entry_keys(self) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._data)

    def get(self, key: tuple[Any, ...]) -> Any:
        if not self.max_entries:
            return None
        with self._lock:
            item = self._data.get(key)
            if item is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return item[0]

    def put(self, key: tuple[Any, ...], entry: Entry, weight: int = 1) -> None:
        weight = max(1, int(weight))
        if not self.max_entries or weight > self.max_weight:
            return
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._weight -= old[1]
            self._data[key] = (entry, weight)
            self._weight += weight
            while len(self._data) > self.max_entries or self._weight > self.max_weight:
                _key, (_entry, w) = self._data.popitem(last=False)
                self._weight -= w

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._weight = 0

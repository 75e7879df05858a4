"""One computing request per worker process at a time: the CPU lane.

Why: a gthread worker runs several requests in threads, but Python runs one thread at a time, so
interleaving CPU-bound requests buys nothing and costs much: the GIL hands over every few
milliseconds and each request's parsed chart (a few MB of objects for a large prefetch) pushes
the others' out of the CPU caches. Measured (bench/, issue 6): the same service served ~10 %
more requests per CPU second with 1 thread per worker than with 4. Threads still pay off while a
request waits on the EHR's FHIR server, so the lane is held for computing only: `gather` steps
out of it (`io()`) while its queries are in flight, and reading the body and writing the answer
happen outside it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_LANE = threading.Lock()
_local = threading.local()


def held() -> bool:
    return bool(getattr(_local, "held", False))


@contextmanager
def cpu() -> Iterator[None]:
    """Hold the lane while computing (re-entrant: an inner `cpu()` in the same thread is a no-op)."""
    if held():
        yield
        return
    _LANE.acquire()
    _local.held = True
    try:
        yield
    finally:
        _local.held = False
        _LANE.release()


@contextmanager
def io() -> Iterator[None]:
    """Step out of the lane (if this thread holds it) while waiting on the network."""
    if not held():
        yield
        return
    _local.held = False
    _LANE.release()
    try:
        yield
    finally:
        _LANE.acquire()
        _local.held = True

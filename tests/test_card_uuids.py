"""Card and suggestion uuids: random version-4 UUIDs, unique, and never shared with a forked worker."""

from __future__ import annotations

import multiprocessing
import uuid

from cds_service.render.cards import new_uuid


def test_uuids_are_rfc4122_version_4_and_unique() -> None:
    seen = set()
    for _ in range(5000):
        text = new_uuid()
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == text  # canonical lower-case 8-4-4-4-12 form
        seen.add(text)
    assert len(seen) == 5000


def _child(queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    queue.put([new_uuid() for _ in range(50)])


def test_a_forked_worker_does_not_repeat_the_parents_uuids() -> None:
    new_uuid()  # the parent has a buffer of random bytes now
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue,))
    proc.start()
    child = queue.get(timeout=30)
    proc.join(30)
    parent = [new_uuid() for _ in range(50)]
    assert not set(child) & set(parent)

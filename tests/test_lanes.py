"""The CPU lane: one computing request per process; a request waiting on the network steps out."""

from __future__ import annotations

import threading
import time

from cds_service import lanes


def test_one_thread_computes_at_a_time() -> None:
    inside = 0
    most = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal inside, most
        with lanes.cpu():
            with lock:
                inside += 1
                most = max(most, inside)
            time.sleep(0.01)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most == 1


def test_io_lets_another_request_compute_meanwhile() -> None:
    order: list[str] = []
    waiting = threading.Event()
    other_done = threading.Event()

    def fetching() -> None:
        with lanes.cpu():
            order.append("a computes")
            with lanes.io():  # e.g. gather waiting on the FHIR server
                waiting.set()
                assert other_done.wait(5)
            assert lanes.held()
            order.append("a computes again")

    def other() -> None:
        assert waiting.wait(5)
        with lanes.cpu():
            order.append("b computes")
        other_done.set()

    ta, tb = threading.Thread(target=fetching), threading.Thread(target=other)
    ta.start()
    tb.start()
    ta.join(10)
    tb.join(10)
    assert order == ["a computes", "b computes", "a computes again"]


def test_reentrant_and_released_on_error() -> None:
    try:
        with lanes.cpu():
            with lanes.cpu():  # nested: no deadlock
                assert lanes.held()
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert not lanes.held()
    with lanes.io():  # outside the lane: nothing to release
        assert not lanes.held()
    acquired = lanes._LANE.acquire(timeout=1)
    assert acquired
    lanes._LANE.release()

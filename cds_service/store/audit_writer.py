"""The per-process writer thread that commits audit rows in batches, off the request's path."""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cds_service.store.db import Store

_log = logging.getLogger("cds_service.store")


class AuditWriter:
    """Commits audit rows from a queue in batches, on a thread of the process that queued them.

    Why: a commit per answer (SQLAlchemy + BEGIN IMMEDIATE + WAL) cost ~0.5 ms of the request's
    CPU and serialised the workers on SQLite's write lock; one commit per batch costs about the
    same for 1 or 200 rows. A request only puts its rows on a `SimpleQueue`; the writer wakes on
    the first, waits `BATCH_WINDOW_S` for more, and commits them together.
    Nothing is dropped: a failed batch is retried answer by answer and what still fails is
    logged (never with patient data); `flush()` waits until everything queued so far is
    committed; `stop()` runs at interpreter exit and from gunicorn's `worker_exit` hook. A worker
    forked from a parent that had a writer starts its own thread and queue on first use.
    """

    # A commit per quarter second and worker, whatever the load: measured (bench/), a 20 ms window
    # still cost ~0.1 ms of system CPU per answer in SQLite's WAL writes and file locking.
    BATCH_WINDOW_S = 0.25

    def __init__(self, store: Store) -> None:
        self._store = store
        self._done = threading.Condition()
        self._pid = -1
        self._queue: queue.SimpleQueue[list[dict] | None] = queue.SimpleQueue()
        self._submitted = 0
        self._count_lock = threading.Lock()
        self._written = 0
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.failures = 0
        atexit.register(self.stop)

    def submit(self, rows: list[dict]) -> None:
        if self._pid != os.getpid() or self._thread is None:
            self._start()
        with self._count_lock:  # count and queue order agree, so flush() knows what it waits for
            self._submitted += 1
            self._queue.put(rows)

    def _start(self) -> None:
        with self._start_lock:
            if self._pid == os.getpid() and self._thread is not None:
                return
            # a forked child: the parent's queue and counts are the parent's to write
            self._queue = queue.SimpleQueue()
            self._submitted = 0
            self._count_lock = threading.Lock()
            self._written = 0
            self._done = threading.Condition()
            self._thread = threading.Thread(target=self._loop, name="mmcds-audit-writer", daemon=True)
            self._pid = os.getpid()
            self._thread.start()

    def flush(self, timeout: float = 30.0) -> bool:
        if self._pid != os.getpid() or self._thread is None:
            return True  # nothing was queued in this process
        target = self._submitted
        deadline = time.monotonic() + timeout
        with self._done:
            while self._written < target:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._done.wait(min(left, 0.5))
        return True

    def stop(self) -> None:
        """Commit what is queued, then end the thread (a later `submit` starts a new one)."""
        if self._pid != os.getpid() or self._thread is None:
            return
        self.flush()
        thread, self._thread = self._thread, None
        self._queue.put(None)
        thread.join(timeout=5)

    def _loop(self) -> None:
        q = self._queue
        while True:
            first = q.get()
            batch: list[list[dict]] = []
            stopping = first is None
            if first is not None:
                batch.append(first)
                time.sleep(self.BATCH_WINDOW_S)  # let the answers of the next moments join this commit
            while True:
                try:
                    item = q.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                else:
                    batch.append(item)
            if batch:
                self._write(batch)
                with self._done:
                    self._written += len(batch)
                    self._done.notify_all()
            if stopping:
                return

    def _write(self, batch: list[list[dict]]) -> None:
        rows = [r for rows in batch for r in rows]
        try:
            self._store._insert_audit_rows(rows)
            return
        except Exception:  # noqa: BLE001 - retried below, one answer at a time
            pass
        for rows in batch:
            try:
                self._store._insert_audit_rows(rows)
            except Exception as exc:  # noqa: BLE001 - the answer was sent; ops see the failure
                self.failures += 1
                _log.error("audit write failed", extra={"error_type": type(exc).__name__, "rows": len(rows)})

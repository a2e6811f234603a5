"""Group commit of evaluation records and audit events.

A result is released only after its evaluation record and its audit event are committed
(an evaluation response is a read of a result, and every read is on the trail). Committing
each request on its own would cap a worker at the database's commit rate, so requests queue
their rows and one commit takes everything queued meanwhile:

- `record()` (single requests): the commit runs on the event loop, scheduled with
  `call_soon` when the first request of a group queues. Every request the loop is handling in
  that turn joins the group; while the commit runs, new requests wait in the socket buffers
  and form the next group. Under load a commit carries tens of requests; alone, a request
  waits for one commit. (A writer thread was tried first: its Python work held the GIL in 5 ms
  slices against the event loop, which showed up as the p99.)
- `record_large()` (batch chunks): thousands of rows, committed in a worker thread so the
  loop keeps serving while they are written.
"""
from __future__ import annotations

import asyncio
import logging

from fastapi.concurrency import run_in_threadpool

from . import audit
from .store import EvaluationRecord, insert_rows

log = logging.getLogger("riskrules.recorder")


class RecordingFailed(Exception):
    """The store did not take the records: the results they belong to must not be released."""


class Recorder:
    def __init__(self, store):
        self.store = store
        self._pending: list = []            # (evaluations, events, future)
        self._loop = None
        self.failures = 0

    async def record(self, evaluations: list, events: list) -> None:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((evaluations, events, future))
        if len(self._pending) == 1:
            loop.call_soon(self._flush)
        await future

    async def record_large(self, evaluations: list, events: list) -> None:
        try:
            await run_in_threadpool(self.commit, [(evaluations, events)])
        except Exception as exc:  # noqa: BLE001 - reported to the request
            self.failures += 1
            log.error("could not record: %s", exc)
            raise RecordingFailed(str(exc)) from exc

    def _flush(self) -> None:
        group, self._pending = self._pending, []
        try:
            self.commit([(e, a) for e, a, _ in group])
        except Exception:  # noqa: BLE001 - one bad job must not fail the others: commit each alone
            for evaluations, events, future in group:
                try:
                    self.commit([(evaluations, events)])
                except Exception as exc:  # noqa: BLE001
                    self.failures += 1
                    log.error("could not record: %s", exc)
                    if not future.done():
                        future.set_exception(RecordingFailed(str(exc)))
                    continue
                if not future.done():
                    future.set_result(None)
            return
        for _, _, future in group:
            if not future.done():           # a request cancelled meanwhile has nobody to tell
                future.set_result(None)

    def commit(self, jobs: list) -> None:
        evaluations = [r for e, _ in jobs for r in e]
        events = [ev for _, a in jobs for ev in a]
        with self.store.write() as conn:
            insert_rows(conn, EvaluationRecord.__table__, evaluations)
            audit.append(conn, events, postgres=self.store.is_postgres)

"""Group commit of evaluation records and audit events.

A result is released only after its evaluation record and its audit event are committed
(an evaluation response is a read of a result, and every read is on the trail). Committing
each request on its own would cap the service at the database's commit rate, so requests
hand their rows to one writer thread per process; the thread writes whatever has queued up
since its last commit in one transaction, then wakes the requests it wrote. Under load a
commit carries hundreds of requests; alone, a request waits for one commit.
"""
from __future__ import annotations

import asyncio
import logging
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field

from sqlalchemy import insert

from . import audit
from .store import EvaluationRecord

log = logging.getLogger("riskrules.recorder")
MAX_ROWS_PER_COMMIT = 20_000


@dataclass
class Job:
    evaluations: list
    events: list
    future: Future = field(default_factory=Future)


class RecordingFailed(Exception):
    """The store did not take the records: the results they belong to must not be released."""


class Recorder:
    def __init__(self, store):
        self.store = store
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="riskrules-recorder", daemon=True)
        self._started = False

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    def stop(self) -> None:
        if self._started:
            self._queue.put(None)
            self._thread.join(timeout=30)
            self._started = False

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def submit(self, evaluations: list, events: list) -> Future:
        job = Job(evaluations, events)
        self._queue.put(job)
        return job.future

    async def record(self, evaluations: list, events: list) -> None:
        await asyncio.wrap_future(self.submit(evaluations, events))

    # ---- the writer thread -----------------------------------------------------------------
    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            jobs, rows = [job], len(job.evaluations) + len(job.events)
            while rows < MAX_ROWS_PER_COMMIT:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)       # stop after this commit
                    break
                jobs.append(more)
                rows += len(more.evaluations) + len(more.events)
            self._commit_all(jobs)

    def _commit_all(self, jobs: list) -> None:
        try:
            self._commit(jobs)
        except Exception as exc:  # noqa: BLE001 - reported to every waiting request
            if len(jobs) == 1:
                log.error("could not record: %s", exc)
                jobs[0].future.set_exception(RecordingFailed(str(exc)))
                return
            for j in jobs:              # one bad job must not fail the others
                self._commit_all([j])
            return
        for j in jobs:
            j.future.set_result(None)

    def _commit(self, jobs: list) -> None:
        evaluations = [r for j in jobs for r in j.evaluations]
        events = [e for j in jobs for e in j.events]
        with self.store.engine.begin() as conn:
            if evaluations:
                conn.execute(insert(EvaluationRecord.__table__), evaluations)
            audit.append(conn, events, postgres=self.store.is_postgres)

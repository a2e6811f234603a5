"""Group commit of evaluation records and audit events.

A result is released only after its evaluation record and its audit event are committed
(an evaluation response is a read of a result, and every read is on the trail). Committing
each request on its own would cap a worker at the database's commit rate, so requests queue
their rows and one commit takes everything queued meanwhile:

- `record()` (single requests): the first request of a group starts a commit; every request
  that queues while it runs goes into the next one. Where the commit runs depends on the store:
  - SQLite: on the event loop, after one turn of it (so the requests ready in that turn join).
    A commit there is local and short (about 150 µs alone, 40 µs a record in a group), and a
    thread cost more than it saved: its many short releases of the GIL made the loop thread
    and it trade places thousands of times a second (measured with wrk -c16, 2 workers:
    3,500 req/s at 470 µs of CPU each with the thread, 4,500 at 360 on the loop).
  - PostgreSQL: on a writer thread with its own connection, because a commit waits on round
    trips and on the other workers' lock on the chain's head. (On the loop a worker stood
    still whenever the other held the lock: 400 req/s with p99 500 ms against 1,000 req/s
    and p99 90 ms with the thread. psycopg's asyncio connection was tried too: it spent about
    200 µs of CPU a round trip against 70 for the blocking one, and lost at 8 connections.)
    A commit is two statements (audit.append_in_one_statement).
- `record_large()` (batch chunks): thousands of rows, committed in a worker thread on a pooled
  connection so the loop keeps serving while they are written. On SQLite a single-request
  commit waits for it (one writer at a time), as its requests would have waited anyway.
"""
from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from fastapi.concurrency import run_in_threadpool

from . import audit
from .problems import Problem
from .store import DedicatedWriter, EvaluationRecord, dbapi_cursor, insert_rows

log = logging.getLogger("riskrules.recorder")

MAX_GROUP = 500          # requests in one commit: a PostgreSQL statement takes at most 65,535 parameters


class RecordingFailed(Problem):
    """The store did not take the records: the results they belong to must not be released."""

    def __init__(self, cause: str):
        super().__init__("unavailable", "the result was not sent because it could not be recorded; "
                         "try again later", headers={"Retry-After": "5"})
        self.cause = cause


class Recorder:
    def __init__(self, store):
        self.store = store
        self.on_loop = not store.is_postgres    # where record() commits: see the module's docstring
        self._connection = DedicatedWriter(store)   # record()'s commits only
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="riskrules-recorder")
        self._pending: list = []            # (evaluations, events, future)
        self._flushing = False
        self.failures = 0

    async def record(self, evaluations: list, events: list) -> None:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((evaluations, events, future))
        if not self._flushing:
            self._flushing = True
            self._task = loop.create_task(self._flush())     # referenced, so it is not collected
        await future

    async def record_large(self, evaluations: list, events: list) -> None:
        try:
            await run_in_threadpool(self._commit_pooled, [(evaluations, events)])
        except Exception as exc:  # noqa: BLE001 - reported to the request
            self.failures += 1
            log.error("could not record: %s", exc)
            raise RecordingFailed(str(exc)) from exc

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                if self.on_loop:
                    await asyncio.sleep(0)      # one turn of the loop: the requests ready now join
                group, self._pending = self._pending[:MAX_GROUP], self._pending[MAX_GROUP:]
                if self.on_loop:
                    outcomes = self._commit_group(group)
                else:
                    outcomes = await loop.run_in_executor(self._writer, self._commit_group, group)
                _settle(group, outcomes)
        finally:
            self._flushing = False

    def _commit_group(self, group: list) -> list:
        """One commit for the group; if it fails, each job alone, so one bad job fails only itself.
        Returns an exception or None per job."""
        try:
            self.commit([(e, a) for e, a, _ in group])
            return [None] * len(group)
        except Exception:  # noqa: BLE001
            pass
        outcomes = []
        for evaluations, events, _ in group:
            try:
                self.commit([(evaluations, events)])
                outcomes.append(None)
            except Exception as exc:  # noqa: BLE001
                self.failures += 1
                log.error("could not record: %s", exc)
                outcomes.append(RecordingFailed(str(exc)))
        return outcomes

    def close(self) -> None:
        self._writer.shutdown(wait=True)
        self._connection.close()

    def commit(self, jobs: list) -> None:
        """One transaction for the jobs' evaluation records and audit events, on the recorder's
        own connection; on PostgreSQL in two statements (audit.append_in_one_statement)."""
        with self._connection.transaction() as conn:
            if not self.store.is_postgres:
                self._insert(conn.cursor(), jobs)
                return
            evaluations = [r for e, _ in jobs for r in e]
            audit.append_in_one_statement(conn.cursor(), [ev for _, a in jobs for ev in a],
                                          rows_before=((EvaluationRecord.__table__, evaluations),))

    def _commit_pooled(self, jobs: list) -> None:
        """The same on a connection of the pool, from any thread (batch chunks)."""
        with self.store.write() as conn:
            self._insert(dbapi_cursor(conn), jobs)

    def _insert(self, cursor, jobs: list) -> None:
        postgres = self.store.is_postgres
        # the records first: the chain's head stays locked from its read to the commit
        insert_rows(cursor, EvaluationRecord.__table__, [r for e, _ in jobs for r in e], postgres=postgres)
        audit.append(cursor, [ev for _, a in jobs for ev in a], postgres=postgres)


def _settle(group: list, outcomes: list) -> None:
    for (_, _, future), outcome in zip(group, outcomes):
        if future.done():                   # a request cancelled meanwhile has nobody to tell
            continue
        if outcome is None:
            future.set_result(None)
        else:
            future.set_exception(outcome)

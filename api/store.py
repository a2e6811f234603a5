"""The store: API keys, published policy versions, evaluation records, the audit log.

Tables are sqlmodel classes; the schema itself is made by the alembic migrations in
`alembic/versions/` (run by `Store.migrate()`, which start-up calls). SQLite and PostgreSQL
both work: SQLite runs in WAL mode and every write transaction begins IMMEDIATE, so appends
to the audit chain from several worker processes are serialised; PostgreSQL serialises them
with a row lock on `audit_head`.
"""
from __future__ import annotations

import datetime as dt
import fcntl
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

from sqlalchemy import event, func, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel, create_engine

ROOT = Path(__file__).resolve().parent.parent


def utcnow() -> str:
    """Timestamps are stored as ISO text so the audit hash reads back exactly on every database."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str
    role: str
    jurisdiction: str                       # a jurisdiction (weihai) or * for all
    key_hash: str = Field(unique=True)      # sha256 hex of the key; the key itself is never stored
    prefix: str                             # the key's first characters, to tell keys apart in lists
    created_at: str
    revoked_at: Optional[str] = None


class PublishedVersion(SQLModel, table=True):
    """A policy version published through the API. Rows are never updated or deleted."""
    __tablename__ = "published_versions"
    id: Optional[int] = Field(default=None, primary_key=True)
    policy_id: str = Field(index=True)
    jurisdiction: str
    version: str
    sha256: str = Field(unique=True)
    effective: str
    file: str
    source: str
    published_by: int
    published_at: str


class EvaluationRecord(SQLModel, table=True):
    __tablename__ = "evaluations"
    id: str = Field(primary_key=True)       # uuid4 hex; `<batch id>.<index>` in a batch
    batch_id: Optional[str] = Field(default=None, index=True)
    batch_index: Optional[int] = None
    caller_id: int
    jurisdiction: str
    policy_id: str
    policy_version: str
    policy_sha256: str
    as_of: str
    enterprise_id: Optional[str] = None
    input_sha256: str
    grade: Optional[str] = None             # None when the record was refused (`error` holds why)
    score: Optional[str] = None
    result: str                             # the response body's result (or error) as JSON
    result_sha256: str
    created_at: str


class AuditEntry(SQLModel, table=True):
    """One link of the hash chain: `hash` = sha256(prev_hash + canonical content of the row)."""
    __tablename__ = "audit_log"
    id: int = Field(primary_key=True)       # position in the chain, 1, 2, 3, … without gaps
    at: str
    actor_id: Optional[int] = None
    actor_name: str
    role: str
    action: str
    jurisdiction: str
    policy_id: Optional[str] = None
    policy_version: Optional[str] = None
    policy_sha256: Optional[str] = None
    detail: str                             # canonical JSON
    prev_hash: str
    hash: str


class AuditHead(SQLModel, table=True):
    """The chain's last link, updated in the same transaction as every append: deleting rows at
    the end of the log leaves the head pointing past them."""
    __tablename__ = "audit_head"
    id: int = Field(default=1, primary_key=True)
    last_id: int = 0
    last_hash: str


class ServiceState(SQLModel, table=True):
    """`reloads` goes up on every successful reload. Each worker watches it and the newest
    published version, and rebuilds its policy set when either moves, so every worker of a
    service serves the same versions."""
    __tablename__ = "service_state"
    id: int = Field(default=1, primary_key=True)
    reloads: int = 0


def marks(postgres: bool, n: int) -> str:
    return ", ".join(["%s" if postgres else "?"] * n)


def dbapi_cursor(conn):
    """The DB-API cursor of a SQLAlchemy connection, inside its transaction."""
    return conn.connection.cursor()


def insert_values(table, rows: list[dict], *, postgres: bool) -> tuple[str, list]:
    """One INSERT of all `rows` as a multi-row VALUES, and its flat parameter list."""
    columns = list(rows[0])
    one = f"({marks(postgres, len(columns))})"
    sql = f'INSERT INTO {table.name} ({", ".join(columns)}) VALUES {", ".join([one] * len(rows))}'   # our names
    return sql, [r[c] for r in rows for c in columns]


def insert_rows(cursor, table, rows: list[dict], *, postgres: bool) -> None:
    """Insert many rows with one DB-API executemany: SQLAlchemy's per-row statement building
    costs more than the database does on the evaluation path."""
    if not rows:
        return
    columns = list(rows[0])
    sql = f'INSERT INTO {table.name} ({", ".join(columns)}) VALUES ({marks(postgres, len(columns))})'  # our names
    cursor.executemany(sql, [tuple(r[c] for c in columns) for r in rows])


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn, _record):
            dbapi_conn.isolation_level = None   # we issue BEGIN ourselves, below
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            # No checkpoint inside a commit: with the commit on the event loop its fsync stalled
            # every request of the worker (the p99). The service's watcher thread checkpoints.
            cur.execute("PRAGMA wal_autocheckpoint=0")
            cur.execute("PRAGMA journal_size_limit=33554432")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("write", True)
                                 else "BEGIN")
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


class Store:
    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.is_postgres = self.engine.dialect.name == "postgresql"
        db_file = self.engine.url.database if self.engine.dialect.name == "sqlite" else None
        self._lock_path = f"{db_file}.lock" if db_file and db_file != ":memory:" else None
        self._thread_lock = threading.Lock()
        self._lock_file = None

    @contextmanager
    def write(self):
        """A write transaction (a SQLAlchemy connection)."""
        with self.write_lock(), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def write_lock(self):
        """On SQLite, writers of all processes queue on a file lock before they begin: SQLite's
        own busy wait sleeps up to 100 ms between tries, which would be the p99. On PostgreSQL
        nothing: its row locks order the writers."""
        if self._lock_path is None:
            yield
            return
        with self._thread_lock:
            if self._lock_file is None:
                self._lock_file = open(self._lock_path, "a")
            fcntl.flock(self._lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)

    def migrate(self) -> None:
        """Bring the schema to the newest migration (safe to call from several processes)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config(str(ROOT / "alembic.ini"))
        cfg.set_main_option("script_location", str(ROOT / "alembic"))
        with self.write() as conn:
            if self.is_postgres:
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(4242001)")
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def dispose(self) -> None:
        self.engine.dispose()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def reader(self):
        """A connection for reads (on SQLite it does not take the write lock)."""
        return self.engine.connect().execution_options(write=False)

    # ---- API keys ---------------------------------------------------------------------------
    def key_by_hash(self, key_hash: str) -> Optional[dict]:
        with self.reader() as conn:
            row = conn.execute(select(ApiKey.__table__).where(ApiKey.key_hash == key_hash)).mappings().first()
        return dict(row) if row else None

    def keys(self) -> list[dict]:
        with self.reader() as conn:
            return [dict(r) for r in conn.execute(select(ApiKey.__table__).order_by(ApiKey.id)).mappings()]

    # ---- published versions -----------------------------------------------------------------
    def published(self) -> list[dict]:
        with self.reader() as conn:
            return [dict(r) for r in conn.execute(select(PublishedVersion.__table__)
                                                  .order_by(PublishedVersion.id)).mappings()]

    # ---- evaluations ------------------------------------------------------------------------
    def evaluation(self, evaluation_id: str) -> Optional[dict]:
        with self.reader() as conn:
            row = conn.execute(select(EvaluationRecord.__table__)
                               .where(EvaluationRecord.id == evaluation_id)).mappings().first()
        return dict(row) if row else None

    def chunk_holding(self, batch_id: str, index: int) -> Optional[dict]:
        """The nearest record at or before answer `index` of a batch among those that hold a chunk's
        answers (`<batch id>.<first>-<last>`, api/evaluations.py), or None."""
        t = EvaluationRecord
        with self.reader() as conn:
            row = conn.execute(select(t.__table__).where(t.batch_id == batch_id, t.batch_index <= index,
                                                         t.id.like("%-%"))
                               .order_by(t.batch_index.desc()).limit(1)).mappings().first()
        return dict(row) if row else None

    # ---- what the workers watch --------------------------------------------------------------
    def generation(self) -> tuple[int, int]:
        """(reloads so far, id of the newest published version): a worker whose set was built
        from other numbers rebuilds it."""
        with self.reader() as conn:
            reloads = conn.execute(select(ServiceState.reloads).where(ServiceState.id == 1)).scalar_one()
            newest = conn.execute(select(func.max(PublishedVersion.id))).scalar_one()
        return reloads, newest or 0

    @staticmethod
    def count_reload(conn) -> None:
        conn.execute(update(ServiceState.__table__).where(ServiceState.id == 1)
                     .values(reloads=ServiceState.reloads + 1))

    def checkpoint(self) -> None:
        """Copy the SQLite write-ahead log into the database, without blocking writers."""
        if self.engine.dialect.name == "sqlite":
            raw = self.engine.raw_connection()      # outside any transaction, or SQLite skips it
            try:
                raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
            finally:
                raw.close()

    def ping(self) -> None:
        with self.reader() as conn:
            conn.exec_driver_sql("SELECT 1")


class DedicatedWriter:
    """A DB-API connection of the recorder's own, used by one thread at a time (the event loop's
    on SQLite, the recorder's writer thread on PostgreSQL).

    Every evaluation commits through here, so the path is the driver's alone: no pool checkout,
    no pre-ping, no SQLAlchemy statement machinery (measured on SQLite: 298 → 152 µs of CPU a
    commit of one evaluation). A transaction that fails drops the connection and the next one
    connects anew; the recorder retries a failed group request by request, so a lost
    connection costs a retry, not an answer.
    """

    def __init__(self, store: Store):
        self.store = store
        self._fairy = None

    @contextmanager
    def transaction(self):
        """Yields the driver connection inside a transaction; commits on exit."""
        with self.store.write_lock():
            conn = self._connection()
            try:
                if not self.store.is_postgres:
                    conn.execute("BEGIN IMMEDIATE")   # the connection is in autocommit mode (make_engine)
                yield conn
                conn.commit()
            except BaseException:
                self.close()
                raise

    def _connection(self):
        if self._fairy is None:
            self._fairy = self.store.engine.raw_connection()
        return self._fairy.driver_connection

    def close(self) -> None:
        if self._fairy is not None:
            fairy, self._fairy = self._fairy, None
            try:
                fairy.invalidate()      # closes the driver connection: an open transaction rolls back
            except Exception:  # noqa: BLE001 - it is being thrown away
                pass


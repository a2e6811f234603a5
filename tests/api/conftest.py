"""Fixtures of the service tests: a store on SQLite and on PostgreSQL, a running app, keys.

Every test module that takes `api` runs once per store. PostgreSQL tests use a schema of
their own per store (`rr_test_<random>`, dropped at the end), so parallel runs do not collide;
set RISKRULES_TEST_POSTGRES_URL to point them elsewhere than postgres@127.0.0.1:5432/test.
"""
from __future__ import annotations

import pytest

from _api_helpers import PG_URL, Databases, copy_tree, postgres_reachable, start

_PG_OK = None


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def databases(request, tmp_path_factory):
    global _PG_OK
    if request.param == "postgresql":
        if _PG_OK is None:
            _PG_OK = postgres_reachable()
        if not _PG_OK:
            pytest.skip(f"PostgreSQL is not reachable at {PG_URL} (start it: pg_ctlcluster … main start)")
    dbs = Databases(request.param, tmp_path_factory.mktemp(request.param))
    yield dbs
    dbs.drop_all()


@pytest.fixture(scope="module")
def api(databases, tmp_path_factory):
    """One service per test module and store; tests may add keys and records, never break it."""
    a = start(databases.new(), copy_tree(tmp_path_factory.mktemp("tree") / "policies"))
    yield a
    a.client.__exit__(None, None, None)


@pytest.fixture
def fresh(databases, tmp_path):
    """A service of its own (its own store and policy tree), for tests that change them."""
    started = []

    def make(**settings):
        a = start(databases.new(), copy_tree(tmp_path / f"policies{len(started)}"), **settings)
        started.append(a)
        return a
    yield make
    for a in started:
        a.client.__exit__(None, None, None)

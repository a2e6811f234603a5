"""Helpers of the service tests: stores on SQLite and PostgreSQL, a running app, keys."""

from __future__ import annotations

import os
import secrets
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

warnings.filterwarnings("ignore", message=".*httpx2.*")
from fastapi.testclient import TestClient  # noqa: E402

from api.keys import Caller, create_key  # noqa: E402
from api.main import create_app  # noqa: E402
from api.settings import Settings  # noqa: E402

HERE = Path(__file__).resolve().parent
POLICIES = HERE / "policies"
PG_URL = os.environ.get("RISKRULES_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TEST_ACTOR = Caller(None, "tests", "admin", "*")

WEIHAI = "weihai.food_production"
XINYU = "xinyu.general"
DAIRY_B = {"self_discipline": "一般", "inspection_issues": 1, "failed_samples": 0, "penalties": 1,
           "sales_channel": "经销", "traceability": True, "production_state": "正常生产",
           "product_category": "乳制品", "consumers": "一般人群"}


def postgres_reachable() -> bool:
    try:
        import psycopg
        with psycopg.connect(PG_URL.replace("postgresql+psycopg", "postgresql"), connect_timeout=3):
            return True
    except Exception:  # noqa: BLE001
        return False


class Databases:
    """Fresh, empty stores of one kind; all removed when the session ends."""

    def __init__(self, kind: str, tmp: Path):
        self.kind = kind
        self.tmp = tmp
        self.schemas: list[str] = []

    def new(self) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{self.tmp / (secrets.token_hex(6) + '.db')}"
        import psycopg
        schema = f"rr_test_{secrets.token_hex(6)}"
        with psycopg.connect(PG_URL.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        self.schemas.append(schema)
        return f"{PG_URL}?options=-csearch_path%3D{schema}"

    def drop_all(self) -> None:
        if not self.schemas:
            return
        import psycopg
        with psycopg.connect(PG_URL.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
            for schema in self.schemas:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")






@dataclass
class Api:
    """A running service, its client, and a key per kind of caller."""
    client: TestClient
    url: str
    tree: Path
    keys: dict = field(default_factory=dict)

    @property
    def service(self):
        return self.client.app.state.service

    def key(self, role: str, jurisdiction: str, name: str | None = None) -> str:
        """A key of that role and jurisdiction (made once, then reused)."""
        k = (role, jurisdiction, name)
        if k not in self.keys:
            _, self.keys[k] = create_key(self.service.store, name=name or f"{jurisdiction} {role}", role=role,
                                         jurisdiction=jurisdiction, actor=TEST_ACTOR)
        return self.keys[k]

    def as_(self, role: str, jurisdiction: str) -> dict:
        return {"Authorization": f"Bearer {self.key(role, jurisdiction)}"}

    def evaluate(self, policy_id: str, inputs: dict, headers: dict, **params):
        return self.client.post(f"/v1/policies/{policy_id}/evaluations", params=params,
                                json={"enterprise_id": "91371000MA3C000001", "inputs": inputs}, headers=headers)

    def publish(self, policy_id: str, text: str, headers: dict):
        return self.client.post(f"/v1/policies/{policy_id}/versions", content=text.encode(),
                                headers=dict(headers, **{"Content-Type": "text/plain"}))


def start(url: str, tree: Path, **settings) -> Api:
    options = dict(database_url=url, policies=(str(tree),), watch_seconds=0, key_cache_seconds=0)
    options.update(settings)
    client = TestClient(create_app(Settings(**options)), raise_server_exceptions=False)
    client.__enter__()
    return Api(client, url, tree)


def copy_tree(dest: Path) -> Path:
    shutil.copytree(POLICIES, dest)
    return dest








def problem_of(response, status: int, slug: str) -> dict:
    """Assert an RFC 9457 problem with this status and type; return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body = response.json()
    assert body["status"] == status
    assert body["type"] == f"https://riskrules.dev/problems/{slug}", body
    assert body["title"] and body["detail"] and body["instance"]
    return body

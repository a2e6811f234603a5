"""Service settings, read once from the environment (`riskrules serve` sets them from its options).

| variable                       | default           | meaning                                        |
|--------------------------------|-------------------|------------------------------------------------|
| RISKRULES_DATABASE_URL / DATABASE_URL | sqlite:///riskrules.db | the store (SQLite file or PostgreSQL)   |
| RISKRULES_POLICIES             | policies          | the policy tree compiled at start-up           |
| RISKRULES_MAX_BODY_BYTES       | 1 MiB             | body limit of every endpoint but the batch one |
| RISKRULES_MAX_BATCH_BYTES      | 256 MiB           | body limit of the batch endpoint               |
| RISKRULES_MAX_BATCH_RECORDS    | 1,000,000         | records in one batch                           |
| RISKRULES_KEY_CACHE_SECONDS    | 5                 | how long a checked API key is trusted without asking the store (a revoked key stops working after at most this long) |
| RISKRULES_WATCH_SECONDS        | 1                 | how often a worker looks for versions published or reloads made through another worker |
| RISKRULES_TELEMETRY            | 0                 | 1: FastAPI's OpenTelemetry traces, metrics and logs, exported to the providers the process configures (off by default: looking for a provider costs about 60 µs a request) |
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace

DEFAULT_DATABASE_URL = "sqlite:///riskrules.db"


def database_url_from_env() -> str:
    return os.environ.get("RISKRULES_DATABASE_URL") or os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    policies: tuple[str, ...] = ("policies",)
    max_body_bytes: int = 1 << 20
    max_batch_bytes: int = 256 << 20
    max_batch_records: int = 1_000_000
    key_cache_seconds: float = 5.0
    watch_seconds: float = 1.0
    telemetry: bool = False

    @classmethod
    def from_env(cls) -> "Settings":
        env = os.environ
        d = cls()
        return cls(
            database_url=database_url_from_env(),
            policies=tuple(p for p in env.get("RISKRULES_POLICIES", "policies").split(os.pathsep) if p),
            max_body_bytes=int(env.get("RISKRULES_MAX_BODY_BYTES", d.max_body_bytes)),
            max_batch_bytes=int(env.get("RISKRULES_MAX_BATCH_BYTES", d.max_batch_bytes)),
            max_batch_records=int(env.get("RISKRULES_MAX_BATCH_RECORDS", d.max_batch_records)),
            key_cache_seconds=float(env.get("RISKRULES_KEY_CACHE_SECONDS", d.key_cache_seconds)),
            watch_seconds=float(env.get("RISKRULES_WATCH_SECONDS", d.watch_seconds)),
            telemetry=env.get("RISKRULES_TELEMETRY", "0").strip().lower() in ("1", "true", "yes", "on"),
        )

    def with_(self, **changes) -> "Settings":
        return replace(self, **changes)

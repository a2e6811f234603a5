"""The store's first schema: API keys, published versions, evaluations, the audit chain.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

GENESIS = "0" * 64


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("role", sa.String, nullable=False),
        sa.Column("jurisdiction", sa.String, nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String, nullable=False),
        sa.Column("created_at", sa.String, nullable=False),
        sa.Column("revoked_at", sa.String, nullable=True),
    )
    op.create_table(
        "published_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("policy_id", sa.String, nullable=False, index=True),
        sa.Column("jurisdiction", sa.String, nullable=False),
        sa.Column("version", sa.String, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("effective", sa.String, nullable=False),
        sa.Column("file", sa.String, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("published_by", sa.Integer, nullable=False),
        sa.Column("published_at", sa.String, nullable=False),
        sa.UniqueConstraint("policy_id", "version", name="uq_published_policy_version"),
    )
    op.create_table(
        "evaluations",
        sa.Column("id", sa.String(48), primary_key=True),
        sa.Column("batch_id", sa.String(32), nullable=True, index=True),
        sa.Column("batch_index", sa.Integer, nullable=True),
        sa.Column("caller_id", sa.Integer, nullable=False),
        sa.Column("jurisdiction", sa.String, nullable=False),
        sa.Column("policy_id", sa.String, nullable=False),
        sa.Column("policy_version", sa.String, nullable=False),
        sa.Column("policy_sha256", sa.String(64), nullable=False),
        sa.Column("as_of", sa.String, nullable=False),
        sa.Column("enterprise_id", sa.String, nullable=True),
        sa.Column("input_sha256", sa.String(64), nullable=False),
        sa.Column("grade", sa.String, nullable=True),
        sa.Column("score", sa.String, nullable=True),
        sa.Column("result", sa.Text, nullable=False),
        sa.Column("result_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String, nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("at", sa.String, nullable=False),
        sa.Column("actor_id", sa.Integer, nullable=True),
        sa.Column("actor_name", sa.String, nullable=False),
        sa.Column("role", sa.String, nullable=False),
        sa.Column("action", sa.String, nullable=False),
        sa.Column("jurisdiction", sa.String, nullable=False),
        sa.Column("policy_id", sa.String, nullable=True),
        sa.Column("policy_version", sa.String, nullable=True),
        sa.Column("policy_sha256", sa.String(64), nullable=True),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_log_jurisdiction_id", "audit_log", ["jurisdiction", "id"])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("last_id", sa.Integer, nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
    )
    state = op.create_table(
        "service_state",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("reloads", sa.Integer, nullable=False),
    )
    op.bulk_insert(head, [{"id": 1, "last_id": 0, "last_hash": GENESIS}])
    op.bulk_insert(state, [{"id": 1, "reloads": 0}])


def downgrade() -> None:
    for table in ("service_state", "audit_head", "audit_log", "evaluations", "published_versions", "api_keys"):
        op.drop_table(table)

"""Alembic environment: use the connection the service hands over (Store.migrate), or open
one from RISKRULES_DATABASE_URL / DATABASE_URL when run as `alembic upgrade head`."""
from alembic import context

from api.settings import database_url_from_env
from api.store import make_engine

target_metadata = None


def run_migrations_online() -> None:
    conn = context.config.attributes.get("connection")
    if conn is not None:
        context.configure(connection=conn, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(database_url_from_env())
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported: run against a database")
run_migrations_online()

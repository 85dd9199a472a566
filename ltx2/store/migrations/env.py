"""Alembic environment: the URL comes from the caller (ltx2.store.jobs.migrate), the schema from models."""

from alembic import context

from ltx2.store.jobs import make_engine
from ltx2.store.models import Base

engine = make_engine(context.config.get_main_option("sqlalchemy.url"))
try:
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
finally:
    engine.dispose()

"""Persistence: SQLAlchemy models, the async engine, Alembic migrations, keys and the outbox."""

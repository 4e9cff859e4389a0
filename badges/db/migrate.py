"""Make the database and run Alembic migrations from code (`python -m badges.db.migrate`), as
`make dev`, the benchmarks and tests do."""

from __future__ import annotations

import sys
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def create_database(admin_uri: str, name: str) -> bool:
    """Create database `name` on the server `admin_uri` (a libpq URI) reaches, unless it exists.
    Returns whether it was created."""
    import psycopg

    with psycopg.connect(admin_uri, autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{name}"')
    return not exists


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def main() -> None:
    from badges.config import Settings

    settings = Settings()  # type: ignore[call-arg]
    upgrade(settings.database_url, sys.argv[1] if len(sys.argv) > 1 else "head")


if __name__ == "__main__":
    main()

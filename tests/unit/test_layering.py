"""The two layering rules that import-linter cannot state (it sees a package, not its modules'
strings or another package's submodules); `make lint` runs this file beside `lint-imports`.

- All SQL lives in `badges/db/`: walks every module of the package outside `badges/db/` (its
  migrations included there) and fails on string constants that read as SQL and on imports of
  query constructs (SQLAlchemy's `select`, `insert`, `update`, `delete`, `text`, ...; psycopg's
  `sql`). Passing an engine or a pool around is fine: `AsyncEngine` and `AsyncConnectionPool`
  are not query constructs.
- Only `badges/temporal/` imports `temporalio.client`: every start, signal, update, query and
  termination goes through its named functions.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import badges

PACKAGE = Path(badges.__file__).parent
DB = PACKAGE / "db"

# A statement's opening words, upper case as every statement here is written (so prose such as
# "Select a badge" or an HTTP method name alone is not mistaken for SQL).
SQL_START = re.compile(
    r"""^\s*(
        SELECT\s+\S
      | INSERT\s+INTO\b
      | UPDATE\s+\w+(\s+(AS\s+)?\w+)?\s+SET\b
      | DELETE\s+FROM\b
      | WITH\s+\w+\s+AS\s*\(
      | (CREATE|ALTER|DROP)\s+(TABLE|DATABASE|INDEX|UNIQUE|SCHEMA|EXTENSION|TRIGGER|FUNCTION|OR\s+REPLACE)\b
      | TRUNCATE\s+\w
      | (LISTEN|NOTIFY)\s
    )""",
    re.VERBOSE,
)
QUERY_CONSTRUCTS = {
    "select",
    "insert",
    "update",
    "delete",
    "text",
    "func",
    "literal_column",
    "column",
    "table",
    "and_",
    "or_",
    "exists",
    "distinct_on",
}


def modules_outside(folder: str, root: Path = PACKAGE) -> Iterator[Path]:
    for path in sorted(root.rglob("*.py")):
        if (root / folder) not in path.parents:
            yield path


def sql_strings(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL_START.match(node.value):
            yield node.lineno, node.value.strip().splitlines()[0][:60]


def query_imports(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] == "sqlalchemy":
                for alias in node.names:
                    if alias.name in QUERY_CONSTRUCTS:
                        yield node.lineno, f"from {node.module} import {alias.name}"
            if node.module.split(".")[0] == "psycopg" and any(alias.name == "sql" for alias in node.names):
                yield node.lineno, f"from {node.module} import sql"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in ("sqlalchemy", "psycopg.sql") or alias.name.startswith("sqlalchemy.sql"):
                    yield node.lineno, f"import {alias.name}"


def violations(root: Path = PACKAGE) -> list[str]:
    found = []
    for path in modules_outside("db", root):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        where = path.relative_to(root.parent)
        found += [f"{where}:{line}: SQL string {text!r}" for line, text in sql_strings(tree)]
        found += [f"{where}:{line}: {text}" for line, text in query_imports(tree)]
    return found


def test_no_sql_outside_db() -> None:
    found = violations()
    assert not found, "SQL belongs in badges/db/ (one module per aggregate):\n" + "\n".join(found)


def test_the_check_sees_sql() -> None:
    source = '''
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from psycopg import sql
READ = "SELECT id, kind FROM outbox WHERE id > %s"
UPSERT = """
INSERT INTO consents (user_id) VALUES (%s)
"""
MARK = "UPDATE event_receipts AS receipt SET signalled_at = now()"
LISTEN = f"LISTEN {CHANNEL}"
'''
    tree = ast.parse(source)
    assert len(list(sql_strings(tree))) == 4
    assert len(list(query_imports(tree))) == 3


def test_the_check_leaves_prose_alone() -> None:
    source = '''
"""`DELETE /v1/me`: the member's erasure. Select a badge, update the page."""
METHOD = "DELETE"
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.exc import OperationalError
'''
    tree = ast.parse(source)
    assert not list(sql_strings(tree))
    assert not list(query_imports(tree))


def client_imports(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "temporalio.client" or node.module.startswith("temporalio.client."):
                yield node.lineno, f"from {node.module} import ..."
            if node.module == "temporalio" and any(alias.name == "client" for alias in node.names):
                yield node.lineno, "from temporalio import client"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "temporalio.client" or alias.name.startswith("temporalio.client."):
                    yield node.lineno, f"import {alias.name}"


def test_only_the_temporal_package_imports_the_client() -> None:
    found = []
    for path in modules_outside("temporal"):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        where = path.relative_to(PACKAGE.parent)
        found += [f"{where}:{line}: {text}" for line, text in client_imports(tree)]
    assert not found, "Temporal is called through badges/temporal/ (its named functions):\n" + "\n".join(found)


def test_the_check_sees_client_imports() -> None:
    source = """
from temporalio.client import Client
from temporalio import client, workflow
import temporalio.client
from temporalio import activity
from temporalio.common import RetryPolicy
"""
    assert len(list(client_imports(ast.parse(source)))) == 3

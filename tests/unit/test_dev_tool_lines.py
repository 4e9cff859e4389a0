"""What `make dev` prints for the command-line tools: the database URL, and commands that run from
the venv with the environment they need, secrets read from their file rather than printed."""

from __future__ import annotations

from pathlib import Path

from badges.cli.dev import tool_lines


def test_the_tools_block_names_the_database_and_the_environment_the_tools_need() -> None:
    env = {
        "DATABASE_URL": "postgresql://badges@127.0.0.1:5433/badges",
        "BADGES_MASTER_KEYS_FILE": "/data dir/master-keys",
        "BADGES_AUDIT_CHECKPOINT_DIR": "/data dir/audit-checkpoints",
        "BADGES_JWT_SECRET": "not-printed",
        "BADGES_AUDIT_ANCHOR_KEYS": "local1:not-printed",
    }
    lines = tool_lines(env, Path("/data dir"), ".venv/bin/python")
    text = "\n".join(lines)
    assert lines[0] == "Database   postgresql://badges@127.0.0.1:5433/badges"
    assert "  set -a; . '/data dir/secrets.env'; set +a" in lines
    assert (
        "  export DATABASE_URL=postgresql://badges@127.0.0.1:5433/badges"
        " BADGES_MASTER_KEYS_FILE='/data dir/master-keys' BADGES_AUDIT_CHECKPOINT_DIR='/data dir/audit-checkpoints'"
    ) in lines
    assert "  .venv/bin/python -m badges.cli.audit verify" in lines
    assert "  .venv/bin/python -m badges.cli.keys status" in lines
    assert "not-printed" not in text


def test_a_master_key_list_given_by_the_user_is_not_repeated() -> None:
    env = {"DATABASE_URL": "postgresql://db/badges", "BADGES_AUDIT_CHECKPOINT_DIR": "/d/a"}
    assert "  export DATABASE_URL=postgresql://db/badges BADGES_AUDIT_CHECKPOINT_DIR=/d/a" in tool_lines(
        env, Path("/d"), "python"
    )

"""Every command and code snippet in README.md and docs/ runs against a running system and gives the
answers it documents (docs/operations.md, "How the docs are tested").

Each document's runnable blocks run in order in one bash shell (`set -e -o pipefail`, and `set -a`
so the Python blocks see the shell's variables, as `TOKEN=$TOKEN .venv/bin/python …` would give
them), in a scratch folder holding `.venv` (this venv). The shell starts with the environment
`make dev` prints for the command-line tools (the settings, the database URL, the master keys).
The snippets speak to make dev's addresses; the test points them at its own stack by rewriting
`localhost:8000` (the API) and `localhost:8100`/`8101`/`8102` (the sandbox banks) in the text."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import secrets
import signal
import sys
from pathlib import Path

import pytest

from badges.config import Settings
from tests.conftest import Sandbox
from tests.snippets import ROOT, Block, blocks, documents, unmatched

pytestmark = pytest.mark.usefixtures("worker")

RUNNABLE_DOCUMENTS = [path for path in documents() if any(block.runs for block in blocks(path))]
DONE = "@@done@@"
MARKER = re.compile(r"^@@block (\d+)@@$", re.MULTILINE)
SECONDS_PER_DOCUMENT = 180


def addresses(api_url: str, plaid: str, truelayer: str, yodlee: str) -> dict[str, str]:
    """make dev's addresses, and this stack's."""
    host = lambda url: url.removeprefix("http://")  # noqa: E731
    return {
        "localhost:8000": host(api_url),
        "localhost:8100": host(plaid),
        "localhost:8101": host(truelayer),
        "localhost:8102": host(yodlee),
    }


def script(runnable: list[Block], folder: Path, rewrite: dict[str, str]) -> str:
    lines = ["set -a -e -o pipefail"]
    for number, block in enumerate(runnable, 1):
        text = block.text
        for address, ours in rewrite.items():
            text = text.replace(address, ours)
        lines.append(f"printf '\\n@@block {number}@@\\n'")
        if block.language == "python":
            (folder / f"block-{number}.py").write_text(text)
            lines.append(f'"$SNIPPET_PYTHON" ./block-{number}.py')
        else:
            (folder / f"block-{number}.sh").write_text(text)
            lines.append(f". ./block-{number}.sh")
    lines.append(f"printf '\\n{DONE}\\n'")
    return "\n".join(lines) + "\n"


async def run(document: Path, folder: Path, environment: dict[str, str], rewrite: dict[str, str]) -> None:
    runnable = [block for block in blocks(document) if block.runs]
    (folder / ".venv").symlink_to(sys.prefix)
    (folder / "run.sh").write_text(script(runnable, folder, rewrite))
    output_file = folder / "output.txt"
    with output_file.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            "bash", "./run.sh", cwd=folder, env=environment, stdout=output, stderr=output, start_new_session=True
        )
        try:
            await asyncio.wait_for(process.wait(), SECONDS_PER_DOCUMENT)
        except TimeoutError:
            pass
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # the shell, and anything a block left in the background
            await process.wait()
    output = output_file.read_text(errors="replace")
    parts = MARKER.split(output)  # ["", "1", out1, "2", out2, ...]
    outputs = {int(parts[index]): parts[index + 1] for index in range(1, len(parts) - 1, 2)}
    finished = DONE in output
    for number, block in enumerate(runnable, 1):
        said = outputs.get(number, "").replace(DONE, "")
        if number not in outputs:
            pytest.fail(f"{block.where}: never ran")
        if not finished and number == max(outputs):
            pytest.fail(f"{block.where}: failed (exit {process.returncode}):\n{said[-4000:]}")
        missing = unmatched(block.expected(), said)
        if missing is not None:
            pytest.fail(f"{block.where}: the output does not show `{missing}`:\n{said[-4000:]}")
    assert finished


@pytest.mark.parametrize("document", RUNNABLE_DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
async def test_the_snippets_run_and_answer_as_documented(
    document: Path,
    tmp_path: Path,
    system_settings: Settings,
    api_url: str,
    sandbox_bank: Sandbox,
    truelayer_bank: str,
    yodlee_bank: str,
) -> None:
    settings = system_settings.model_dump(by_alias=True)
    environment = {
        **os.environ,
        # What make dev's tools lines give a shell: every setting the system runs with.
        **{name: str(value) for name, value in settings.items() if value is not None},
        "BADGES_AUDIT_CHECKPOINT_DIR": str(tmp_path / "audit-checkpoints"),
        # make dev keeps an anchoring key for the audit log in .data/secrets.env.
        "BADGES_AUDIT_ANCHOR_KEYS": "docs1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "SNIPPET_PYTHON": sys.executable,
    }
    environment.pop("BADGES_MASTER_KEYS_FILE", None)
    rewrite = addresses(api_url, sandbox_bank.url, truelayer_bank, yodlee_bank)
    await run(document, tmp_path, environment, rewrite)

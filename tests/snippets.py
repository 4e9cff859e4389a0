"""The fenced code blocks of README.md and docs/, as the snippet tests read them (docs/operations.md,
"How the docs are tested").

- A block whose info string is `sh`, `bash` or `python` is run; any other (`json`, `text`, none) is
  an illustration and is not.
- A runnable block is not run when the line just above it is `<!-- no-run: <why> -->`; the reason
  is required.
- `# → <text>` (a comment at the end of a line, or a line of its own) is a documented answer: the
  block's output must hold each, in order. Whitespace is ignored on both sides and `…` stands for
  anything, so `# → {"status": "accepted", "id": "calc-1"}` matches `{"status":"accepted","id":"calc-1"}`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNNABLE = {"sh": "sh", "bash": "sh", "python": "python"}
NO_RUN = re.compile(r"^<!--\s*no-run:\s*(?P<reason>.*?)\s*-->\s*$")
FENCE = re.compile(r"^(?P<fence>```+)(?P<info>[^`]*)$")
EXPECTED = re.compile(r"#\s*→\s*(?P<text>.+?)\s*$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    info: str
    text: str
    no_run: str | None  # the reason, when marked

    @property
    def language(self) -> str | None:
        words = self.info.split()
        return RUNNABLE.get(words[0]) if words else None

    @property
    def runs(self) -> bool:
        return self.language is not None and self.no_run is None

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    def expected(self) -> list[str]:
        return [match["text"] for line in self.text.splitlines() if (match := EXPECTED.search(line))]


def documents() -> list[Path]:
    """README.md and every Markdown file under docs/."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks(path: Path) -> list[Block]:
    found: list[Block] = []
    lines = path.read_text().splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        start, fence = index, opening["fence"]
        index += 1
        body: list[str] = []
        while index < len(lines) and lines[index] != fence:
            body.append(lines[index])
            index += 1
        above = lines[start - 1] if start > 0 else ""
        mark = NO_RUN.match(above)
        found.append(Block(path, start + 1, opening["info"].strip(), "\n".join(body) + "\n", mark and mark["reason"]))
        index += 1
    return found


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def unmatched(expected: list[str], output: str) -> str | None:
    """The first documented answer the output does not hold (each after the one before), or None."""
    output = _squeeze(output)
    position = 0
    for text in expected:
        pattern = ".*?".join(re.escape(part) for part in _squeeze(text).split("…"))
        match = re.compile(pattern, re.DOTALL).search(output, position)
        if match is None:
            return text
        position = match.end()
    return None

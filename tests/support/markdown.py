"""The documentation as the docs tests read it: README.md and docs/*.md, their fenced code blocks, and their
prose with the code blanked out."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

DOCS = ROOT / "docs"

MARKDOWN = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence
    language: str
    code: str

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def fenced_blocks(path: Path) -> Iterator[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    opening: tuple[int, str] | None = None
    body: list[str] = []
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if opening is None and stripped.startswith("```"):
            opening, body = (number, stripped[3:].strip()), []
        elif opening is not None and stripped == "```":
            yield Block(path, opening[0], opening[1], "\n".join(body) + "\n")
            opening = None
        elif opening is not None:
            body.append(line)
    assert opening is None, f"{path.name}:{opening[0]}: unclosed code block"


def prose(path: Path, *, inline_code: bool = False) -> str:
    """The Markdown text with code blocks (and inline code, unless asked to keep it) blanked out."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"^```.*?^```", lambda m: "\n" * m.group().count("\n"), text, flags=re.M | re.S)
    return text if inline_code else re.sub(r"`[^`\n]*`", "", text)


PYTHON_BLOCKS = [block for path in MARKDOWN for block in fenced_blocks(path) if block.language == "python"]

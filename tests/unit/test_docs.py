"""The documentation stays true: examples run, links resolve, generated parts are current.

- Every ```python block of README.md and docs/*.md runs as a program of its own (a fresh interpreter,
  warnings as errors, bounded in time) and must exit cleanly; they start their own hubs on free ports.
- Every relative link in README.md and docs/*.md points to an existing file, and an `#anchor` into a
  Markdown file to one of its headings.
- The settings table of docs/configuration.md equals the one generated from `Settings`
  (regenerate: `python docs/settings_table.py`).
- The module diagram of docs/architecture.md has exactly the arrows the package's imports make.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PACKAGE = ROOT / "metricstream"
MARKDOWN = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
EXAMPLE_TIMEOUT = 40.0  # seconds for one example; the slowest takes about one


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


# --- examples ------------------------------------------------------------------------------------

PYTHON_BLOCKS = [block for path in MARKDOWN for block in fenced_blocks(path) if block.language == "python"]


def test_the_docs_have_python_examples() -> None:
    assert any(block.path.name == "python-api.md" for block in PYTHON_BLOCKS)


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=[block.name for block in PYTHON_BLOCKS])
def test_python_example_runs(block: Block, tmp_path: Path) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("METRICSTREAM_")}
    try:
        done = subprocess.run(
            [sys.executable, "-W", "error", "-c", block.code],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=EXAMPLE_TIMEOUT,
        )
    except subprocess.TimeoutExpired as expired:
        pytest.fail(f"{block.name} did not finish within {EXAMPLE_TIMEOUT} s; output:\n{expired.stdout!r}")
    assert done.returncode == 0, f"{block.name} failed:\n{done.stdout}\n{done.stderr}"


# --- links ---------------------------------------------------------------------------------------

_INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.M)
_EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # http:, https:, mailto:, ...


def heading_anchors(path: Path) -> set[str]:
    """GitHub's anchors for the headings of a Markdown file."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    for line in prose(path, inline_code=True).splitlines():
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match is None:
            continue
        slug = re.sub(r"[^\w\- ]", "", match.group(1).lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def test_relative_links_resolve() -> None:
    broken = []
    for path in MARKDOWN:
        text = prose(path)
        for target in _INLINE_LINK.findall(text) + _REFERENCE.findall(text):
            if _EXTERNAL.match(target):
                continue
            file, _, anchor = target.partition("#")
            resolved = (path.parent / file).resolve() if file else path
            where = f"{path.relative_to(ROOT)}: {target}"
            if not resolved.exists():
                broken.append(f"{where} (no such file)")
            elif anchor and resolved.suffix == ".md" and anchor not in heading_anchors(resolved):
                broken.append(f"{where} (no such heading)")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_readme_links_every_doc() -> None:
    readme = prose(ROOT / "README.md")
    missing = [path.name for path in DOCS.glob("*.md") if f"(docs/{path.name})" not in readme]
    assert not missing, f"README.md does not link {missing}"


# --- generated and checked parts -----------------------------------------------------------------


def test_settings_table_is_current() -> None:
    spec = importlib.util.spec_from_file_location("settings_table", DOCS / "settings_table.py")
    assert spec is not None
    assert spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    committed = generator.committed_table((DOCS / "configuration.md").read_text(encoding="utf-8"))
    assert committed == generator.render_table(), (
        "docs/configuration.md is stale: run `python docs/settings_table.py`"
    )


Edge = tuple[str, str, str]  # (importer, imported, "-->" at module level or "-.->" inside a function)


def test_the_error_tree_in_the_python_docs_names_every_error() -> None:
    import metricstream
    from metricstream.errors import MetricStreamError

    exported = {
        name
        for name in metricstream.__all__
        if isinstance(getattr(metricstream, name), type)
        and issubclass(getattr(metricstream, name), MetricStreamError)
    }
    text = (DOCS / "python-api.md").read_text(encoding="utf-8")
    tree = text[text.index("MetricStreamError\n├──") :].split("```")[0]
    assert {line.split()[1] for line in tree.splitlines() if line[:1] in "├└"} == exported - {
        "MetricStreamError"
    }


def test_the_public_surface_is_one_sorted_all_that_resolves() -> None:
    """As httpx's test_exported_members: every public name is in `__all__`, sorted, and importable."""
    import metricstream

    assert metricstream.__all__ == sorted(metricstream.__all__)
    assert dir(metricstream) == sorted(metricstream.__all__)
    for name in metricstream.__all__:
        value = getattr(metricstream, name)
        module = getattr(value, "__module__", "metricstream")
        assert module.startswith("metricstream"), f"{name} comes from {module}"


@pytest.mark.parametrize(
    ("path", "said"),
    [
        # what a reader missed in the docs before (issue 20, point 13)
        ("docs/python-api.md", "`metric_reading_created`, `metric_deleted`"),
        ("docs/python-api.md", "`input_frequency` is a period: the seconds expected between two readings"),
        ("docs/security.md", "when it listens beyond loopback"),
        ("docs/configuration.md", "**`--quiet`** prints nothing at start"),
        ("README.md", "127.0.0.1:8000, so give `--bind 127.0.0.1:8089`"),
        ("notebooks/README.md", "`pip install -e '.[notebook]' jupyterlab`"),
    ],
)
def test_the_docs_say_what_readers_asked(path: str, said: str) -> None:
    assert said in " ".join((ROOT / path).read_text(encoding="utf-8").split()), (
        f"{path} does not say {said!r}"
    )

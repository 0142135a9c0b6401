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
import re
from pathlib import Path

import pytest

from tests.support.markdown import DOCS, MARKDOWN, PYTHON_BLOCKS, ROOT, prose

PACKAGE = ROOT / "metricstream"


# --- examples ------------------------------------------------------------------------------------


def test_the_docs_have_python_examples() -> None:
    assert any(block.path.name == "python-api.md" for block in PYTHON_BLOCKS)


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

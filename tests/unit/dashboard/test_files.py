"""The dashboard's files as `read_dashboard_files` serves them: each module's relative imports pinned to the
hash of the module they name, so every asset can be cached for good and a new module is never run with an
old one. (Served over HTTP, in a browser: tests/e2e/test_dashboard.py.)"""

from __future__ import annotations

import importlib.resources
import re
from pathlib import Path

import pytest

from metricstream.dashboard import dashboard_files, read_dashboard_files

PINNED = re.compile(r'^(?:import|export)\b[^;]*?"\./([\w.-]+\.js)\?v=([0-9a-f]+)"', re.M)


def copy_of_the_dashboard(folder: Path) -> Path:
    source = importlib.resources.files("metricstream.dashboard")
    for entry in source.iterdir():
        if entry.name.endswith((".js", ".css", ".html")):
            (folder / entry.name).write_bytes(entry.read_bytes())
    return folder


def importers(files: dict[str, str], module: str) -> set[str]:
    """The modules that import `module`, directly or not, as `files` (name -> body) pin them."""
    found: set[str] = set()
    waiting = [module]
    while waiting:
        target = waiting.pop()
        for name, body in files.items():
            if name not in found and target in {imported for imported, _ in PINNED.findall(body)}:
                found.add(name)
                waiting.append(name)
    return found


def test_every_import_names_the_current_hash_of_its_module() -> None:
    files = dashboard_files()
    pins = {name: PINNED.findall(file.body.decode()) for name, file in files.items() if name.endswith(".js")}
    assert pins["main.js"], "main.js imports nothing?"
    for name, imports in pins.items():
        for imported, version in imports:
            assert version == files[imported].etag, (name, imported)
    page = files["index.html"].body.decode()
    assert f'src="dashboard/main.js?v={files["main.js"].etag}"' in page
    assert f'href="dashboard/dashboard.css?v={files["dashboard.css"].etag}"' in page


def test_a_changed_module_changes_the_url_of_every_module_that_imports_it(tmp_path: Path) -> None:
    folder = copy_of_the_dashboard(tmp_path)
    before = read_dashboard_files(folder)
    with (folder / "format.js").open("a", encoding="utf-8") as module:
        module.write("// a new version\n")
    after = read_dashboard_files(folder)

    bodies = {name: file.body.decode() for name, file in after.items() if name.endswith(".js")}
    expected = {"format.js", *importers(bodies, "format.js"), "index.html"}
    changed = {name for name in after if after[name].etag != before[name].etag}
    assert changed == expected
    assert {"chart.js", "card.js", "main.js"} <= changed  # directly and not
    assert "colors.js" not in changed  # a module that imports nothing changed keeps its URL
    for name in expected - {"format.js", "index.html"}:
        before_pins = dict(PINNED.findall(before[name].body.decode()))
        after_pins = dict(PINNED.findall(bodies[name]))
        assert before_pins.keys() == after_pins.keys()
        for imported, version in after_pins.items():
            assert version == after[imported].etag
            assert (version != before_pins[imported]) == (imported in changed), (name, imported)


def test_imports_of_every_form_are_pinned_and_nothing_else(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text('<script type="module" src="dashboard/main.js"></script>')
    (tmp_path / "a.js").write_text("export const a = 1;\n")
    (tmp_path / "b.js").write_text("export const b = 2;\n")
    (tmp_path / "main.js").write_text(
        'import "./a.js";\n'
        "import {\n  b,\n} from './b.js';\n"
        'export * from "./a.js";\n'
        'export const path = "./a.js";\n'  # a declaration, not an import
        '// import { a } from "./nothing.js";\n'
        'const later = import("./b.js");\n'  # a dynamic import: not pinned (the dashboard makes none)
    )
    files = read_dashboard_files(tmp_path)
    a, b = files["a.js"].etag, files["b.js"].etag
    assert files["main.js"].body.decode() == (
        f'import "./a.js?v={a}";\n'
        f"import {{\n  b,\n}} from './b.js?v={b}';\n"
        f'export * from "./a.js?v={a}";\n'
        'export const path = "./a.js";\n'
        '// import { a } from "./nothing.js";\n'
        'const later = import("./b.js");\n'
    )
    assert files["index.html"].body.decode() == (
        f'<script type="module" src="dashboard/main.js?v={files["main.js"].etag}"></script>'
    )


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ('import { b } from "./b.js";', r"modules import each other in a cycle: a\.js -> b\.js -> a\.js"),
        (
            'import { x } from "./nothing.js";',
            r"a\.js imports './nothing\.js': not \./<name>\.js of its folder",
        ),
        ('import { x } from "../app.js";', r"a\.js imports '\.\./app\.js'"),
        ('import { x } from "lodash";', r"a\.js imports 'lodash'"),
        ('import "./dashboard.css";', r"a\.js imports '\./dashboard\.css'"),
    ],
    ids=["cycle", "missing", "outside", "bare", "not a module"],
)
def test_an_import_the_pins_cannot_serve_is_refused(tmp_path: Path, source: str, error: str) -> None:
    (tmp_path / "index.html").write_text("")
    (tmp_path / "dashboard.css").write_text("")
    (tmp_path / "a.js").write_text(source)
    (tmp_path / "b.js").write_text('import { a } from "./a.js";')
    with pytest.raises(ValueError, match=error):
        read_dashboard_files(tmp_path)

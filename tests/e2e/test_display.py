"""`Hub.show()` (display.py): the dashboard framed in a notebook cell, or its URL printed elsewhere.

The notebook is a fake IPython in `sys.modules`: a shell with a `kernel` and IPython's `events`, and a
`display` that records what it is given. notebooks/quickstart.ipynb shows it in a real kernel, and
tests/e2e/test_dashboard.py loads the frame in a browser.
"""

from __future__ import annotations

import subprocess
import sys
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from metricstream.errors import ConflictError, NotFoundError, ValidationError
from metricstream.notebook.display import DashboardView
from metricstream.server.hub import Hub
from tests.support.hubs import FAST

UNKNOWN_ID = "01890a5d-ac96-774b-bcce-b302099a8057"


@dataclass
class Events:
    """IPython's `shell.events`: callbacks by event name."""

    callbacks: dict[str, list[Callable[[], None]]] = field(default_factory=dict)

    def register(self, event: str, function: Callable[[], None]) -> None:
        self.callbacks.setdefault(event, []).append(function)

    def unregister(self, event: str, function: Callable[[], None]) -> None:
        self.callbacks[event].remove(function)

    def trigger(self, event: str) -> None:
        for function in list(self.callbacks.get(event, [])):  # as IPython: a callback may unregister
            function()


@dataclass
class Notebook:
    shell: Any
    shown: list[dict[str, str]]

    def end_cell(self) -> None:
        self.shell.events.trigger("post_execute")


@pytest.fixture
def hub() -> Iterator[Hub]:
    with Hub(port=0, **{**FAST, "store": "memory://"}) as hub:
        yield hub


@pytest.fixture
def notebook(monkeypatch: pytest.MonkeyPatch) -> Notebook:
    shown: list[dict[str, str]] = []

    def display(bundle: dict[str, str], *, raw: bool = False) -> None:
        assert raw, "a mimebundle is displayed raw"
        shown.append(bundle)

    shell = types.SimpleNamespace(kernel=object(), events=Events())
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: shell  # type: ignore[attr-defined]
    ipython_display = types.ModuleType("IPython.display")
    ipython_display.display = display  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", ipython_display)
    return Notebook(shell, shown)


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "IPython", raising=False)


# --- in a notebook ---------------------------------------------------------------------------------


def test_one_metric_by_name_is_framed_in_the_cell_without_the_top_bar(hub: Hub, notebook: Notebook) -> None:
    metric = hub.service.create_metric("CPU Temperature")
    view = hub.show("CPU Temperature")

    assert isinstance(view, DashboardView)
    assert view.url == f"{hub.url}/?metric={metric.id}"
    assert str(view) == view.url
    assert view.height == 400
    assert notebook.shown == [
        {
            "text/html": f'<iframe src="{hub.url}/?metric={metric.id}&amp;embed=1" '
            'title="metricstream: CPU Temperature" width="100%" height="400" style="border: 0"></iframe>',
            "text/plain": view.url,
        }
    ]


def test_by_id_a_metric_or_its_id(hub: Hub, notebook: Notebook) -> None:
    metric = hub.service.create_metric("fan")
    assert hub.show(metric.id).url == f"{hub.url}/?metric={metric.id}"
    assert hub.show(f" {metric.id.upper()} ").url == f"{hub.url}/?metric={metric.id}"
    assert hub.show(metric, height=250).url == f"{hub.url}/?metric={metric.id}"
    assert 'height="250"' in notebook.shown[-1]["text/html"]


def test_the_whole_board_keeps_its_top_bar(hub: Hub, notebook: Notebook) -> None:
    view = hub.show()
    assert view.url == f"{hub.url}/"
    assert f'src="{hub.url}/"' in notebook.shown[0]["text/html"]
    assert 'title="metricstream dashboard"' in notebook.shown[0]["text/html"]


def test_a_cell_ending_in_show_shows_it_once_and_a_later_cell_again(hub: Hub, notebook: Notebook) -> None:
    view = hub.show()
    view._ipython_display_()  # IPython displaying the cell's value: already shown by show()
    assert len(notebook.shown) == 1
    notebook.end_cell()
    assert notebook.shell.events.callbacks["post_execute"] == []  # nothing left behind
    view._ipython_display_()  # the view evaluated in a later cell
    assert len(notebook.shown) == 2


def test_a_name_is_escaped_in_the_frame_title(hub: Hub, notebook: Notebook) -> None:
    hub.service.create_metric('<b>"load"</b>')
    hub.show('<b>"load"</b>')
    assert 'title="metricstream: &lt;b&gt;&quot;load&quot;&lt;/b&gt;"' in notebook.shown[0]["text/html"]


# --- elsewhere --------------------------------------------------------------------------------------


@pytest.mark.usefixtures("terminal")
def test_in_a_terminal_the_url_is_printed(hub: Hub, capsys: pytest.CaptureFixture[str]) -> None:
    metric = hub.service.create_metric("CPU Temperature")
    view = hub.show("CPU Temperature")
    assert capsys.readouterr().out == f"metricstream dashboard: {hub.url}/?metric={metric.id}\n"
    assert view.url == f"{hub.url}/?metric={metric.id}"
    hub.show()
    assert capsys.readouterr().out == f"metricstream dashboard: {hub.url}/\n"


@pytest.mark.parametrize("shell", [None, types.SimpleNamespace()], ids=["no shell", "terminal IPython"])
def test_ipython_without_a_kernel_prints_too(
    hub: Hub, shell: object, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: shell  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    hub.show()
    assert capsys.readouterr().out == f"metricstream dashboard: {hub.url}/\n"


def test_a_script_never_imports_ipython() -> None:
    script = (
        "import sys\n"
        "from metricstream import Hub\n"
        "with Hub(port=0) as hub:\n"
        "    hub.service.create_metric('cpu')\n"
        "    print(hub.show('cpu').url.startswith(hub.url + '/?metric='))\n"
        "print('IPython' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("metricstream dashboard: http://127.0.0.1:")
    assert lines[1:] == ["True", "False"]


# --- errors -----------------------------------------------------------------------------------------


@pytest.mark.usefixtures("terminal")
def test_a_name_several_metrics_have_is_ambiguous(hub: Hub) -> None:
    hub.service.create_metric("cpu", labels={"host": "a"})
    hub.service.create_metric("cpu", labels={"host": "b"})
    with pytest.raises(ConflictError, match=r"^2 metrics are named 'cpu': show one by its id "):
        hub.show("cpu")


@pytest.mark.usefixtures("terminal")
@pytest.mark.parametrize(
    ("metric", "message"),
    [
        ("nope", r"^no metric has the name 'nope' \(hub.service.list_metrics\(\) lists them\)$"),
        (UNKNOWN_ID, rf"^no metric has the id or name '{UNKNOWN_ID}'"),
    ],
)
def test_an_unknown_name_or_id_is_not_found(hub: Hub, metric: str, message: str) -> None:
    hub.service.create_metric("cpu")
    with pytest.raises(NotFoundError, match=message):
        hub.show(metric)


@pytest.mark.usefixtures("terminal")
def test_a_deleted_metric_is_not_found(hub: Hub) -> None:
    metric = hub.service.create_metric("cpu")
    hub.service.delete_metric(metric.id)
    with pytest.raises(NotFoundError, match="not found"):
        hub.show(metric)


@pytest.mark.usefixtures("terminal")
def test_a_name_that_looks_like_an_id_is_a_name(hub: Hub) -> None:
    metric = hub.service.create_metric(UNKNOWN_ID)
    assert hub.show(UNKNOWN_ID).url == f"{hub.url}/?metric={metric.id}"


@pytest.mark.usefixtures("terminal")
@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"metric": ""}, "metric must be a metric's id or name, not an empty string"),
        ({"metric": 3}, "metric must be a metric's id or name, not int"),
        ({"height": 0}, "height must be a whole number of pixels, at least 1, not 0"),
        ({"height": 300.5}, "height must be a whole number of pixels, at least 1, not 300.5"),
        ({"height": True}, "height must be a whole number of pixels, at least 1, not True"),
    ],
)
def test_bad_arguments_are_refused(hub: Hub, arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as refused:
        hub.show(**arguments)
    assert str(refused.value) == message

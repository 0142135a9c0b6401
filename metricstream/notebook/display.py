"""`Hub.show()`: the live dashboard in a notebook's output cell, or its URL printed anywhere else.

The dashboard shows one metric alone at `/?metric=<id>`; `&embed=1` drops the page's top bar, to fit a
cell. In a notebook the board is shown with its top bar (the window picker, the connection), one metric
without.

IPython is never imported here: a kernel has imported it long before any cell runs, so where it is not in
`sys.modules` there is no notebook to show HTML in, and a script runs without IPython installed. A shell
with a `kernel` (ipykernel's) has a front end that renders HTML; a terminal IPython has none, and gets the
URL printed. Whether the browser then shows the frame is the dashboard's policy (`frame_ancestors`): a
Jupyter page served from this machine may frame it; VS Code's notebooks, whose outputs live in a
`vscode-webview:` page, may not.
"""

from __future__ import annotations

import importlib
import sys
import uuid
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..domain.names import NAME_SPACE
from ..domain.values import Metric
from ..errors import ConflictError, NotFoundError, ValidationError

if TYPE_CHECKING:
    from ..service.metric_service import MetricService

__all__ = ["DashboardView", "show"]


class DashboardView:
    """What `Hub.show()` returns: the page it shows (`url`, to open in a browser too) in a frame `height`
    pixels high. Displayed in a notebook (`display(view)`, or as a cell's last value) it shows that frame;
    `str(view)` is the URL."""

    __slots__ = ("_just_shown", "height", "src", "title", "url")

    def __init__(self, url: str, src: str, title: str, height: int) -> None:
        # The page itself, and what the frame loads (for one metric, the page without its top bar).
        self.url = url
        self.src = src
        self.title = title
        self.height = height
        self._just_shown = False

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        return f"DashboardView({self.url!r}, height={self.height})"

    def _repr_html_(self) -> str:
        return (
            f'<iframe src="{escape(self.src)}" title="{escape(self.title)}" width="100%" '
            f'height="{self.height}" style="border: 0"></iframe>'
        )

    def _mimebundle(self) -> dict[str, str]:
        return {"text/html": self._repr_html_(), "text/plain": self.url}

    def _ipython_display_(self) -> None:
        # `show()` displayed it already in this cell: a cell ending in `hub.show()` shows it once
        if not self._just_shown:
            _display(self._mimebundle())

    def _show_in(self, shell: Any) -> None:
        """Display it now, and take the cell's own display of the returned view for this one."""
        _display(self._mimebundle())
        self._just_shown = True

        def cell_done() -> None:
            self._just_shown = False
            shell.events.unregister("post_execute", cell_done)

        shell.events.register("post_execute", cell_done)


def show(service: MetricService, base_url: str, metric: Metric | str | None, height: int) -> DashboardView:
    """See `Hub.show`."""
    if isinstance(height, bool) or not isinstance(height, int) or height < 1:
        raise ValidationError(f"height must be a whole number of pixels, at least 1, not {height!r}")
    if metric is None:
        url = f"{base_url}/"
        view = DashboardView(url, url, "metricstream dashboard", height)
    else:
        found = resolve(service, metric)
        url = f"{base_url}/?metric={quote(found.id)}"
        view = DashboardView(url, f"{url}&embed=1", f"metricstream: {found.name}", height)
    shell = notebook_shell()
    if shell is None:
        print(f"metricstream dashboard: {view.url}", flush=True)
    else:
        view._show_in(shell)
    return view


def resolve(service: MetricService, metric: Metric | str) -> Metric:
    """The metric `metric` designates: a `Metric`, an id, or a name exactly one metric has."""
    if isinstance(metric, Metric):
        return service.get_metric(metric.id)  # one deleted meanwhile is an error now, not a blank view
    if not isinstance(metric, str):
        raise ValidationError(f"metric must be a metric's id or name, not {type(metric).__name__}")
    # Trimmed as names are; list_metrics then applies the whole rule.
    text = metric.strip(NAME_SPACE)
    if not text:
        raise ValidationError("metric must be a metric's id or name, not an empty string")
    if _is_uuid(text):
        try:
            return service.get_metric(text)
        except NotFoundError:
            pass  # a name may look like an id
    named = service.list_metrics(name=text)
    if len(named) == 1:
        return named[0]
    if named:
        raise ConflictError(
            f"{len(named)} metrics are named {text!r}: show one by its id "
            f"(hub.service.list_metrics(name={text!r}) lists them)"
        )
    what = "id or name" if _is_uuid(text) else "name"
    raise NotFoundError(f"no metric has the {what} {metric!r} (hub.service.list_metrics() lists them)")


def notebook_shell() -> Any | None:
    """The IPython shell of a kernel this runs in, whose front end shows HTML; None anywhere else."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    shell = ipython.get_ipython()
    return shell if getattr(shell, "kernel", None) is not None else None


def _display(bundle: dict[str, str]) -> None:
    importlib.import_module("IPython.display").display(bundle, raw=True)


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True

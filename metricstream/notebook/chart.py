"""`hub.chart()` and `metricstream.chart(url)`: a live chart of metrics in a notebook, as an anywidget.

The kernel side (`chart_feed.ChartFeed`) reads the server and sends readings over the widget's comm; the
browser side (`chart_widget.js`) draws them with the dashboard's chart.js, so the browser never talks to
the server: the chart works wherever the notebook does, whether or not its page can reach the hub.

anywidget loads `_esm` as one module from a blob URL, where relative imports cannot resolve, so
`bundle()` inlines the modules chart_widget.js imports (the dashboard's files, read at import time, never
a copy): each one in a function scope of its own, its `import` lines turned into reads of the modules
before it and its `export`s into what that scope returns.

anywidget is an optional extra (`pip install 'metricstream[notebook]'`), imported when a chart is made.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ..domain.values import Metric
from ..errors import ValidationError
from .chart_feed import ChartFeed, ChartSource, chart_selection, chart_window

if TYPE_CHECKING:
    from ..client.core import Verify

__all__ = ["ESM", "bundle", "chart"]

WIDGET_JS: Final = Path(__file__).with_name("chart_widget.js")
_MISSING_ANYWIDGET: Final = "chart() needs anywidget: pip install 'metricstream[notebook]'"

_IMPORT = re.compile(r'^import\s*\{([^}]*)\}\s*from\s*"([^"]+)";\s*$', re.MULTILINE)
_EXPORT_LIST = re.compile(r"^export\s*\{([^}]*)\};\s*$", re.MULTILINE)
_EXPORT_DECLARATION = re.compile(r"^export\s+(?:async\s+)?(function|class|const|let)\s+(\w+)", re.MULTILINE)


def bundle(entry: Path = WIDGET_JS) -> str:
    """`entry` and every module it imports (relative paths, `import { a, b as c } from "./x.js";` and
    `export` declarations or lists, as the dashboard writes them) as one ES module, dependencies first.
    The entry keeps its own exports."""
    order: list[Path] = []
    _visit(entry.resolve(), order, [])
    names = {path: f"__module{index}" for index, path in enumerate(order)}
    parts = [f"// Built by metricstream/notebook/chart.py from {', '.join(p.name for p in order)}."]
    for path in order[:-1]:
        body, exported = _module_body(path, names)
        parts.append(
            f"// --- {path.parent.name}/{path.name}\n"
            f"const {names[path]} = (() => {{\n{body}\nreturn {{ {', '.join(exported)} }};\n}})();"
        )
    parts.append(f"// --- {entry.name}\n{_rewrite_imports(entry.resolve(), names)}")
    return "\n".join(parts) + "\n"


def _imports(path: Path) -> list[Path]:
    return [(path.parent / target).resolve() for _, target in _IMPORT.findall(path.read_text())]


def _visit(path: Path, order: list[Path], trail: list[Path]) -> None:
    if path in order:
        return
    if path in trail:
        raise ValueError(f"import cycle through {path}")
    for dependency in _imports(path):
        _visit(dependency, order, [*trail, path])
    order.append(path)


def _rewrite_imports(path: Path, names: dict[Path, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        bindings = [re.sub(r"\s+as\s+", ": ", name.strip()) for name in match[1].split(",") if name.strip()]
        return f"const {{ {', '.join(bindings)} }} = {names[(path.parent / match[2]).resolve()]};"

    return _IMPORT.sub(replace, path.read_text())


def _module_body(path: Path, names: dict[Path, str]) -> tuple[str, list[str]]:
    """A dependency's text with its imports and exports rewritten, and the names it exports."""
    text = _rewrite_imports(path, names)
    exported = [name for _, name in _EXPORT_DECLARATION.findall(text)]
    for listed in _EXPORT_LIST.findall(text):
        exported += [name.strip() for name in listed.split(",") if name.strip()]
    text = _EXPORT_LIST.sub("", text)
    text = _EXPORT_DECLARATION.sub(lambda match: match[0].removeprefix("export").lstrip(), text)
    if "export " in re.sub(r"//.*|/\*[\s\S]*?\*/", "", text):
        raise ValueError(f"{path.name}: an export chart.py cannot inline")
    return text, exported


ESM: Final = bundle()


def _widget_class() -> type[Any]:
    """The anywidget class, made on first use: anywidget (and ipywidgets) load only when a chart is made."""
    try:
        import anywidget
        import traitlets
    except ImportError as error:
        raise ImportError(_MISSING_ANYWIDGET, name=error.name) from error

    class ChartWidget(anywidget.AnyWidget):
        """A live chart: see `chart()`. `close()` ends its subscription and its threads."""

        _esm = traitlets.Unicode(ESM).tag(sync=True)
        height = traitlets.Int(160).tag(sync=True)

        def __init__(
            self, feed_args: dict[str, Any], height: int, on_close: Callable[[Any], None], description: str
        ) -> None:
            super().__init__(height=height)
            self._on_close = on_close
            self._description = description
            self.feed = ChartFeed(send=self._send_message, **feed_args)
            self.on_msg(self._received)
            try:
                self.feed.start()
            except BaseException:
                super().close()  # no view will ever show it
                raise

        def _send_message(self, content: dict[str, Any], buffers: list[bytes]) -> None:
            if self.comm is not None:
                self.send(content, buffers)

        def _received(self, widget: Any, content: Any, buffers: list[bytes]) -> None:
            if isinstance(content, dict) and content.get("kind") == "hello":
                self.feed.reload()

        def reset(self) -> None:
            """Load the state again, as a `reset` of the stream does."""
            self.feed.reload()

        def close(self) -> None:
            self.feed.close()
            self._on_close(self)
            super().close()

        def __repr__(self) -> str:  # what a notebook without the widget's frontend shows
            state = "live" if self.comm is not None else "closed"
            return f"<{state} chart of {self._description}>"

    return ChartWidget


_widget: type[Any] | None = None
_widget_lock = threading.Lock()


def chart(
    source: ChartSource,
    metrics: tuple[Metric | str, ...],
    *,
    window: int | str,
    height: int,
    charts: weakref.WeakSet[Any] | None = None,
) -> Any:
    """A live chart widget of `metrics` (none: every metric) read from `source`; see `Hub.chart`.
    `charts`, if given, holds the widget while it is open (a Hub closes its charts when it stops)."""
    global _widget
    if isinstance(height, bool) or not isinstance(height, int) or height < 1:
        raise ValidationError(f"height must be a whole number of pixels, at least 1, not {height!r}")
    selection, chosen = chart_selection(metrics), chart_window(window)
    feed_args: dict[str, Any] = {"source": source, "selection": selection, "window": chosen}
    with _widget_lock:
        if _widget is None:
            _widget = _widget_class()
    shown = ", ".join(repr(metric.name if isinstance(metric, Metric) else metric) for metric in metrics)
    description = f"{shown or 'every metric'} at {source.url}, window={window!r}"
    widget = _widget(feed_args, height, charts.discard if charts is not None else lambda _: None, description)
    if charts is not None:
        charts.add(widget)
    return widget


def remote_chart(
    url: str,
    *metrics: Metric | str,
    window: int | str = 300,
    height: int = 160,
    token: str | None = None,
    verify: Verify | None = None,
) -> Any:
    """`metricstream.chart(url, ...)`: a live chart of a server at `url`, read by this kernel (the
    browser never connects to it). Arguments as `Hub.chart`; `token` and `verify` as `Subscriber`'s."""
    return chart(ChartSource(url.rstrip("/"), token, verify), metrics, window=window, height=height)

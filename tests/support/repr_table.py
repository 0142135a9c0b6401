"""Reading what `Hub._repr_html_()` shows: its table's rows and links."""

from __future__ import annotations

from html.parser import HTMLParser


class ReprTable(HTMLParser):
    """The rows (header cell → data cell text) and link targets of a `_repr_html_` table."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.rows: dict[str, str] = {}
        self.links: dict[str, str] = {}  # text -> href
        self._cell: list[str] = []
        self._header = ""
        self._href: str | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("th", "td"):
            self._cell = []
        if tag == "a":
            self._href = dict(attrs)["href"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "th":
            self._header = "".join(self._cell)
        elif tag == "td":
            self.rows[self._header] = "".join(self._cell)

    def handle_data(self, data: str) -> None:
        self._cell.append(data)
        if self._href is not None:
            self.links[data] = self._href
            self._href = None

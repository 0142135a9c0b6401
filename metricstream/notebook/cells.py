"""Which run of which notebook cell created a Hub, so that re-running a cell replaces its earlier hub.

Re-running `hub = Hub(port=0).start()` is what notebook users do; the earlier hub would keep serving,
unreferenced, and data would split between two hubs. A cell is known by the `cellId` in its
execute_request's metadata, which stays the same when the cell is edited, else by its code; a run is one
execute_request; only the kernel's main thread, where cells run, belongs to a cell. Nowhere but in a
kernel is a hub replaced. docs/python-api.md says which hubs are replaced and which are left alone.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from dataclasses import dataclass, field

from .display import notebook_shell

__all__ = ["CellRun", "current_cell_run"]

_order = itertools.count()


@dataclass(frozen=True)
class CellRun:
    """A cell (its id, or a hash of its code) and one run of it (the execute_request's message id), in
    creation order across this process's cells."""

    cell: str
    run: str
    order: int = field(default_factory=lambda: next(_order))

    def replaces(self, earlier: CellRun) -> bool:
        """Whether what this run created replaces what `earlier` created: the same cell, run before."""
        return self.cell == earlier.cell and self.run != earlier.run and earlier.order < self.order


def current_cell_run() -> CellRun | None:
    """The notebook cell running now, on the kernel's main thread; None anywhere else."""
    if threading.current_thread() is not threading.main_thread():
        return None
    shell = notebook_shell()
    get_parent = getattr(getattr(shell, "kernel", None), "get_parent", None)
    # The message being executed.
    request = get_parent() if callable(get_parent) else None
    if not isinstance(request, dict):
        return None
    header, metadata, content = (request.get(part) or {} for part in ("header", "metadata", "content"))
    if header.get("msg_type") != "execute_request" or not header.get("msg_id"):
        return None
    cell = metadata.get("cellId")
    if not cell:
        code = str(content.get("code", ""))
        cell = "code:" + hashlib.sha256(code.encode()).hexdigest()
    return CellRun(str(cell), str(header["msg_id"]))

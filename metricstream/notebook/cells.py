"""Which run of which notebook cell created a Hub, so that re-running a cell replaces its earlier hub.

Re-running `hub = Hub(port=0).start()` is what notebook users do. The earlier hub would keep serving,
unreferenced, and data would split between two hubs. So in a Jupyter kernel, starting a hub first stops
every running hub that an earlier run of the same cell created (`Hub.start`). Nowhere else: a script or
a test may run several hubs on purpose.

- "The same cell" is the id the front end sends with each execution (`cellId` in the execute_request's
  metadata: JupyterLab, Notebook 7 and VS Code send it), which stays the same when the cell is edited.
  Without one (nbval, a bare jupyter_client) it is the cell's code: only an unchanged cell is recognised.
- "A run" is one execute_request (its message id): hubs created by one run, in a loop say, are left
  alone, as are hubs created by other cells, even through a function defined in this one.
- Only code on the kernel's main thread, where cells run, belongs to a cell: a hub created on another
  thread has no cell, and is neither replaced nor replaces any.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from dataclasses import dataclass, field

from .display import notebook_shell

__all__ = ["CellRun", "current_cell_run"]

_order = itertools.count()  # creation order across this process's cells


@dataclass(frozen=True)
class CellRun:
    cell: str  # the cell's id, or a hash of its code
    run: str  # the execute_request's message id
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
    request = get_parent() if callable(get_parent) else None  # the message being executed
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

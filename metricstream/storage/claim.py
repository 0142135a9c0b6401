"""One SQLite file, one process: a store claims its database file while it has it open, and notes itself
in the file's `holder` table, which a process refused the file reads to name the holder. (Two processes
on one file would each keep their own event log, stream and counts, and silently disagree.)

The claim is an exclusive `flock` on the file. It belongs to the open file description, so it and SQLite's
POSIX (`fcntl`) locks never disturb each other, and the kernel drops it when the process ends, however it
ends. Within this process a claim is also kept by (device, inode), and a second one is refused before any
descriptor is opened: closing *any* descriptor of a file drops every POSIX lock this process holds on it,
SQLite's included (sqlite.org/howtocorrupt.html, 2.2.1). For the same reason a claim is released only
after the store's connection is closed. Windows has no flock: there nothing is claimed.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import sys
import threading
from pathlib import Path

from ..errors import UnavailableError

__all__ = ["Claim", "claim_database", "note_holder"]

if sys.platform != "win32":
    import fcntl

# (device, inode) of the files this process has claimed.
_claimed: set[tuple[int, int]] = set()
_claiming = threading.Lock()  # hubs start on their own threads


class Claimed(Exception):
    """The file is claimed already: by this process (`here`), or by another one."""

    def __init__(self, here: bool) -> None:
        super().__init__("claimed by this process" if here else "claimed by another process")
        self.here = here


class Claim:
    """The claim on one file, held until `release()`."""

    def __init__(self, held: tuple[int, tuple[int, int]] | None) -> None:
        # Our descriptor, and the file's (device, inode); None once released.
        self._held = held

    def release(self) -> None:
        """Give the file up (closing our descriptor drops the flock); idempotent."""
        with _claiming:
            held, self._held = self._held, None
            if held is not None:
                fd, key = held
                _claimed.discard(key)
                os.close(fd)


def claim_database(path: str) -> Claim:
    """Claim the database file `path` (created, empty, if missing); `UnavailableError` naming the file and
    its holder if another store has it, or if it cannot be opened."""
    where = os.path.abspath(path)
    try:
        return _claim(path)
    except Claimed as refused:
        if refused.here:
            message = "this process (another Hub or store has it open): stop that one first"
        else:
            message = (
                f"{_holder_of(path)}: one SQLite file serves one process at a time; stop that process "
                "first, or share a redis:// store between processes"
            )
        raise UnavailableError(f"{where} is in use by {message}") from None
    except OSError as error:
        raise UnavailableError(f"cannot open {where}: {error.strerror or error}") from None


def note_holder(db: sqlite3.Connection) -> None:
    """Write this process into the `holder` table of the claimed database `db`: its pid, host, and program
    without its arguments, which may hold secrets (`--token`)."""
    program = Path(sys.argv[0] if sys.argv and sys.argv[0] else sys.executable)
    name = program.parent.name if program.name == "__main__.py" else program.name  # python -m NAME
    db.execute("INSERT OR REPLACE INTO holder VALUES (1, ?, ?, ?)", (os.getpid(), socket.gethostname(), name))


def _holder_of(path: str) -> str:
    """The process that has `path` open, as its `holder` row names it. (The holder writes the row just
    after claiming the file: for that instant the row still names the one before.)"""
    try:
        with contextlib.closing(sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)) as db:
            row = db.execute("SELECT pid, host, program FROM holder").fetchone()
    except sqlite3.Error:
        # A file from before schema version 3 (the holder table), or not written yet.
        row = None
    if row is None:
        return "another process"
    pid, host, program = row
    return f"process {pid} ({program}) on {host}"


def _claim(path: str) -> Claim:
    """Claim `path` (created, empty, if missing), or raise `Claimed`; `OSError` if it cannot be opened."""
    if sys.platform == "win32":
        return Claim(None)
    with _claiming:
        try:
            known = os.stat(path)
        except FileNotFoundError:
            pass
        else:
            if (known.st_dev, known.st_ino) in _claimed:
                raise Claimed(here=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)  # nothing of ours has this file open: no lock of ours is dropped
            raise Claimed(here=False) from None
        except BaseException:
            os.close(fd)
            raise
        opened = os.fstat(fd)
        key = (opened.st_dev, opened.st_ino)
        _claimed.add(key)
        return Claim((fd, key))

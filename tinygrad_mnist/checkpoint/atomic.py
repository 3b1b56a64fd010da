"""Writing a file so that a kill at any moment leaves the old file or the new one: atomic
replace, and Ctrl-C held back until the write is done.
"""

from __future__ import annotations

import os
import signal
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, List

from ..types import PathLike

__all__ = ["atomic_write", "deferred_interrupt"]


def atomic_write(path: PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Write ``path`` through ``write(file_object)`` atomically.

    The bytes go to a temporary file in the same folder (same file system, so the rename
    is atomic), which is flushed and fsync'd before ``os.replace`` puts it in place; the
    folder is fsync'd after so the rename itself survives a power cut.  On any error
    (including KeyboardInterrupt) the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp's 0600 would differ from every other output
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return path
    try:
        os.fsync(dir_fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(dir_fd)
    return path


def current_umask() -> int:
    """The process's umask (read by setting it and putting it back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Hold back Ctrl-C (SIGINT) until the block ends, then raise ``KeyboardInterrupt``:
    a checkpoint being written is finished first.  Outside the main thread (where signal
    handlers cannot be set) the block runs unprotected; the write stays atomic anyway."""
    caught: List[int] = []
    try:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt

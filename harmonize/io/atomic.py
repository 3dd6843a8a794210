"""Atomic file writes: a temp file beside the target, then ``os.replace``, so a crash never leaves a
half-written file and an existing file stays intact until the new one is complete.

The building blocks here (short temp names, the umask's file mode, temp clean-up on SIGTERM/SIGHUP) are
shared with ``outputs.py``, the guard every file the CLI writes for the user goes through.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

TEMP_PREFIX = ".stripe-"


def temp_file(folder: str | Path, suffix: str = ".tmp") -> Path:
    """A new empty temp file in ``folder`` with a short name (``.stripe-XXXXXXXX.tmp.mid``: the
    target's own name never goes into it, so a 250-byte target name still has a valid temp name)."""
    suffix = suffix if len(suffix) <= 24 else ".tmp"
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=TEMP_PREFIX, suffix=suffix)
    os.close(fd)
    return Path(tmp)


def new_file_mode() -> int:
    """The mode a plain ``open(path, "w")`` gives a new file: 0666 less the umask (mkstemp's 0600 is not
    what users expect of an output)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o22)  # no way to read it without setting it elsewhere
    os.umask(mask)
    return 0o666 & ~mask


class Terminated(SystemExit):
    """Raised in the main thread on SIGTERM/SIGHUP while temp files exist, so that the clean-up in
    ``except``/``finally`` blocks runs (the exit code stays 128 + the signal, as if not caught)."""


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """While inside: SIGTERM and SIGHUP raise ``Terminated`` (SIGINT already raises KeyboardInterrupt)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated(128 + signum)

    previous = {}
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is None:
            continue
        try:
            previous[sig] = signal.signal(sig, handler)
        except (ValueError, OSError):  # pragma: no cover - not settable here
            pass
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def atomic_write(path: str | Path, write: Callable[[str], object], suffix: str = ".tmp") -> Path:
    """Call ``write(tmp_path)`` on a temp file in ``path``'s folder, then rename it over ``path``.

    ``suffix`` lets writers that look at the extension (music21) see the right one. A replaced file keeps
    its mode; a new one gets the umask's. For the CLI's outputs use ``outputs.Outputs`` (no overwrite
    without --force, never an input, all-or-none); this is for stripe's own files (checkpoints, caches).
    """
    path = Path(path)
    with signals_raise():
        tmp = temp_file(path.parent, suffix)
        try:
            write(str(tmp))
            try:
                mode = path.stat().st_mode & 0o7777
            except OSError:
                mode = new_file_mode()
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))

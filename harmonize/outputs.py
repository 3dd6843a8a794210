"""The one guard every file the CLI writes for the user goes through.

- Checked before any work (``check_output``): the folder exists and is writable, the name is not too
  long, the target is not a folder, not one of the inputs (symlinks resolved), not already there unless
  ``--force``; several outputs of one command must be distinct (``check_distinct``).
- Written atomically (``write_output``): into a temp file with a short name beside the target, then
  *linked* into place, which fails if another process created the file meanwhile (two runs writing the
  same ``-o`` cannot both "win"); with ``--force`` renamed over it, keeping the old file's mode.
- New files get the mode the umask allows (not mkstemp's 0600).
- A symlink is followed (its target is written, a dangling one included); a non-regular target
  (``/dev/null``, a FIFO) is written into, never replaced by a regular file.
- Several outputs commit all or none (``OutputBatch``).
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from .errors import StripeError

NAME_MAX = 255


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _target(out: Path) -> Path:
    """Where bytes really go: a symlink's target (followed even when dangling), else ``out``."""
    return Path(os.path.realpath(out)) if out.is_symlink() else out


def _is_special(path: Path) -> bool:
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def check_output(inputs: Path | Iterable[Path] | None, out: str | Path, force: bool) -> None:
    """Refuse an output before any work is done (StripeError naming the output)."""
    out = Path(out)
    sources = [inputs] if isinstance(inputs, str | Path) else list(inputs or [])
    if len(out.name.encode()) > NAME_MAX:
        raise StripeError(f"file name too long ({len(out.name.encode())} bytes, the limit is {NAME_MAX})", out)
    target = _target(out)
    if not target.parent.exists():
        raise StripeError(f"output folder {str(target.parent)!r} does not exist", out)
    if not target.parent.is_dir():
        raise StripeError(f"{str(target.parent)!r} is not a folder", out)
    if target.is_dir():
        raise StripeError("is a folder; give a file name for the output", out)
    for src in sources:
        src = Path(src)
        if src.exists() and target.exists() and os.path.samefile(src, target):
            raise StripeError(f"refusing to overwrite the input file {str(src)!r}, even with --force", out)
    if _is_special(target):
        if not os.access(target, os.W_OK):
            raise StripeError("permission denied", out)
        return
    if target.exists() and not force:
        raise StripeError("already exists (use --force to overwrite)", out)
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise StripeError(f"cannot write to the folder {str(target.parent)!r} (permission denied)", out)
    if target.exists() and not os.access(target, os.W_OK) and not force:
        raise StripeError("permission denied", out)


def check_distinct(outputs: Iterable[str | Path | None]) -> None:
    """Two outputs of one command must not be the same file."""
    seen: dict[str, Path] = {}
    for out in outputs:
        if out is None:
            continue
        key = os.path.realpath(out)
        if key in seen:
            raise StripeError(f"is given as two different outputs ({str(seen[key])!r} too); give each its own name",
                              out)
        seen[key] = Path(out)


def _temp_beside(target: Path, suffix: str) -> str:
    # a short name: a 240-character target must not push the temp name past NAME_MAX
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".stripe-", suffix=suffix[-16:])
    os.close(fd)
    return tmp


def _fail(exc: OSError, out: Path) -> StripeError:
    return StripeError(f"cannot write: {exc.strerror or exc}", out)


def prepare_output(out: str | Path, write: Callable[[str], object], suffix: str = ".tmp") -> tuple[Path, str | None]:
    """Write the content to a temp file beside the target; ``(target, temp)`` (temp None for a special
    file, which is written at commit)."""
    out = Path(out)
    target = _target(out)
    if _is_special(target):
        return target, None
    try:
        tmp = _temp_beside(target, suffix)
    except OSError as exc:
        raise _fail(exc, out) from None
    try:
        write(tmp)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target, tmp


def commit_output(out: str | Path, target: Path, tmp: str | None, write: Callable[[str], object],
                  force: bool) -> bool:
    """Move a prepared temp file into place; True if it replaced an existing file."""
    out = Path(out)
    if tmp is None:  # /dev/null and friends: write into it, never replace it
        try:
            write(str(target))
        except OSError as exc:
            raise _fail(exc, out) from None
        return False
    try:
        existing = target.stat().st_mode if target.exists() else None
        os.chmod(tmp, stat.S_IMODE(existing) if existing is not None else 0o666 & ~_umask())
        if existing is not None and force:
            os.replace(tmp, target)
            return True
        try:
            os.link(tmp, target)  # fails if the file appeared since the check: nobody is overwritten
        except FileExistsError:
            raise StripeError("already exists (use --force to overwrite)", out) from None
        except OSError:  # a file system without hard links: the exclusive create is the next best
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            with os.fdopen(fd, "wb") as dst, open(tmp, "rb") as src:
                dst.write(src.read())
        Path(tmp).unlink(missing_ok=True)
        return False
    except OSError as exc:
        raise _fail(exc, out) from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def write_output(out: str | Path, write: Callable[[str], object], force: bool = False,
                 suffix: str = ".tmp") -> Path:
    """Write one user-facing file through the guard (``write(path)`` fills a file at ``path``)."""
    target, tmp = prepare_output(out, write, suffix)
    commit_output(out, target, tmp, write, force)
    return Path(out)


def write_output_text(out: str | Path, text: str, force: bool = False) -> Path:
    return write_output(out, lambda p: Path(p).write_text(text), force=force)


class OutputBatch:
    """All or none: every output is prepared first; then committed; if one commit fails, the files this
    batch created are removed again (a file it replaced under ``--force`` cannot be restored, which is
    why everything is prepared, and so checked, before the first commit)."""

    def __init__(self, force: bool):
        self.force = force
        self._pending: list[tuple[Path, Path, str | None, Callable[[str], object]]] = []

    def add(self, out: str | Path, write: Callable[[str], object], suffix: str = ".tmp") -> None:
        try:
            target, tmp = prepare_output(out, write, suffix)
        except BaseException:
            self.discard()
            raise
        self._pending.append((Path(out), target, tmp, write))

    def discard(self) -> None:
        for _, _, tmp, _ in self._pending:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
        self._pending.clear()

    def commit(self) -> list[Path]:
        created: list[Path] = []
        try:
            for i, (out, target, tmp, write) in enumerate(self._pending):
                replaced = commit_output(out, target, tmp, write, self.force)
                self._pending[i] = (out, target, None, write)
                if not replaced and tmp is not None:
                    created.append(target)
        except BaseException:
            for path in created:
                path.unlink(missing_ok=True)
            self.discard()
            raise
        outs = [out for out, *_ in self._pending]
        self._pending.clear()
        return outs

    def __enter__(self) -> OutputBatch:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.discard()

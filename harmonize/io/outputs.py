"""The guard every file the CLI writes for the user goes through (``harmonize -o/--musicxml``,
``labels --plot``, ``eval --json-out/--plot``).

``Outputs(paths, inputs=..., force=...)`` checks everything when it is built, before any work:

* no file is overwritten without ``--force``; an input (through any symlink, ``..`` or hard link) is never
  an output, ``--force`` or not, nor is anything inside an input folder;
* two outputs naming the same file are refused;
* the folder must exist and be writable (a probe file is created and removed), the name must fit;
* a symlink is followed: the file it points to is written (a dangling one is created), the link stays.

``stage(path, write)`` writes one output into a short-named temp file in the target's folder;
``commit()`` (the end of a ``with`` block) puts them all in place, or none: a new file is created with
``os.link`` (never replacing one that appeared meanwhile, e.g. a concurrent run); ``--force`` replaces
with ``os.replace`` and keeps the old file's mode. A non-regular target (``/dev/null``, a FIFO) is written
into, never replaced. Temps are removed on any failure, Ctrl-C, SIGTERM or SIGHUP.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from ..errors import StripeError
from .atomic import new_file_mode, signals_raise, temp_file


@dataclass
class _Target:
    path: Path  # as the user gave it (error messages name this)
    dest: Path  # where the bytes go: symlinks and '..' resolved
    special: bool = False  # an existing character device or FIFO: written into
    exists: bool = False
    tmp: Path | None = None


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return 255


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


class Outputs:
    def __init__(self, paths: Iterable[str | Path | None], inputs: Iterable[str | Path | None] = (),
                 force: bool = False, input_dirs: Iterable[str | Path | None] = ()):
        self.force = force
        self.inputs = [Path(p) for p in inputs if p is not None]
        self.input_dirs = [Path(os.path.realpath(p)) for p in input_dirs if p is not None]
        self.targets: dict[Path, _Target] = {}
        self._stack: ExitStack | None = None
        for p in paths:
            if p is not None:
                self._add(Path(p))

    # ---------------------------------------------------------------------------------------- checks

    def _add(self, path: Path) -> None:
        name = os.fsencode(path.name)
        if not name:
            raise StripeError("not a file name", path)
        limit = _name_max(path.parent) if path.parent.is_dir() else 255
        if len(name) > limit:
            raise StripeError(f"file name is {len(name)} bytes, over the {limit}-byte limit of the file system",
                              path)
        dest = Path(os.path.realpath(path))
        if path.is_symlink() and not dest.parent.is_dir():
            raise StripeError(f"is a symlink to {str(dest)!r}, whose folder does not exist", path)
        if not dest.parent.is_dir():
            raise StripeError(f"output folder {str(path.parent)!r} does not exist", path)
        if dest.is_dir():
            raise StripeError("is a folder; give a file name for the output", path)
        for src in self.inputs:
            if Path(os.path.realpath(src)) == dest or _same(src, dest):
                raise StripeError("refusing to overwrite the input file (outputs never replace an input)", path)
        for folder in self.input_dirs:
            if dest.is_relative_to(folder):
                raise StripeError(f"is inside the input folder {str(folder)!r}; write outputs elsewhere", path)
        target = _Target(path, dest)
        try:
            st = os.stat(dest)
            target.exists = True
        except FileNotFoundError:
            st = None
        except OSError as err:
            raise StripeError(f"cannot use as output ({err.strerror})", path) from None
        if st is not None:
            if not self.force:
                raise StripeError("already exists (use --force to overwrite)", path)
            if stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode):
                target.special = True
            elif not stat.S_ISREG(st.st_mode):
                raise StripeError("exists and is not a regular file", path)
        if target.special:
            if not os.access(dest, os.W_OK):
                raise StripeError("cannot write: permission denied", path)
        else:
            for other in self.targets.values():
                if other.dest == dest:
                    raise StripeError(f"named twice as an output (also as {str(other.path)!r})", path)
            self._probe(target)
        self.targets[path] = target

    @staticmethod
    def _probe(target: _Target) -> None:
        """Create and remove a temp file in the folder: the only sure writability test (root, ACLs,
        read-only mounts, full disks of inodes all answer here, before the model runs)."""
        try:
            temp_file(target.dest.parent).unlink()
        except OSError as err:
            reason = err.strerror or type(err).__name__
            raise StripeError(f"cannot write in folder {str(target.dest.parent)!r} ({reason})", target.path) from None

    # ---------------------------------------------------------------------------------------- writing

    def __enter__(self) -> Outputs:
        self._stack = ExitStack()
        self._stack.enter_context(signals_raise())
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.commit()
            else:
                self.discard()
        finally:
            if self._stack is not None:
                self._stack.close()
                self._stack = None

    def stage(self, path: str | Path, write: Callable[[str], object]) -> None:
        """``write(tmp)`` fills a temp file that ``commit`` puts at ``path`` (one checked at construction)."""
        target = self.targets[Path(path)]
        if target.tmp is not None:
            target.tmp.unlink(missing_ok=True)
            target.tmp = None
        suffix = ".tmp" + target.dest.suffix
        try:
            target.tmp = temp_file(Path(tempfile.gettempdir()) if target.special else target.dest.parent, suffix)
        except OSError as err:
            raise StripeError(f"cannot write ({err.strerror})", target.path) from None
        try:
            write(str(target.tmp))
        except OSError as err:
            self.discard()
            if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS, errno.EPERM):
                raise StripeError(f"cannot write ({err.strerror})", target.path) from None
            raise

    def discard(self) -> None:
        for target in self.targets.values():
            if target.tmp is not None:
                target.tmp.unlink(missing_ok=True)
                target.tmp = None

    def commit(self) -> None:
        """All staged files into place, or none (files created here are removed again, replaced ones
        restored)."""
        staged = [t for t in self.targets.values() if t.tmp is not None]
        created: list[Path] = []
        replaced: list[tuple[Path, Path]] = []  # (dest, backup)
        try:
            for t in [t for t in staged if not t.special]:
                os.chmod(t.tmp, self._mode(t))
                if self.force and t.dest.exists():
                    backup = temp_file(t.dest.parent, ".old")
                    backup.unlink()
                    os.link(t.dest, backup)
                    replaced.append((t.dest, backup))
                    os.replace(t.tmp, t.dest)
                else:
                    self._create(t)
                    created.append(t.dest)
                t.tmp = None
            for t in [t for t in staged if t.special]:  # last: they cannot be taken back
                with open(t.tmp, "rb") as src, open(t.dest, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                t.tmp.unlink(missing_ok=True)
                t.tmp = None
        except BaseException as err:
            for dest in created:
                dest.unlink(missing_ok=True)
            for dest, backup in replaced:
                os.replace(backup, dest)
            self.discard()
            if isinstance(err, OSError) and not isinstance(err, FileExistsError):
                raise StripeError(f"cannot write ({err.strerror or err})", err.filename or "output") from None
            raise
        for _dest, backup in replaced:
            backup.unlink(missing_ok=True)

    def _mode(self, t: _Target) -> int:
        if self.force:
            try:
                return os.stat(t.dest).st_mode & 0o7777
            except OSError:
                pass
        return new_file_mode()

    def _create(self, t: _Target) -> None:
        """Create ``t.dest`` from the temp without ever replacing a file that exists now."""
        try:
            os.link(t.tmp, t.dest)
        except FileExistsError:
            raise StripeError("was created by someone else while stripe ran; left as it is (use --force to "
                              "overwrite)", t.path) from None
        except OSError as err:
            if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                raise
            # no hard links here (FAT, some network file systems): exclusive create, then copy
            try:
                fd = os.open(t.dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, self._mode(t))
            except FileExistsError:
                raise StripeError("was created by someone else while stripe ran; left as it is", t.path) from None
            with os.fdopen(fd, "wb") as dst, open(t.tmp, "rb") as src:
                shutil.copyfileobj(src, dst)
        t.tmp.unlink(missing_ok=True)


def save_figure(fig, out: str | Path, guard: Outputs | None = None) -> None:
    """A matplotlib figure as PNG through ``guard`` (staged, written at its commit) or a guard of its own
    (written now, no overwrite); the figure is closed either way."""
    import matplotlib.pyplot as plt

    def write(tmp: str) -> None:
        fig.savefig(tmp, dpi=100, format="png")

    try:
        if guard is not None:
            guard.stage(out, write)
        else:
            write_outputs({Path(out): write})
    finally:
        plt.close(fig)


def check_outputs(paths: Iterable[str | Path | None], inputs: Iterable[str | Path | None] = (),
                  force: bool = False, input_dirs: Iterable[str | Path | None] = ()) -> Outputs:
    """Check now (before any work) and return the guard to write through later."""
    return Outputs(paths, inputs=inputs, force=force, input_dirs=input_dirs)


def write_outputs(files: dict[Path, Callable[[str], object]], inputs: Iterable[str | Path | None] = (),
                  force: bool = False) -> None:
    """Check and write several outputs at once, all or none."""
    with Outputs(files, inputs=inputs, force=force) as outs:
        for path, write in files.items():
            outs.stage(path, write)

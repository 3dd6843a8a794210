"""Many files at once: ``stripe harmonize a.mid b.mid ... -o OUTDIR/`` or ``stripe harmonize FOLDER -o OUTDIR/``.

The model is loaded once; one progress bar; a file that fails prints one line and the others are still
written; the caller exits non-zero when any failed.
"""

from __future__ import annotations

from pathlib import Path

from .errors import StripeError

MIDI_SUFFIXES = (".mid", ".midi", ".MID", ".MIDI")


def expand_inputs(paths: list[Path]) -> list[Path]:
    """Files as given; a folder gives its MIDI files (sorted, not recursing). StripeError if none."""
    files: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix in MIDI_SUFFIXES)
            if not found:
                raise StripeError("no .mid or .midi files in this folder", p)
            files.extend(found)
        else:
            files.append(p)  # a missing file fails on its own line, like any other bad file
    return files


def is_batch(paths: list[Path]) -> bool:
    return len(paths) > 1 or (len(paths) == 1 and Path(paths[0]).is_dir())


def output_folder(output: Path, what: str = "-o") -> Path:
    """The folder many outputs go to: an existing folder, or a new one (a name without a file suffix)."""
    out = Path(output)
    if out.is_dir():
        return out
    if out.exists() or out.suffix.lower() in (".mid", ".midi", ".musicxml", ".xml", ".mxl"):
        raise StripeError(f"{what} must be a folder when harmonizing several files", out)
    if not out.parent.is_dir():
        raise StripeError("output folder's parent does not exist", out.parent)
    out.mkdir()
    return out


def run_batch(inputs: list[Path], output: Path, musicxml: Path | None = None, model: str | None = None,
              device: str = "cpu", threads: int = 1, quiet: bool = False, **options) -> tuple[list[dict], list[str]]:
    """Harmonize every input into ``output/<name>.mid`` (and ``musicxml/<name>.musicxml``).

    Returns ``(summaries, failures)``; each failure is one line ``<file>: <problem>``."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from .commands import run_harmonize
    from .pipeline import Harmonizer

    files = expand_inputs(inputs)
    outdir = output_folder(output)
    xmldir = output_folder(musicxml, "--musicxml") if musicxml is not None else None
    names = [f.stem for f in files]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise StripeError(f"several inputs share the name {dup[0]!r}: their outputs would collide")
    if threads:
        import torch

        torch.set_num_threads(threads)
    harmonizer = Harmonizer.load(model, device=device)  # once for every file
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    summaries: list[dict] = []
    failures: list[str] = []
    with Progress(TextColumn("harmonizing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  TextColumn("{task.description}"), console=err, transient=True, disable=quiet) as bar:
        task = bar.add_task("", total=len(files))
        for f in files:
            bar.update(task, description=f.name)
            try:
                summaries += run_harmonize(
                    f, outdir / f"{f.stem}.mid",
                    musicxml=xmldir / f"{f.stem}.musicxml" if xmldir else None,
                    harmonizer=harmonizer, **options)
            except StripeError as exc:
                failures.append(str(exc) if exc.path is not None else f"{f}: {exc}")
            except Exception as exc:  # noqa: BLE001 - one bad file must not stop the others
                failures.append(f"{f}: {exc.__class__.__name__}: {exc}")
            bar.advance(task)
    for line in failures:
        err.print(f"failed: {line}", markup=False)
    return summaries, failures

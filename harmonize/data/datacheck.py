"""``stripe data check FOLDER`` and ``stripe train --dry-run``: what the training loader will read.

One table, before any training: per split, the files, the songs read, their bars and chords, and the
files skipped; then each skipped file and why. Nothing is written (a POP909 folder fills its usual
preprocessing cache).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import StripeError


def _n_chords(song) -> int:
    """Chord changes of a song (consecutive equal chords count once)."""
    count, last = 0, None
    for span in sorted(song.chords or [], key=lambda c: c.start):
        if span.chord != last:
            count, last = count + 1, span.chord
    return count


def check_data(root: Path, seed: int = 0, max_songs: int = 0, val_max_songs: int = 0) -> dict:
    """A JSON-able report of what training would read from ``root`` (either layout)."""
    from .folder_data import is_pop909_layout, load_folder_split

    root = Path(root)
    if not root.is_dir():
        raise StripeError("no such data folder", root)
    pop909 = is_pop909_layout(root)
    report = {"folder": str(root), "layout": "pop909" if pop909 else "midi-folder", "splits": {}, "skipped": []}
    for split, limit in (("train", max_songs), ("val", val_max_songs)):
        if pop909:
            from .pop909 import load_split

            loaded = load_split(root, split, limit=limit or None)
            songs, n_files = list(loaded), len(loaded) + loaded.n_skipped
            skipped = [(f"{i:03d}", why) for i, why in loaded.skipped]
        else:
            loaded = load_folder_split(root, split, seed=seed, limit=limit, warn=lambda line: None)
            songs, n_files = loaded.songs, len(loaded.files)
            skipped = [(str(p), why) for p, why in loaded.skipped]
        report["splits"][split] = {
            "files": n_files,
            "songs": len(songs),
            "bars": sum(s.n_bars for s in songs),
            "chords": sum(_n_chords(s) for s in songs),
            "skipped": len(skipped),
        }
        report["skipped"] += [{"split": split, "file": f, "reason": why} for f, why in skipped]
    return report


def print_data_report(report: dict, console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console(highlight=False)
    table = Table(title=f"{report['folder']} ({report['layout']})", show_edge=False, pad_edge=False)
    for col in ("split", "files", "songs", "bars", "chords", "skipped"):
        table.add_column(col, justify="left" if col == "split" else "right")
    for split, row in report["splits"].items():
        table.add_row(split, *(str(row[k]) for k in ("files", "songs", "bars", "chords", "skipped")))
    console.print(table)
    for item in report["skipped"]:
        console.print(f"skipped ({item['split']}): {item['file']}: {item['reason']}", markup=False, soft_wrap=True)


def run_data_check(root: Path, seed: int = 0, max_songs: int = 0, val_max_songs: int = 0,
                   as_json: bool = False) -> dict:
    """Print the report; a folder with no usable training song is an error (exit 2) after the table."""
    import json
    import sys

    report = check_data(root, seed=seed, max_songs=max_songs, val_max_songs=val_max_songs)
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        print_data_report(report)
    if report["splits"]["train"]["songs"] == 0:
        raise StripeError("no usable training songs (see the skipped files above)", root)
    return report

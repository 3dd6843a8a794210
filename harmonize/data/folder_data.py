"""Training data from a plain folder of MIDI files (``stripe train --data FOLDER``).

Layout (any depth)::

    my-songs/
      split.json               # optional: {"train": ["a/song1.mid", ...], "val": ["b/song2.mid"]}
      a/song1.mid              # a melody track + a chord track (block chords), or ...
      b/song2.mid
      b/song2.chords.txt       # ... a sibling chord file in the ``--chords`` format

Each file is read the way ``stripe labels`` reads it: the melody track is chosen automatically, the
chords come from ``song.chords.txt`` when present, else from the file's chord track
(``structure.find_chord_track``). The accompaniment target is every other pitched track (the chord
track included). The key is estimated from the melody. Without ``split.json``, a seeded 90/10 split
by file (at least one validation file when there are two or more). A file that cannot be read is
skipped with one warning line and counted, never a crash.
"""

from __future__ import annotations

import json
import logging
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import StripeError

log = logging.getLogger(__name__)

MIDI_SUFFIXES = (".mid", ".midi")
CHORD_SUFFIX = ".chords.txt"
VAL_SHARE = 0.1


def is_pop909_layout(root: Path) -> bool:
    """True for a POP909-layout folder (``001/001.mid``, ...), False for a plain folder of MIDI files."""
    root = Path(root)
    for child in root.iterdir() if root.is_dir() else ():
        if child.is_dir() and re.fullmatch(r"\d{3}", child.name) and (child / f"{child.name}.mid").is_file():
            return True
    return False


def midi_files(root: Path) -> list[Path]:
    """Every MIDI file under ``root`` (any depth, hidden folders left out), sorted by relative path."""
    root = Path(root)
    found = [p for p in root.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES and p.is_file()
             and not any(part.startswith(".") for part in p.relative_to(root).parts)]
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def chord_file_for(midi: Path) -> Path:
    """``song.mid`` -> ``song.chords.txt`` beside it."""
    return midi.with_name(midi.stem + CHORD_SUFFIX)


def split_files(root: Path, files: list[Path], seed: int = 0) -> dict[str, list[Path]]:
    """``{"train": [...], "val": [...]}``: from ``root/split.json`` (relative paths), else seeded 90/10."""
    root = Path(root)
    table_path = root / "split.json"
    if table_path.is_file():
        try:
            table = json.loads(table_path.read_text(encoding="utf-8"))
            if not isinstance(table, dict) or not all(isinstance(v, list) for v in table.values()):
                raise ValueError("expected {\"train\": [paths], \"val\": [paths]}")
        except (ValueError, UnicodeDecodeError) as err:
            raise StripeError(f"unreadable split file ({err})", table_path) from None
        out = {}
        for split in ("train", "val"):
            paths = []
            for rel in table.get(split, []):
                p = root / str(rel)
                if ".." in Path(str(rel)).parts or Path(str(rel)).is_absolute():
                    raise StripeError(f"split {split!r}: {rel!r} must be a path inside the folder", table_path)
                paths.append(p)
            out[split] = paths
        return out
    order = list(files)
    random.Random(seed).shuffle(order)
    n_val = 0 if len(order) < 2 else max(1, round(VAL_SHARE * len(order)))
    val = set(order[:n_val])
    return {"train": [p for p in files if p not in val], "val": [p for p in files if p in val]}


def read_folder_song(path: Path):
    """One file as a training ``Song`` (melody, chords, accompaniment, estimated key); StripeError if unusable."""
    from ..io.midi import read_song
    from ..structure import chords_from_notes, estimate_key, find_chord_track

    path = Path(path)
    if not path.is_file():
        raise StripeError("no such file (listed in split.json)", path)
    song = read_song(path)
    chord_path = chord_file_for(path)
    if chord_path.is_file():
        from ..io.chordfile import read_chord_file

        song.chords = read_chord_file(chord_path, song.grid)
    else:
        name = find_chord_track(song.others)  # the chord track, found as ``stripe labels`` finds it
        if name is None:
            raise StripeError(f"no chords: no chord track (block chords) and no {chord_path.name} beside it", path)
        song.chords = chords_from_notes(song.others[name], song.grid)
    if not song.chords:
        raise StripeError("no chords read", path)
    song.piano = sorted((n for notes in song.others.values() for n in notes), key=lambda n: (n.start, n.pitch))
    song.key = estimate_key(song)
    return song


@dataclass
class FolderSplit:
    """The songs of one split and what was left out: ``skipped`` holds (file, reason)."""

    songs: list = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def load_folder_split(root: Path, split: str, seed: int = 0, limit: int = 0, warn=None) -> FolderSplit:
    """Read the files of ``split`` (``train`` or ``val``); unreadable ones are skipped with one warning line.

    ``warn(line)`` receives each warning (default: the module logger).
    """
    root = Path(root)
    if not root.is_dir():
        raise StripeError("no such data folder", root)
    if split not in ("train", "val"):
        raise StripeError(f"a folder of MIDI files has the splits train and val, not {split!r}", root)
    files = midi_files(root)
    if not files and not (root / "split.json").is_file():
        raise StripeError("no MIDI files (.mid, .midi) in this folder, and it is not a POP909-layout folder", root)
    chosen = split_files(root, files, seed)[split]
    if limit:
        chosen = chosen[:limit]
    out = FolderSplit(files=list(chosen))
    for path in chosen:
        try:
            out.songs.append(read_folder_song(path))
        except Exception as err:  # noqa: BLE001 - one bad file must never stop a training run
            reason = err.message if isinstance(err, StripeError) else f"{type(err).__name__}: {err}"
            out.skipped.append((path, reason))
            (warn or log.warning)(f"warning: skipping {path}: {reason}")
    return out

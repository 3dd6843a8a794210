"""POP909 loader: one song folder -> ``Song`` on the 16th-note grid of its ``beat_midi.txt``.

What the files say, checked on the 821 shared songs (see ``benchmarks/validate_labels.py``):

- ``beat_midi.txt`` columns are ``time  flag_a  flag_b``. In 4/4 songs ``flag_a`` marks every second
  beat and ``flag_b`` every fourth beat (the bar starts). In the 3/4 songs (e.g. 034, 887) ``flag_a``
  marks every third beat and ``flag_b`` every sixth. So ``flag_a`` is the downbeat of a short
  (2- or 3-beat) measure and ``flag_b`` of a pair of them: bar starts are ``flag_b`` for duple songs
  and ``flag_a`` for triple songs (most common ``flag_a`` gap of 3 beats).
- The MIDI file claims 2/4 and (often) one tempo; we ignore its metre and use its seconds only.
- ``chord_midi.txt`` boundaries fall on beats of ``beat_midi.txt``.
- Dai et al.'s ``finalized_chord.txt`` (lengths in quarters) starts at *their* origin, which is the
  origin of their ``melody.txt`` too (first line = leading rest in 16ths). That origin is neither
  the first beat nor always the first downbeat, and their time line drops whole beats here and
  there (irregular 2-beat bars), so a single offset drifts by 2, 4, ... beats later in about a third
  of the songs. We place their chords by matching their melody notes to the MIDI melody (same
  note sequence): each matched note gives an offset in whole beats between their time line and
  ours, and a chord boundary takes the offset of the last matched note at or before it.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from .. import __version__
from ..chords import Chord, chord_on_root, parse_chord, parse_pitch_class
from ..errors import StripeError
from ..io.atomic import atomic_write_bytes
from ..song import STEPS_PER_QUARTER, ChordSpan, Grid, Key, Note, Song

log = logging.getLogger(__name__)

# bump when the loader's output changes: every cached song is then rebuilt (the package version is in the
# cache key too). 2: .npz entries keyed by a hash of the source files' contents (1 was a pickle)
FORMAT_VERSION = 2
CHORD_SOURCES = ("midi", "structure")
TRACKS = ("MELODY", "BRIDGE", "PIANO")
_SOURCE_FILES = ("{id}.mid", "beat_midi.txt", "chord_midi.txt", "key_audio.txt")
_STRUCTURE_FILES = ("finalized_chord.txt", "melody.txt")


# ---------------------------------------------------------------- small readers


def _rows(path: Path) -> list[list[str]]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError as e:
        raise StripeError("file is missing", path) from e
    except OSError as e:
        raise StripeError(f"cannot read file ({e.strerror})", path) from e
    return [line.split() for line in text.splitlines()]


def read_beats(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """``beat_midi.txt`` -> (beat times, bar-start flags, beats per bar: 4 or 3)."""
    rows = [r for r in _rows(path) if r]
    try:
        table = np.array([[float(x) for x in r[:3]] for r in rows], dtype=np.float64)
    except ValueError as e:
        raise StripeError(f"not a beat table ({e})", path) from e
    if table.ndim != 2 or table.shape[1] != 3 or len(table) < 2:
        raise StripeError("expected at least two lines of 'time flag flag'", path)
    if np.any(np.diff(table[:, 0]) <= 0):
        raise StripeError("beat times are not strictly increasing", path)
    short = np.flatnonzero(table[:, 1] > 0.5)
    gaps = np.diff(short)
    triple = len(gaps) > 0 and np.bincount(gaps).argmax() == 3
    flags = table[:, 1] if triple else table[:, 2]
    return table[:, 0], flags > 0.5, 3 if triple else 4


def read_key_spans(path: Path) -> list[tuple[float, float, Key]]:
    """``key_audio.txt`` -> [(start s, end s, Key)], one per key region."""
    spans = []
    for i, r in enumerate(_rows(path), 1):
        if not r:
            continue
        try:
            start, end = float(r[0]), float(r[1])
            tonic_text, mode_text = r[2].split(":")
            mode = {"maj": "major", "min": "minor"}[mode_text]
            spans.append((start, end, Key(parse_pitch_class(tonic_text), mode)))
        except (ValueError, KeyError, IndexError) as e:
            raise StripeError(f"line {i}: not 'start end Tonic:maj|min': {' '.join(r)!r}", path) from e
    if not spans:
        raise StripeError("no key in file", path)
    return spans


def main_key(spans: list[tuple[float, float, Key]]) -> Key:
    """The key held longest (total duration over all its spans)."""
    held: dict[Key, float] = {}
    for start, end, key in spans:
        held[key] = held.get(key, 0.0) + max(0.0, end - start)
    return max(held, key=lambda k: held[k])


def key_spans_on_grid(song_dir: Path, grid: Grid) -> list[tuple[int, int, Key]]:
    """All key regions of ``key_audio.txt`` in grid steps (key changes; ``Song.key`` is the main one)."""
    out = []
    for start, end, key in read_key_spans(Path(song_dir) / "key_audio.txt"):
        lo, hi = (int(x) for x in grid.time_to_step([start, end]))
        if hi > lo:
            out.append((lo, hi, key))
    return out


# ---------------------------------------------------------------- notes


def _quantize_notes(raw, grid: Grid) -> list[Note]:
    """Seconds -> steps. Notes wholly outside the grid are dropped, the rest clipped to it."""
    t0, t1 = grid.step_times[0], grid.step_times[-1]
    kept = [n for n in raw if n.end > t0 and n.start < t1]
    if not kept:
        return []
    starts = grid.time_to_step([n.start for n in kept])
    ends = grid.time_to_step([n.end for n in kept])
    out = []
    for n, s, e in zip(kept, starts, ends, strict=True):
        s, e = int(s), int(e)
        if s >= grid.n_steps:
            continue
        e = min(max(e, s + 1), grid.n_steps)  # a note shorter than half a step still sounds for one
        out.append(Note(s, e, int(n.pitch), int(n.velocity)))
    out.sort(key=lambda n: (n.start, n.pitch))
    return out


def top_line(notes: list[Note]) -> list[Note]:
    """Monophonic reduction: the highest note of each onset, cut where the next onset begins."""
    by_start: dict[int, Note] = {}
    for n in notes:
        if n.start not in by_start or n.pitch > by_start[n.start].pitch:
            by_start[n.start] = n
    line = [by_start[s] for s in sorted(by_start)]
    out = []
    for a, b in zip(line, line[1:] + [None], strict=False):
        end = a.end if b is None else min(a.end, b.start)
        out.append(Note(a.start, end, a.pitch, a.velocity))
    return out


def _read_tracks(midi_path: Path) -> dict[str, list]:
    import pretty_midi  # heavy; only the loader needs it

    if not midi_path.exists():
        raise StripeError("MIDI file is missing", midi_path)
    try:
        pm = pretty_midi.PrettyMIDI(str(midi_path))
    except Exception as e:  # pretty_midi/mido raise many types on corrupt files
        raise StripeError(f"cannot read MIDI ({type(e).__name__}: {e})", midi_path) from e
    tracks = {inst.name.strip().upper(): inst.notes for inst in pm.instruments}
    if "MELODY" not in tracks:
        raise StripeError(f"no MELODY track (tracks: {sorted(tracks)})", midi_path)
    return {name: tracks.get(name, []) for name in TRACKS}


# ---------------------------------------------------------------- chords


def read_midi_chords(path: Path, grid: Grid) -> list[ChordSpan]:
    """``chord_midi.txt`` (seconds, Harte symbols) -> chord spans on the grid."""
    spans = []
    for i, r in enumerate(_rows(path), 1):
        if not r:
            continue
        if len(r) != 3:
            raise StripeError(f"line {i}: expected 'start end symbol', got {' '.join(r)!r}", path)
        try:
            start, end = float(r[0]), float(r[1])
        except ValueError as e:
            raise StripeError(f"line {i}: bad time in {' '.join(r)!r}", path) from e
        try:
            chord = parse_chord(r[2])
        except ValueError as e:
            raise StripeError(f"line {i}: unknown chord symbol {r[2]!r}", path) from e
        lo, hi = (int(x) for x in grid.time_to_step([start, end]))
        if hi > lo:
            spans.append(ChordSpan(lo, hi, chord))
    if not spans:
        raise StripeError("no chords in file", path)
    return spans


def read_structure_chords(path: Path) -> list[tuple[Chord, int]]:
    """``finalized_chord.txt`` -> [(chord, length in quarters)] on Dai et al.'s own time line."""
    out = []
    for i, r in enumerate(_rows(path), 1):
        line = " ".join(r)
        if not line:
            continue
        try:
            name, rest = line.split("[", 1)
            pcs_text, tail = rest.split("]", 1)
            pcs = {int(x) % 12 for x in pcs_text.replace(",", " ").split()}
            tail_fields = tail.split()
            # 'root quarters'; a few N lines have no root ('N [] 7')
            length = int(float(tail_fields[-1]))
            root = int(tail_fields[0]) if len(tail_fields) > 1 else 0
        except (ValueError, IndexError) as e:
            raise StripeError(f"line {i}: not 'name [pcs] root quarters': {line!r}", path) from e
        name = name.strip()
        if name.startswith("N") or not pcs:
            chord = Chord(None)
        else:
            try:
                chord = parse_chord(name)
                if set(chord.pitch_classes) != pcs:  # the written name lost information
                    chord = chord_on_root(chord.root, pcs)
            except ValueError:
                chord = chord_on_root(root % 12, pcs)
        out.append((chord, length))
    if not out:
        raise StripeError("no chords in file", path)
    return out


def read_structure_melody(path: Path) -> list[tuple[int, int]]:
    """Dai et al.'s ``melody.txt`` -> [(onset in 16ths on their time line, pitch)], rests skipped."""
    pos, out = 0, []
    for i, r in enumerate(_rows(path), 1):
        if not r:
            continue
        try:
            pitch, length = int(r[0]), int(r[1])
        except (ValueError, IndexError) as e:
            raise StripeError(f"line {i}: not 'pitch length'", path) from e
        if pitch > 0:
            out.append((pos, pitch))
        pos += length
    return out


def structure_offsets(dai_melody: list[tuple[int, int]], melody: list[Note]) -> tuple[np.ndarray, np.ndarray]:
    """Piecewise offsets (whole beats) from Dai et al.'s time line to ours, from matched melody notes.

    Returns (Dai positions in 16ths, offsets in steps), sorted by position; the offset holds from each
    position until the next. Single stray matches are smoothed out by a running median.
    """
    a = [p for _, p in dai_melody]
    b = [n.pitch for n in melody]
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    pos, off = [], []
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            dai_pos = dai_melody[block.a + k][0]
            pos.append(dai_pos)
            off.append(melody[block.b + k].start - dai_pos)
    if not pos:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    beats = np.round(np.asarray(off, dtype=np.float64) / STEPS_PER_QUARTER)
    k = 2  # window 5
    padded = np.pad(beats, k, mode="edge")
    smooth = np.array([np.median(padded[i : i + 2 * k + 1]) for i in range(len(beats))])
    return np.asarray(pos, dtype=np.int64), (np.round(smooth) * STEPS_PER_QUARTER).astype(np.int64)


def place_structure_chords(
    chords: list[tuple[Chord, int]], positions: np.ndarray, offsets: np.ndarray, fallback_offset: int, n_steps: int
) -> list[ChordSpan]:
    """Dai et al.'s chords (quarter lengths) -> spans on our grid, with the melody-derived offsets."""
    bounds = np.cumsum([0] + [q * STEPS_PER_QUARTER for _, q in chords])
    if len(positions):
        idx = np.clip(np.searchsorted(positions, bounds, side="right") - 1, 0, len(positions) - 1)
        steps = bounds + offsets[idx]
    else:
        steps = bounds + fallback_offset
    steps = np.maximum.accumulate(np.clip(steps, 0, n_steps))  # an offset step back must not reorder
    return [
        ChordSpan(int(lo), int(hi), chord)
        for (chord, _), lo, hi in zip(chords, steps[:-1], steps[1:], strict=True)
        if hi > lo
    ]


# ---------------------------------------------------------------- song


def song_id(song_dir: Path) -> str:
    return Path(song_dir).name


def load_song(song_dir: Path, structure_dir: Path | None = None, chord_source: str = "midi") -> Song:
    """Read one POP909 song folder (``NNN/``) into a ``Song`` on its beat grid.

    ``structure_dir`` is the matching ``pop909-structure/NNN`` folder, needed for
    ``chord_source="structure"``. Any missing or malformed file raises ``StripeError``.
    """
    song_dir = Path(song_dir)
    if chord_source not in CHORD_SOURCES:
        raise ValueError(f"chord_source must be one of {CHORD_SOURCES}, not {chord_source!r}")
    if not song_dir.is_dir():
        raise StripeError("song folder is missing", song_dir)
    sid = song_id(song_dir)
    beats, bar_flags, beats_per_bar = read_beats(song_dir / "beat_midi.txt")
    grid = Grid.from_beats(beats, bar_flags)
    grid.time_signatures = [(0, beats_per_bar, 4)]
    tracks = _read_tracks(song_dir / f"{sid}.mid")
    melody = top_line(_quantize_notes(tracks["MELODY"], grid))
    if not melody:
        raise StripeError("MELODY track has no notes inside the beat grid", song_dir / f"{sid}.mid")
    key = main_key(read_key_spans(song_dir / "key_audio.txt"))
    if chord_source == "midi":
        chords = read_midi_chords(song_dir / "chord_midi.txt", grid)
    else:
        if structure_dir is None:
            raise StripeError("chord_source='structure' needs the pop909-structure folder", song_dir)
        structure_dir = Path(structure_dir)
        dai_chords = read_structure_chords(structure_dir / "finalized_chord.txt")
        dai_melody = read_structure_melody(structure_dir / "melody.txt")
        pos, off = structure_offsets(dai_melody, melody)
        # without any matched note, fall back to the first real chord of chord_midi.txt
        fallback = 0
        if not len(pos):
            midi_chords = read_midi_chords(song_dir / "chord_midi.txt", grid)
            fallback = next((c.start for c in midi_chords if not c.chord.is_none), 0)
        chords = place_structure_chords(dai_chords, pos, off, fallback, grid.n_steps)
    tempo = 60.0 / float(np.median(np.diff(beats)))
    return Song(
        name=f"pop909/{sid}",
        grid=grid,
        melody=melody,
        bridge=_quantize_notes(tracks["BRIDGE"], grid),
        piano=_quantize_notes(tracks["PIANO"], grid),
        chords=chords,
        key=key,
        tempo_bpm=tempo,
        melody_track="MELODY",
    )


# ---------------------------------------------------------------- cache


def default_cache_dir(root: Path | None = None) -> Path:
    """``$STRIPE_CACHE``, else ``<root>/.stripe-cache`` if writable, else ``~/.cache/stripe/pop909``."""
    env = os.environ.get("STRIPE_CACHE")
    if env:
        return Path(env)
    if root is not None and os.access(root, os.W_OK):
        return Path(root) / ".stripe-cache"
    return Path.home() / ".cache" / "stripe" / "pop909"


def _source_paths(song_dir: Path, structure_dir: Path | None, chord_source: str) -> list[Path]:
    sid = song_id(song_dir)
    paths = [Path(song_dir) / f.format(id=sid) for f in _SOURCE_FILES]
    if chord_source == "structure" and structure_dir is not None:
        paths += [Path(structure_dir) / f for f in _STRUCTURE_FILES]
    return paths


def cache_key(song_dir: Path, structure_dir: Path | None = None, chord_source: str = "midi") -> str:
    """SHA-256 of the code version (FORMAT_VERSION, the package version), the chord source and the name
    and contents of each source file."""
    h = hashlib.sha256(f"{FORMAT_VERSION}|{__version__}|{chord_source}".encode())
    for p in _source_paths(song_dir, structure_dir, chord_source):
        try:
            data = p.read_bytes()
            h.update(f"|{p.name}:{len(data)}:".encode())
            h.update(data)
        except OSError:
            h.update(f"|{p.name}:absent".encode())
    return h.hexdigest()


def _cache_entry(cache_dir: Path, song_dir: Path, chord_source: str) -> Path:
    return Path(cache_dir) / f"{song_id(song_dir)}-{chord_source}.npz"


def _cache_lookup(entry: Path, key: str) -> Song | None:
    """The song stored in ``entry`` under ``key``, else None. The entry is an ``.npz`` read with
    ``allow_pickle=False`` (``songfile``): a planted or damaged file can only be a miss, never run code."""
    from ..io.songfile import song_from_file

    try:
        return song_from_file(entry, key)
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as e:
        log.warning("cache entry %s is unreadable (%s); rebuilding it", entry, " ".join(str(e).split())[:120])
    return None


def cached_song(song_dir: Path, structure_dir: Path | None, chord_source: str, cache_dir: Path) -> Song | None:
    """The cached song if its entry is current, else None (nothing is built)."""
    key = cache_key(song_dir, structure_dir, chord_source)
    return _cache_lookup(_cache_entry(cache_dir, song_dir, chord_source), key)


def load_song_cached(
    song_dir: Path,
    structure_dir: Path | None = None,
    chord_source: str = "midi",
    cache_dir: Path | None = None,
) -> Song:
    """``load_song`` through the per-song cache (``<cache_dir>/<NNN>-<chord_source>.npz``).

    The entry is used only when its stored key equals ``cache_key`` of the current files; otherwise
    the song is rebuilt and the entry rewritten atomically. Errors are never cached.
    """
    from ..io.songfile import song_to_bytes

    song_dir = Path(song_dir)
    cache_dir = default_cache_dir(song_dir.parent) if cache_dir is None else Path(cache_dir)
    key = cache_key(song_dir, structure_dir, chord_source)
    entry = _cache_entry(cache_dir, song_dir, chord_source)
    song = _cache_lookup(entry, key)
    if song is not None:
        return song
    song = load_song(song_dir, structure_dir, chord_source)
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(entry, song_to_bytes(song, key))
    except OSError as e:  # a read-only cache must not stop loading
        log.warning("cannot write cache entry %s: %s", entry, e)
    return song


# ---------------------------------------------------------------- splits


def split_song_ids(split: str, root: Path | None = None) -> list[int]:
    """Song numbers of ``split`` (train/val/test) from ``root/split.json``, else the packaged copy."""
    path = None if root is None else Path(root) / "split.json"
    if path is not None and path.exists():
        try:
            table = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise StripeError(f"unreadable split file ({type(err).__name__}); expected JSON like "
                              '{"train": [1, 2], "val": [3]}', path) from None
    else:
        table = json.loads(resources.files("harmonize.data").joinpath("pop909_split.json").read_text(encoding="utf-8"))
    if not isinstance(table, dict):
        raise StripeError(f"split file must hold a JSON object, not {type(table).__name__}", path)
    if split not in table or split == "source":
        raise StripeError(f"unknown split {split[:40]!r} (have {[k for k in table if k != 'source'][:10]})", path)
    ids = table[split]
    if not isinstance(ids, list) or not all(
            (isinstance(x, int) and not isinstance(x, bool)) or (isinstance(x, str) and x.isascii() and x.isdigit()
                                                                 and len(x) <= 9) for x in ids):
        raise StripeError(f"split {split!r} must be a list of song numbers", path)
    return [int(x) for x in ids]


class LoadedSongs(list):
    """A ``list[Song]`` that also says what was left out.

    ``absent``: song numbers of the split with no folder under root (e.g. the withheld test songs);
    ``skipped``: (song number, error message) of songs whose files are missing or corrupt.
    """

    def __init__(self, songs: Iterable[Song] = (), absent=None, skipped=None):
        super().__init__(songs)
        self.absent: list[int] = list(absent or [])
        self.skipped: list[tuple[int, str]] = list(skipped or [])

    @property
    def n_skipped(self) -> int:
        return len(self.skipped)


@dataclass(frozen=True)
class _Job:
    song_dir: Path
    structure_dir: Path | None
    chord_source: str
    cache_dir: Path | None
    use_cache: bool


def _run_job(job: _Job) -> Song | str:
    try:
        if job.use_cache:
            return load_song_cached(job.song_dir, job.structure_dir, job.chord_source, job.cache_dir)
        return load_song(job.song_dir, job.structure_dir, job.chord_source)
    except StripeError as e:
        return str(e)


def load_split(
    root: Path,
    split: str,
    structure_root: Path | None = None,
    chord_source: str = "midi",
    cache_dir: Path | None | bool = None,
    workers: int = 1,
    limit: int | None = None,
) -> LoadedSongs:
    """All songs of a split, in split order. Broken songs are skipped with a warning.

    ``cache_dir``: a folder, ``None`` for ``default_cache_dir(root)``, ``False`` for no cache.
    ``workers`` > 1 loads in that many processes (useful on a cold cache). Counts of absent and
    skipped songs are on the returned ``LoadedSongs``.
    """
    root = Path(root)
    use_cache = cache_dir is not False
    cdir = None if not use_cache else (default_cache_dir(root) if cache_dir is None else Path(cache_dir))
    ids = split_song_ids(split, root)
    if limit is not None:
        ids = ids[:limit]
    present, absent = [], []
    for i in ids:
        (present if (root / f"{i:03d}").is_dir() else absent).append(i)
    jobs = [
        _Job(
            root / f"{i:03d}",
            None if structure_root is None else Path(structure_root) / f"{i:03d}",
            chord_source,
            cdir,
            use_cache,
        )
        for i in present
    ]
    results: list[Song | str | None] = [None] * len(jobs)
    if use_cache:  # hits are cheaper to read here than to ship back from a worker
        for k, j in enumerate(jobs):
            results[k] = cached_song(j.song_dir, j.structure_dir, chord_source, cdir)
    todo = [k for k, r in enumerate(results) if r is None]
    if workers > 1 and len(todo) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers) as pool:
            for k, r in zip(todo, pool.map(_run_job, [jobs[k] for k in todo], chunksize=4), strict=True):
                results[k] = r
    else:
        for k in todo:
            results[k] = _run_job(jobs[k])
    out = LoadedSongs(absent=absent)
    for i, res in zip(present, results, strict=True):
        if isinstance(res, str):
            log.warning("skipping POP909 song %03d: %s", i, res)
            out.skipped.append((i, res))
        else:
            out.append(res)
    if absent:
        log.info("%d songs of split %r are not under %s", len(absent), split, root)
    return out


# ---------------------------------------------------------------- windows


class Window(tuple):
    """``(start_step, end_step)``; ``short`` is True for the one window of a song shorter than asked."""

    def __new__(cls, start: int, end: int, short: bool = False):
        self = super().__new__(cls, (int(start), int(end)))
        self.short = short
        return self

    @property
    def start(self) -> int:
        return self[0]

    @property
    def end(self) -> int:
        return self[1]


def windows(song, bars: int, hop_bars: int) -> list[Window]:
    """Windows of ``bars`` bars every ``hop_bars`` bars, on bar boundaries.

    ``song`` is a ``Song`` or anything with ``bar_starts`` and ``n_steps`` (``EncodedSong``). A last
    partial window is dropped; a song shorter than one window gives one ``short`` window of it all.
    """
    if bars < 1 or hop_bars < 1:
        raise ValueError("bars and hop_bars must be >= 1")
    bar_starts = list(song.grid.bar_starts) if hasattr(song, "grid") else [int(b) for b in song.bar_starts]
    n_steps = int(song.n_steps)
    edges = [b for b in bar_starts if b < n_steps] + [n_steps]
    n_bars = len(edges) - 1
    if n_bars < bars:
        return [Window(0, n_steps, short=True)] if n_steps > 0 else []
    return [Window(edges[i], edges[i + bars]) for i in range(0, n_bars - bars + 1, hop_bars)]

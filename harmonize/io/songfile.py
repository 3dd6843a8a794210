"""A ``Song`` as plain arrays in an ``.npz`` file, read back with ``allow_pickle=False``.

The preprocessing cache (``pop909.load_song_cached``) stores songs this way. Nothing in the file can run
code: numbers are int64/float64 arrays, and text (names, chord qualities, the cache key) is one JSON
document stored as a uint8 array. A file that is not exactly this shape raises ``ValueError``.
"""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np

from ..chords import Chord
from ..song import ChordSpan, Grid, Key, Note, Song

_NOTE_LISTS = ("melody", "bridge", "piano")


def _notes(notes: list[Note]) -> np.ndarray:
    return np.array([(n.start, n.end, n.pitch, n.velocity) for n in notes], dtype=np.int64).reshape(-1, 4)


def _from_notes(table: np.ndarray) -> list[Note]:
    return [Note(int(s), int(e), int(p), int(v)) for s, e, p, v in table.tolist()]


def song_to_bytes(song: Song, tag: str) -> bytes:
    """``song`` (plus a ``tag``, e.g. the cache key) as the bytes of an ``.npz`` file."""
    header = {
        "tag": tag,
        "name": song.name,
        "key": None if song.key is None else [song.key.tonic, song.key.mode],
        "tempo_bpm": float(song.tempo_bpm),
        "melody_track": song.melody_track,
        "chords": None if song.chords is None else [[c.chord.root, c.chord.quality, c.chord.bass]
                                                     for c in song.chords],
        "others": list(song.others),
    }
    arrays = {
        "header": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
        "step_times": np.asarray(song.grid.step_times, dtype=np.float64),
        "bar_starts": np.asarray(song.grid.bar_starts, dtype=np.int64),
        "beat_starts": np.asarray(song.grid.beat_starts, dtype=np.int64),
        "time_signatures": np.array(song.grid.time_signatures, dtype=np.int64).reshape(-1, 3),
        "chord_bounds": np.array([(c.start, c.end) for c in song.chords or []], dtype=np.int64).reshape(-1, 2),
        **{name: _notes(getattr(song, name)) for name in _NOTE_LISTS},
        **{f"other{i}": _notes(notes) for i, notes in enumerate(song.others.values())},
    }
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def song_from_file(path, tag: str) -> Song | None:
    """The song stored in ``path`` if its tag equals ``tag``, else None. Raises ``ValueError`` (or
    ``OSError``) on anything that is not a file ``song_to_bytes`` wrote; never unpickles."""
    try:
        with np.load(path, allow_pickle=False) as z:
            a = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, EOFError, KeyError) as e:
        raise ValueError(f"not a song file ({type(e).__name__})") from None
    try:
        header = json.loads(a["header"].tobytes().decode())
        if header["tag"] != tag:
            return None
        chords = None
        if header["chords"] is not None:
            chords = [ChordSpan(int(s), int(e), Chord(r, q, b))
                      for (s, e), (r, q, b) in zip(a["chord_bounds"].tolist(), header["chords"], strict=True)]
        grid = Grid(a["step_times"].astype(np.float64), [int(x) for x in a["bar_starts"]],
                    [int(x) for x in a["beat_starts"]], [tuple(int(v) for v in row) for row in a["time_signatures"]])
        return Song(
            name=str(header["name"]), grid=grid,
            **{name: _from_notes(a[name]) for name in _NOTE_LISTS},
            chords=chords,
            key=None if header["key"] is None else Key(int(header["key"][0]), str(header["key"][1])),
            tempo_bpm=float(header["tempo_bpm"]), melody_track=str(header["melody_track"]),
            others={str(label): _from_notes(a[f"other{i}"]) for i, label in enumerate(header["others"])},
        )
    except (KeyError, TypeError, IndexError, AttributeError, UnicodeDecodeError) as e:
        raise ValueError(f"not a song file ({type(e).__name__}: {e})") from None

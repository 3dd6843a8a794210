"""The per-beat chord stage's view of a song: one token per beat, in the key's frame (tonic = C).

A token holds what the melody does in the beat (how long each pitch class sounds, which start, the
lowest and highest pitch class, how much is rest, the register) and where the beat is (beat in the
bar, bar length, bar in an 8-bar group counted from the melody's first bar, before the melody's first
note / after its last, a bar whose melody repeats an earlier one, the key's mode). Pitch classes are
rotated by the key's tonic, and the model predicts key-relative chord classes that ``to_absolute``
maps back: a key-relative model needs no transposition augmentation and sees every song in the frame
it will be used in (the key the pipeline gives it: the user's, or ``estimate_key``'s).

Training targets per beat: the chord class (the one sounding longest in the beat), and, for denser
supervision, the piano track's lowest pitch class (12 = silent) and its chroma.

Pure numpy (no torch, no MIDI library): the arrays can be cached or fed to any trainer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .chords import N_CLASSES
from .encode import transpose_classes
from .song import ChordSpan, Grid, Key, Note
from .structure import chord_classes_per_step, melody_repetition

BEAT_CONTEXTS = ("time", "rep")
N_BASS = 13  # 12 pitch classes + silent
N_CHROMA = 12
N_OUT = N_CLASSES + N_BASS + N_CHROMA  # chord logits, then the two auxiliary heads
GROUP_BARS = 8
_BLOCKS = {"dur": 12, "onset": 12, "low": 12, "high": 12, "rest": 1, "register": 1, "beat_in_bar": 8,
           "bar_len": 3, "bar_in_group": GROUP_BARS, "outside": 2, "repeat": 1, "minor": 1}
N_FEATURES = sum(_BLOCKS.values())
# "line" adds what the melodic line says about chord tones: the pitch classes sounding as the beat starts (a
# strong position), and those of notes reached or left by a leap (a non-chord tone is approached and left by
# step, so a leaping note is almost always a chord tone)
_LINE_BLOCKS = {"at_beat": 12, "leap": 12}
FEATURE_SETS = {"base": N_FEATURES, "line": N_FEATURES + sum(_LINE_BLOCKS.values())}
LEAP = 3  # semitones: an interval this wide or wider is a leap
IGNORE = -100  # targets torch's cross-entropy ignores


def beat_bounds(beat_starts, n_steps: int) -> np.ndarray:
    """``[n_beats, 2]`` (start, end) steps of the beats that lie inside ``0..n_steps``."""
    starts = np.unique(np.asarray([b for b in beat_starts if 0 <= b < n_steps], dtype=np.int64))
    if not len(starts):
        return np.zeros((0, 2), np.int64)
    return np.stack([starts, np.append(starts[1:], n_steps)], axis=1)


def _step_arrays(notes: list[Note], n_steps: int):
    """Per step: pitch classes sounding / starting ``[T,12]``, lowest and highest pitch (-1 / 999 = none)."""
    sound = np.zeros((n_steps, 12), np.float32)
    onset = np.zeros((n_steps, 12), np.float32)
    low = np.full(n_steps, 999, np.int64)
    high = np.full(n_steps, -1, np.int64)
    for n in notes:
        lo, hi = max(0, n.start), min(n_steps, n.end)
        if hi <= lo:
            continue
        sound[lo:hi, n.pitch % 12] = 1.0
        if n.start >= 0:
            onset[n.start, n.pitch % 12] = 1.0
        low[lo:hi] = np.minimum(low[lo:hi], n.pitch)
        high[lo:hi] = np.maximum(high[lo:hi], n.pitch)
    return sound, onset, low, high


def _onehot(idx: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((len(idx), n), np.float32)
    ok = (idx >= 0) & (idx < n)
    out[np.flatnonzero(ok), idx[ok]] = 1.0
    return out


def check_feature_set(name: str) -> str:
    if name not in FEATURE_SETS:
        raise ValueError(f"beat feature set must be one of {', '.join(FEATURE_SETS)}, not {name!r}")
    return name


def _block_columns() -> dict[str, slice]:
    """Each block's columns in a token (the "line" blocks after the base ones)."""
    out, at = {}, 0
    for name, size in {**_BLOCKS, **_LINE_BLOCKS}.items():
        out[name] = slice(at, at + size)
        at += size
    return out


_COLUMNS = _block_columns()
_MELODY_BLOCKS = ("dur", "onset", "low", "high", "register", "at_beat", "leap")


def silence_beats(features: np.ndarray, silent: np.ndarray) -> np.ndarray:
    """``features`` with the melody of the ``silent`` beats (bool per beat) taken out: what the tokens of those
    beats would be, were the melody resting there (where the beat is, the key and the repetition stay)."""
    out = features.copy()
    for name in _MELODY_BLOCKS:
        out[silent, _COLUMNS[name]] = 0.0
    out[silent, _COLUMNS["rest"]] = 1.0
    return out


def _leaping_notes(melody: list[Note]) -> list[Note]:
    """The notes reached or left by a leap (``LEAP`` semitones or more) from the note before or after them."""
    line = sorted(melody, key=lambda n: (n.start, -n.pitch))
    return [n for i, n in enumerate(line)
            if (i > 0 and abs(n.pitch - line[i - 1].pitch) >= LEAP)
            or (i + 1 < len(line) and abs(line[i + 1].pitch - n.pitch) >= LEAP)]


def beat_features(melody: list[Note], grid: Grid, key: Key, rep: np.ndarray | None = None,
                  feature_set: str = "base") -> np.ndarray:
    """``[n_beats, FEATURE_SETS[feature_set]]`` float32 tokens of ``melody`` on ``grid``, pitch classes relative
    to ``key`` (``rep``: ``repetition_per_beat``'s ids when already computed)."""
    check_feature_set(feature_set)
    T = grid.n_steps
    bounds = beat_bounds(grid.beat_starts, T)
    nb = len(bounds)
    if nb == 0:
        return np.zeros((0, FEATURE_SETS[feature_set]), np.float32)
    starts, lengths = bounds[:, 0], (bounds[:, 1] - bounds[:, 0]).astype(np.float32)
    sound, onset, low, high = _step_arrays(melody, T)
    rot = lambda a: np.roll(a, -key.tonic, axis=1)  # noqa: E731 - pitch class p -> p - tonic
    dur = np.add.reduceat(sound, starts, axis=0) / lengths[:, None]
    ons = np.maximum.reduceat(onset, starts, axis=0)
    lo, hi = np.minimum.reduceat(low, starts), np.maximum.reduceat(high, starts)
    has = hi >= 0
    low_pc = np.where(has, (lo - key.tonic) % 12, -1)
    high_pc = np.where(has, (hi - key.tonic) % 12, -1)
    any_sound = np.add.reduceat(sound.max(1), starts) / lengths
    register = np.where(has, (np.where(has, (lo + hi) / 2, 60) - 66) / 12, 0).astype(np.float32)

    bar_starts = np.asarray(grid.bar_starts or [0], dtype=np.int64)
    bar = np.clip(np.searchsorted(bar_starts, starts, side="right") - 1, 0, None)
    first_beat_of_bar = np.searchsorted(bar, bar)  # bar is sorted: index of the bar's first beat
    beat_in_bar = np.arange(nb) - first_beat_of_bar
    beats_in_bar = np.bincount(bar, minlength=bar.max() + 1)[bar]
    bar_len = np.where(beats_in_bar <= 2, 0, np.where(beats_in_bar == 3, 1, 2))
    if melody:
        first = min(n.start for n in melody)
        last = max(n.end for n in melody)
    else:
        first, last = T, 0
    first_bar = int(np.clip(np.searchsorted(bar_starts, first, side="right") - 1, 0, None))
    group = np.where(bar >= first_bar, (bar - first_bar) % GROUP_BARS, -1)
    before = (bounds[:, 1] <= first).astype(np.float32)
    after = (starts >= last).astype(np.float32)
    if rep is None:
        rep = repetition_per_beat(melody, grid, bar)
    seen = np.zeros(len(rep), np.float32)
    first_seen: dict[int, int] = {}
    for i, (b, r) in enumerate(zip(bar, rep, strict=True)):
        first_seen.setdefault(int(r), int(b))
        seen[i] = float(first_seen[int(r)] < b)
    minor = np.full(nb, float(key.mode == "minor"), np.float32)
    blocks = [rot(dur), rot(ons), _onehot(low_pc, 12), _onehot(high_pc, 12), (1 - any_sound)[:, None],
              register[:, None], _onehot(np.minimum(beat_in_bar, 7), 8), _onehot(bar_len, 3),
              _onehot(group, GROUP_BARS), np.stack([before, after], 1), seen[:, None], minor[:, None]]
    if feature_set == "line":
        leap_sound = _step_arrays(_leaping_notes(melody), T)[0]
        blocks += [rot(sound[starts]), rot(np.add.reduceat(leap_sound, starts, axis=0) / lengths[:, None])]
    return np.concatenate(blocks, axis=1).astype(np.float32)


def repetition_per_beat(melody: list[Note], grid: Grid, bar_of_beat: np.ndarray | None = None,
                        bar_rep: np.ndarray | None = None) -> np.ndarray:
    """The melodic repetition id (``structure.melody_repetition``, as ``stripe labels`` shows it) of
    each beat's bar; ``bar_rep`` is that per-bar result when the caller has it already."""
    from .song import Song

    if bar_of_beat is None:
        starts = beat_bounds(grid.beat_starts, grid.n_steps)[:, 0]
        bar_of_beat = np.clip(np.searchsorted(np.asarray(grid.bar_starts or [0]), starts, side="right") - 1, 0, None)
    ids = melody_repetition(Song("", grid, melody)) if bar_rep is None else bar_rep
    if not len(ids):
        return np.zeros(len(bar_of_beat), np.int64)
    return ids[np.clip(bar_of_beat, 0, len(ids) - 1)]


def beat_positions(context: str, rep: np.ndarray) -> np.ndarray:
    """``[n_beats, 1]`` float32 positions: the beat index (TIME) or the bar's repetition id renumbered by
    first appearance in the window (REP)."""
    if context == "time":
        return np.arange(len(rep), dtype=np.float32)[:, None]
    if context == "rep":
        from .structure import renumber_first_appearance

        return renumber_first_appearance(np.asarray(rep)).astype(np.float32)[:, None]
    raise ValueError(f"beat context must be one of {BEAT_CONTEXTS}, not {context!r}")


def beat_classes(chords: list[ChordSpan] | None, bounds: np.ndarray, n_steps: int) -> np.ndarray:
    """The chord class sounding longest in each beat (ties: the one sounding at the beat's start)."""
    steps = chord_classes_per_step(chords, n_steps)
    out = np.zeros(len(bounds), np.int64)
    for i, (lo, hi) in enumerate(bounds):
        counts = np.bincount(steps[lo:hi], minlength=N_CLASSES)
        out[i] = steps[lo] if counts[steps[lo]] == counts.max() else counts.argmax()
    return out


def piano_targets(piano: list[Note], bounds: np.ndarray, n_steps: int, tonic: int) -> tuple[np.ndarray, np.ndarray]:
    """Per beat: the piano's lowest pitch class relative to ``tonic`` (12 = silent) and its chroma."""
    if not len(bounds):
        return np.zeros(0, np.int64), np.zeros((0, 12), np.float32)
    sound, _, low, _ = _step_arrays(piano, n_steps)
    starts = bounds[:, 0]
    lo = np.minimum.reduceat(low, starts)
    bass = np.where(lo < 999, (lo - tonic) % 12, 12).astype(np.int64)
    chroma = np.roll(np.maximum.reduceat(sound, starts, axis=0), -tonic, axis=1)
    return bass, chroma.astype(np.float32)


def to_relative(classes: np.ndarray, tonic: int) -> np.ndarray:
    """Absolute chord classes -> classes in the key's frame (tonic = C); N stays N."""
    return transpose_classes(classes, -tonic)


def to_absolute(rel_scores: np.ndarray, tonic: int) -> np.ndarray:
    """``[..., N_CLASSES]`` scores over key-relative classes -> the same scores over absolute classes."""
    # absolute class a is relative class to_relative(a): gather with that permutation
    return np.asarray(rel_scores)[..., to_relative(np.arange(N_CLASSES), tonic)]


@dataclass
class BeatSong:
    """One song as per-beat arrays in its key's frame (targets are ``IGNORE``-filled when unknown)."""

    name: str
    features: np.ndarray  # [B, FEATURE_SETS[feature set]] float32
    rep: np.ndarray  # [B] int64 melodic repetition id of the beat's bar
    chord: np.ndarray  # [B] int64 key-relative chord class
    bass: np.ndarray  # [B] int64 piano bass pitch class (12 = silent), key-relative
    chroma: np.ndarray  # [B, 12] float32 piano chroma, key-relative
    bar_of_beat: np.ndarray  # [B] int64
    key: Key

    @property
    def n_beats(self) -> int:
        return len(self.features)


def encode_beats(melody: list[Note], grid: Grid, key: Key, chords: list[ChordSpan] | None = None,
                 piano: list[Note] | None = None, name: str = "", bar_rep: np.ndarray | None = None,
                 feature_set: str = "base") -> BeatSong:
    """Features (``feature_set``'s; and, when ``chords`` / ``piano`` are given, targets) of one song in
    ``key``'s frame."""
    T = grid.n_steps
    bounds = beat_bounds(grid.beat_starts, T)
    starts = bounds[:, 0]
    bar = np.clip(np.searchsorted(np.asarray(grid.bar_starts or [0]), starts, side="right") - 1, 0, None)
    nb = len(bounds)
    chord = (to_relative(beat_classes(chords, bounds, T), key.tonic) if chords is not None
             else np.full(nb, IGNORE, np.int64))
    if piano:
        bass, chroma = piano_targets(piano, bounds, T, key.tonic)
    else:
        bass, chroma = np.full(nb, IGNORE, np.int64), np.full((nb, 12), -1.0, np.float32)
    rep = repetition_per_beat(melody, grid, bar, bar_rep)
    return BeatSong(name, beat_features(melody, grid, key, rep, feature_set), rep, chord, bass, chroma,
                    bar.astype(np.int64), key)


def bar_windows(bar_of_beat: np.ndarray, bars: int, hop_bars: int) -> list[tuple[int, int]]:
    """Beat ranges of ``bars``-bar windows every ``hop_bars`` bars; a song shorter than one window is one
    window; the last window always reaches the song's end."""
    n = len(bar_of_beat)
    if n == 0:
        return []
    first_beat = np.searchsorted(bar_of_beat, np.arange(int(bar_of_beat.max()) + 2))
    n_bars = int(bar_of_beat.max()) + 1
    if n_bars <= bars:
        return [(0, n)]
    out = [(int(first_beat[b]), int(first_beat[min(b + bars, n_bars)])) for b in range(0, n_bars - bars + 1, hop_bars)]
    if out[-1][1] < n:
        out.append((int(first_beat[n_bars - bars]), n))
    return out

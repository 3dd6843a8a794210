"""Song -> per-step numpy arrays (piano rolls, chord labels, metre), and key transposition of them.

Pure numpy: no MIDI library and no torch, so the arrays can be cached or fed to any trainer.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .chords import N_CLASSES, chord_from_class
from .song import Key, Note, Song
from .structure import chord_classes_per_step, chroma_per_step, key_tokens

N_PITCHES = 128


def pianoroll(notes: list[Note], n_steps: int, onsets_only: bool = False) -> np.ndarray:
    """Binary ``[n_steps, 128]`` uint8 roll; with ``onsets_only`` only each note's first step is set."""
    roll = np.zeros((n_steps, N_PITCHES), dtype=np.uint8)
    for n in notes:
        lo, hi = max(0, n.start), min(n_steps, n.end)
        if lo >= n_steps or hi <= 0 or not 0 <= n.pitch < N_PITCHES:
            continue
        if onsets_only:
            if n.start >= 0:
                roll[n.start, n.pitch] = 1
        else:
            roll[lo:hi, n.pitch] = 1
    return roll


@dataclass
class EncodedSong:
    """One song as aligned per-step arrays (T = number of 16th steps)."""

    name: str
    melody_roll: np.ndarray  # [T,128] uint8
    bridge_roll: np.ndarray  # [T,128] uint8
    piano_roll: np.ndarray  # [T,128] uint8
    chroma: np.ndarray  # [T,12] uint8, BIN context
    chord_class: np.ndarray  # [T] int64, 0 = N
    key_token: np.ndarray  # [T] int64, KEY context (key-relative, unchanged by transposition)
    bar_position: np.ndarray  # [T] int64, steps since the bar start
    bar_index: np.ndarray  # [T] int64
    beat_onset: np.ndarray  # [T] uint8, 1 on the first step of each beat
    bar_starts: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    key: Key | None = None  # after any transposition

    @property
    def n_steps(self) -> int:
        return len(self.chord_class)


def encode_song(song: Song) -> EncodedSong:
    """All per-step arrays of ``song`` on its own grid."""
    T = song.n_steps
    bar_starts = np.asarray([b for b in song.grid.bar_starts if 0 <= b < T] or [0], dtype=np.int64)
    bar_index = np.clip(np.searchsorted(bar_starts, np.arange(T), side="right") - 1, 0, None)
    bar_position = np.arange(T, dtype=np.int64) - bar_starts[bar_index]
    beat_onset = np.zeros(T, dtype=np.uint8)
    beats = np.asarray([b for b in song.grid.beat_starts if 0 <= b < T], dtype=np.int64)
    beat_onset[beats] = 1
    classes = chord_classes_per_step(song.chords, T)
    return EncodedSong(
        name=song.name,
        melody_roll=pianoroll(song.melody, T),
        bridge_roll=pianoroll(song.bridge, T),
        piano_roll=pianoroll(song.piano, T),
        chroma=chroma_per_step(song.chords, T),
        chord_class=classes,
        key_token=key_tokens(classes, song.key).astype(np.int64),
        bar_position=bar_position.astype(np.int64),
        bar_index=bar_index.astype(np.int64),
        beat_onset=beat_onset,
        bar_starts=bar_starts,
        key=song.key,
    )


def shift_roll(roll: np.ndarray, semitones: int) -> np.ndarray:
    """Move a ``[T,128]`` roll up by ``semitones``; pitches pushed past 0..127 are dropped."""
    out = np.zeros_like(roll)
    s = int(semitones)
    if s == 0:
        out[:] = roll
    elif s > 0:
        out[:, s:] = roll[:, : N_PITCHES - s] if s < N_PITCHES else 0
    else:
        out[:, : N_PITCHES + s] = roll[:, -s:] if -s < N_PITCHES else 0
    return out


_CLASS_LUT = np.array(
    [[chord_from_class(c).transposed(s).class_index for c in range(N_CLASSES)] for s in range(12)],
    dtype=np.int64,
)


def transpose_classes(classes: np.ndarray, semitones: int) -> np.ndarray:
    """Chord classes moved by ``semitones`` (N stays N)."""
    return _CLASS_LUT[int(semitones) % 12][np.asarray(classes, dtype=np.int64)]


def transpose(enc: EncodedSong, semitones: int) -> EncodedSong:
    """The song ``semitones`` higher: rolls shifted, chroma rotated, chord classes and key moved.

    KEY tokens are key-relative, so they do not change.
    """
    s = int(semitones)
    key = None if enc.key is None else Key((enc.key.tonic + s) % 12, enc.key.mode)
    return replace(
        enc,
        melody_roll=shift_roll(enc.melody_roll, s),
        bridge_roll=shift_roll(enc.bridge_roll, s),
        piano_roll=shift_roll(enc.piano_roll, s),
        chroma=np.roll(enc.chroma, s, axis=1),
        chord_class=transpose_classes(enc.chord_class, s),
        key=key,
    )

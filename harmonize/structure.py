"""Structure labels per 16th step: the four contexts of the paper (TIME, REP, KEY, BIN).

Chord-derived tokens follow "Of All StrIPEs" §IV-D (paper.md §3):
- REP: a token per chord (root + chroma), renumbered in order of first appearance within a window;
- KEY: each chord transposed by the song's key to its counterpart in C major / C minor;
- BIN: the 12-d binary chroma of the sounding chord.
"""

from __future__ import annotations

import numpy as np

from .chords import N_CLASSES, NO_CHORD, Chord
from .song import ChordSpan, Key


def chords_per_step(chords: list[ChordSpan] | None, n_steps: int) -> list[Chord]:
    """The sounding chord at every step (N where nothing is annotated)."""
    out = [NO_CHORD] * n_steps
    for span in chords or ():
        for t in range(max(0, span.start), min(n_steps, span.end)):
            out[t] = span.chord
    return out


def chroma_per_step(chords: list[ChordSpan] | None, n_steps: int) -> np.ndarray:
    """BIN context: ``[n_steps, 12]`` uint8 binary chroma."""
    roll = np.zeros((n_steps, 12), dtype=np.uint8)
    for span in chords or ():
        lo, hi = max(0, span.start), min(n_steps, span.end)
        if hi > lo and not span.chord.is_none:
            roll[lo:hi, list(span.chord.pitch_classes)] = 1
    return roll


def chord_classes_per_step(chords: list[ChordSpan] | None, n_steps: int) -> np.ndarray:
    """Chord-stage targets: ``[n_steps]`` int64 class indices (0 = N)."""
    out = np.zeros(n_steps, dtype=np.int64)
    for span in chords or ():
        lo, hi = max(0, span.start), min(n_steps, span.end)
        if hi > lo:
            out[lo:hi] = span.chord.class_index
    return out


def key_tokens(chord_classes: np.ndarray, key: Key | None) -> np.ndarray:
    """KEY context: chord classes transposed to C major / C minor; minor keys use a second range.

    Token = class of (chord - tonic) + N_CLASSES if the key is minor, so ``2 * N_CLASSES`` tokens.
    """
    from .chords import chord_from_class

    tonic = 0 if key is None else key.tonic
    offset = N_CLASSES if key is not None and key.mode == "minor" else 0
    lut = np.array([chord_from_class(c).transposed(-tonic).class_index for c in range(N_CLASSES)])
    return lut[np.asarray(chord_classes, dtype=np.int64)] + offset


def renumber_first_appearance(tokens: np.ndarray) -> np.ndarray:
    """Map tokens to 0, 1, 2, ... in order of first appearance (the paper's REP renumbering)."""
    tokens = np.asarray(tokens)
    _, first_index, inverse = np.unique(tokens, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first_index))
    return order[inverse.reshape(-1)].reshape(tokens.shape)


def rep_tokens(chord_classes: np.ndarray) -> np.ndarray:
    """REP context for one window: chord tokens renumbered by first appearance."""
    return renumber_first_appearance(np.asarray(chord_classes, dtype=np.int64))

"""A non-neural chord baseline: template matching plus an HMM over beats, decoded with Viterbi.

This is the floor the learned chord stage has to beat. One chord per beat, from ``vocabulary``
(qualities of ``chords.QUALITY_INTERVALS``, every root):

- Emission (per beat): the duration-weighted log-likelihood of the beat's melody pitch classes under
  the chord, with p(pc | chord) = (1 − ε)/|chord| for chord tones and ε/(12 − |chord|) for the others,
  averaged over the beat's steps (rest steps add nothing), so a beat-long non-chord tone costs the
  same whatever the note values. With a key, diatonic chords (every tone in the key's scale; minor
  keys use natural minor plus the leading tone) get a small bonus, scaled by how much of the beat
  has melody so that rests stay neutral.
- Transition: stay with probability 1 − p, otherwise move uniformly to another chord; p is small
  inside a bar, larger on bar starts, where chords usually change, and in between on the middle beat
  of even bars (two chords per bar are common in pop); the bar and mid-bar points count only if the
  bar has melody (a change into a silent bar is unmotivated, so a rest bar keeps the previous chord
  and the change waits for the next bar with notes).
- Viterbi decoding; ties go to the lower state index (root C first, then vocabulary order), so the
  output is deterministic. Beats with no melody carry no evidence, so the chord is held through
  rests (the stay probability always wins). Consecutive equal beats are merged into one span.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .chords import NO_CHORD, QUALITY_INTERVALS, Chord
from .song import ChordSpan, Key, Song


def _states(vocabulary: Sequence[str]) -> list[Chord]:
    for q in vocabulary:
        if q not in QUALITY_INTERVALS:
            raise ValueError(f"unknown chord quality {q!r} in vocabulary")
    if not vocabulary:
        raise ValueError("the vocabulary is empty")
    return [Chord(root, q) for root in range(12) for q in vocabulary]


def _beats(beat_starts: Sequence[int], n_steps: int) -> list[tuple[int, int]]:
    starts = sorted({int(b) for b in beat_starts if 0 <= b < n_steps} | {0})
    ends = starts[1:] + [n_steps]
    return list(zip(starts, ends, strict=True))


def is_diatonic(chord: Chord, key: Key) -> bool:
    """True if every tone of ``chord`` lies in ``key``'s scale."""
    return all(pc in key.scale for pc in chord.pitch_classes)


def chord_tone_log_probs(states: Sequence[Chord], epsilon: float) -> np.ndarray:
    """``[n_states, 12]`` log p(pitch class | chord): the chord's tones share 1 - epsilon, the other pitch
    classes epsilon; N (no chord) is uniform."""
    logp = np.full((len(states), 12), np.log(1 / 12))
    for s, chord in enumerate(states):
        pcs = set(chord.pitch_classes)
        if pcs:
            for pc in range(12):
                logp[s, pc] = np.log((1 - epsilon) / len(pcs) if pc in pcs else epsilon / (12 - len(pcs)))
    return logp


def beat_emissions(
    melody: np.ndarray,
    beats: Sequence[tuple[int, int]],
    states: Sequence[Chord],
    key: Key | None = None,
    epsilon: float = 0.2,
    key_bonus: float = 0.5,
    weight: float = 1.0,
) -> np.ndarray:
    """Log emission scores ``[n_beats, n_states]`` (see the module docstring), times ``weight``."""
    melody = np.asarray(melody, dtype=np.int64)
    logp = chord_tone_log_probs(states, epsilon)
    prior = np.zeros(len(states))
    if key is not None:
        prior = np.array([key_bonus if is_diatonic(c, key) else 0.0 for c in states])
    out = np.zeros((len(beats), len(states)))
    for b, (lo, hi) in enumerate(beats):
        seg = melody[lo:hi]
        seg = seg[seg >= 0]
        if seg.size == 0:
            continue
        hist = np.bincount(seg % 12, minlength=12).astype(np.float64) / (hi - lo)
        out[b] = logp @ hist + prior * hist.sum()
    return weight * out


def _viterbi(emit: np.ndarray, change_probs: Sequence[float]) -> list[int]:
    """Most likely state path; ``change_probs[b]`` is the probability of leaving the chord at beat b."""
    n_beats, K = emit.shape
    cache: dict[float, np.ndarray] = {}

    def log_trans(p: float) -> np.ndarray:
        if p not in cache:
            a = np.zeros((1, 1)) if K == 1 else np.full((K, K), np.log(p / (K - 1)))
            if K > 1:
                np.fill_diagonal(a, np.log(1 - p))
            cache[p] = a
        return cache[p]

    delta = emit[0].copy()
    back = np.zeros((n_beats, K), dtype=np.int64)
    for b in range(1, n_beats):
        cand = delta[:, None] + log_trans(change_probs[b])
        back[b] = np.argmax(cand, axis=0)  # first maximum: lowest previous state
        delta = cand[back[b], np.arange(K)] + emit[b]
    path = [int(np.argmax(delta))]
    for b in range(n_beats - 1, 0, -1):
        path.append(int(back[b, path[-1]]))
    return path[::-1]


def _spans(beats: Sequence[tuple[int, int]], chords: Sequence[Chord]) -> list[ChordSpan]:
    spans: list[ChordSpan] = []
    for (lo, hi), chord in zip(beats, chords, strict=True):
        if spans and spans[-1].chord == chord:
            spans[-1] = ChordSpan(spans[-1].start, hi, chord)
        else:
            spans.append(ChordSpan(lo, hi, chord))
    return spans


def harmonize_baseline(
    melody: np.ndarray,
    beat_starts: Sequence[int],
    n_steps: int,
    key: Key | None = None,
    vocabulary: Sequence[str] = ("maj", "min"),
    bar_starts: Sequence[int] | None = None,
    p_change_beat: float = 0.05,
    p_change_bar: float = 0.5,
    p_change_half: float = 0.5,
    epsilon: float = 0.1,
    key_bonus: float = 0.5,
    emission_weight: float = 4.0,
) -> list[ChordSpan]:
    """One chord per beat by HMM + Viterbi; returns spans covering steps ``[0, n_steps)``.

    ``melody``: MIDI pitch per step, −1 for rests. ``bar_starts`` defaults to every 4th beat.
    A melody with no notes at all gives a single N span. Defaults: the best majmin accuracy of a
    small grid on the first 60 POP909 train songs (emission weight 1/2/4/8, p_change_bar 0.5/0.8,
    p_change_half 0.08-0.5, epsilon 0.1/0.2, key_bonus 0.5/1).
    """
    melody = np.asarray(melody, dtype=np.int64)[:n_steps]
    if n_steps <= 0:
        return []
    if not np.any(melody >= 0):
        return [ChordSpan(0, n_steps, NO_CHORD)]
    states = _states(vocabulary)
    beats = _beats(beat_starts, n_steps)
    if bar_starts is None:
        bar_set = {lo for i, (lo, _) in enumerate(beats) if i % 4 == 0}
    else:
        bar_set = {int(b) for b in bar_starts}
    emit = beat_emissions(melody, beats, states, key, epsilon, key_bonus, emission_weight)
    # a bar start invites a change only if the bar has melody: a rest bar holds the chord and the
    # change waits for the next bar with notes (the melody may enter after the downbeat). The beat
    # in the middle of a bar (beat 3 of 4/4) is a weaker change point: pop songs often have two
    # chords per bar.
    bar_bounds = sorted(b for b in bar_set if 0 <= b < n_steps) + [n_steps]
    if bar_bounds[0] != 0:
        bar_bounds = [0] + bar_bounds
    probs = [p_change_beat] * len(beats)
    beat_index = {lo: i for i, (lo, _) in enumerate(beats)}
    for a, b in zip(bar_bounds[:-1], bar_bounds[1:], strict=True):
        if not np.any(melody[a:b] >= 0):
            continue
        in_bar = [i for lo, i in beat_index.items() if a <= lo < b]
        if a in beat_index and a in bar_set:
            probs[beat_index[a]] = p_change_bar
        if len(in_bar) >= 4 and len(in_bar) % 2 == 0:
            mid = min(in_bar) + len(in_bar) // 2
            probs[mid] = max(probs[mid], p_change_half)
    path = _viterbi(emit, probs)
    return _spans(beats, [states[s] for s in path])


def harmonize_template(
    melody: np.ndarray,
    beat_starts: Sequence[int],
    n_steps: int,
    key: Key | None = None,
    vocabulary: Sequence[str] = ("maj", "min"),
    epsilon: float = 0.2,
    key_bonus: float = 0.5,
) -> list[ChordSpan]:
    """The degenerate "no HMM" baseline: best template per beat; beats without melody hold the chord.

    Leading silent beats take the first sounding beat's chord.
    """
    melody = np.asarray(melody, dtype=np.int64)[:n_steps]
    if n_steps <= 0:
        return []
    if not np.any(melody >= 0):
        return [ChordSpan(0, n_steps, NO_CHORD)]
    states = _states(vocabulary)
    beats = _beats(beat_starts, n_steps)
    emit = beat_emissions(melody, beats, states, key, epsilon, key_bonus)
    sounding = [bool(np.any(melody[lo:hi] >= 0)) for lo, hi in beats]
    choice: list[int | None] = [int(np.argmax(e)) if s else None for e, s in zip(emit, sounding, strict=True)]
    first = next(c for c in choice if c is not None)
    prev = first
    for i, c in enumerate(choice):
        prev = c if c is not None else prev
        choice[i] = prev
    return _spans(beats, [states[c] for c in choice])


def harmonize_song(song: Song, key: Key | None = None) -> list[ChordSpan]:
    """The baseline on a song as read from a user's file: its melody, its grid, and ``key`` (default: the one
    ``structure.estimate_key`` finds in the melody, the key stripe uses too). Every end-to-end comparison
    with stripe calls it this way."""
    from .metrics import melody_per_step
    from .structure import estimate_key

    return harmonize_baseline(melody_per_step(song.melody, song.n_steps), song.grid.beat_starts, song.n_steps,
                              key=estimate_key(song) if key is None else key, bar_starts=song.grid.bar_starts)

"""Structure labels per 16th step: the four contexts of the paper (TIME, REP, KEY, BIN).

Chord-derived tokens follow "Of All StrIPEs" §IV-D (paper.md §3):
- REP: a token per chord (root + chroma), renumbered in order of first appearance within a window;
- KEY: each chord transposed by the song's key to its counterpart in C major / C minor;
- BIN: the 12-d binary chroma of the sounding chord.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

from .chords import N_CLASSES, NO_CHORD, Chord
from .song import ChordSpan, Grid, Key, Note, Song


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


# ------------------------------------------------------------------------------------------------------
# Labels from a song: key, melodic repetition, chords already in the file. ``label_song`` gathers them.
# ------------------------------------------------------------------------------------------------------

# Krumhansl-Kessler probe-tone profiles (Krumhansl 1990), index 0 = tonic.
_KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def pitch_class_histogram(notes: list[Note], lo: int = 0, hi: int | None = None) -> np.ndarray:
    """Duration-weighted pitch-class histogram (in steps) of the notes, clipped to steps ``[lo, hi)``."""
    hist = np.zeros(12, dtype=np.float64)
    for n in notes:
        start, end = max(n.start, lo), n.end if hi is None else min(n.end, hi)
        if end > start:
            hist[n.pitch % 12] += end - start
    return hist


def key_correlations(hist: np.ndarray) -> np.ndarray:
    """Pearson correlation of a histogram with the 24 rotated profiles: ``[24]``, 0-11 major, 12-23 minor."""
    out = np.zeros(24)
    h = np.asarray(hist, dtype=np.float64)
    if h.std() == 0:
        return out
    for tonic in range(12):
        out[tonic] = np.corrcoef(h, np.roll(_KK_MAJOR, tonic))[0, 1]
        out[12 + tonic] = np.corrcoef(h, np.roll(_KK_MINOR, tonic))[0, 1]
    return out


def _key_of_index(i: int) -> Key:
    return Key(i % 12, "major" if i < 12 else "minor")


# weights of the evidence added to the profile correlation (tuned on POP909 val: benchmarks/key_accuracy.py)
KEY_SCALE_WEIGHT = 1.0  # share of the melody's duration inside the key's scale
KEY_FINAL_WEIGHT = 0.15  # the last note is the tonic (half for another tonic-triad tone)
KEY_FIRST_WEIGHT = 0.05  # the first note is in the tonic triad


def key_scores(notes: list[Note]) -> np.ndarray:
    """Score of each of the 24 keys (0-11 major, 12-23 minor): Krumhansl-Schmuckler correlation plus scale
    fit, final-note and first-note evidence. The correlation alone often picks the dominant (a tune in D
    with many A's reads as A major; C-D-E-F-G ending on G as G major): the scale fit penalises the key
    whose scale misses a sounding note (F in G major), the final note favours the tonic."""
    hist = pitch_class_histogram(notes)
    scores = key_correlations(hist)
    if not scores.any():
        return scores
    total = hist.sum()
    ordered = sorted(notes, key=lambda n: (n.start, -n.pitch))
    first, last = ordered[0].pitch % 12, max(notes, key=lambda n: (n.end, n.start)).pitch % 12
    for i in range(24):
        key = _key_of_index(i)
        natural = (0, 2, 4, 5, 7, 9, 11) if key.mode == "major" else (0, 2, 3, 5, 7, 8, 10)
        scale = {(key.tonic + s) % 12 for s in natural}
        if key.mode == "minor":
            scale.add((key.tonic + 11) % 12)  # harmonic minor's leading tone
        scores[i] += KEY_SCALE_WEIGHT * sum(hist[pc] for pc in scale) / total
        triad = {key.tonic, (key.tonic + (4 if key.mode == "major" else 3)) % 12, (key.tonic + 7) % 12}
        if last == key.tonic:
            scores[i] += KEY_FINAL_WEIGHT
        elif last in triad:
            scores[i] += KEY_FINAL_WEIGHT / 2
        if first in triad:
            scores[i] += KEY_FIRST_WEIGHT
    return scores


def estimate_key(song: Song) -> Key:
    """Key of the melody (+ bridge): Krumhansl-Schmuckler profile correlation plus scale-fit, final-note
    and first-note evidence (``key_scores``).

    Why not music21's analyzer: the same kind of algorithm in a few lines of numpy, deterministic
    (ties go to the lower index: major before minor, C before C#), and avoids music21's ~1 s import
    on the CLI path. A song with no pitched notes gets C major.
    """
    scores = key_scores(song.melody + song.bridge)
    return _key_of_index(int(np.argmax(scores))) if scores.any() else Key(0, "major")


def estimate_key_profile(song: Song) -> Key:
    """The plain Krumhansl-Schmuckler estimate (profile correlation only), kept for comparison."""
    corr = key_correlations(pitch_class_histogram(song.melody + song.bridge))
    return _key_of_index(int(np.argmax(corr))) if corr.any() else Key(0, "major")


def local_keys(song: Song, window_bars: int = 8, margin: float = 0.1) -> list[tuple[int, Key]]:
    """Key changes as ``(bar, Key)``, the first at bar 0.

    The opening key is the song's (``estimate_key``) unless another key fits the first ``window_bars``
    bars with notes better by ``margin``. Then each bar is judged on a
    window of ``window_bars`` bars centred on it. Hysteresis: the key changes only when another key
    correlates better than the current one by ``margin`` in ``max(2, window_bars // 2)`` bars in a row
    (so a borrowed chord, a short tonicization or a window straddling a modulation does not flip it).
    """
    grid = song.grid
    notes = song.melody + song.bridge
    bounds = list(grid.bar_starts) + [grid.n_steps]
    n_bars = len(grid.bar_starts)
    if n_bars == 0:
        return [(0, estimate_key(song))]
    half = max(1, window_bars // 2)
    # the opening key: that of the first window_bars bars that hold notes (an intro without melody says
    # nothing), unless the song's key scores within ``margin`` of it there: then the song's key, so the
    # bar-by-bar keys do not contradict the global one at bar 1 ("key: G minor ... bar 1: G major")
    glob = estimate_key(song)
    first = int(grid.bar_of_step(min(n.start for n in notes))) if notes else 0
    lo, hi = bounds[first], bounds[min(n_bars, first + window_bars)]
    opening = key_scores([n for n in notes if lo <= n.start < hi])
    g = glob.tonic + (0 if glob.mode == "major" else 12)
    best = int(np.argmax(opening))
    start = glob if not opening.any() or opening[best] - opening[g] <= margin else _key_of_index(best)
    current = start.tonic + (0 if start.mode == "major" else 12)
    changes: list[tuple[int, Key]] = [(0, start)]
    confirm = max(2, half)  # bars a new key must keep winning before it counts
    candidate, since = None, 0
    for b in range(n_bars):
        lo, hi = bounds[max(0, b - half)], bounds[min(n_bars, b + half)]
        hist = pitch_class_histogram(notes, lo, hi)
        if np.count_nonzero(hist) < 3:
            continue  # too few notes to say anything
        corr = key_correlations(hist)
        best = int(np.argmax(corr))
        if best == current or corr[best] - corr[current] <= margin:
            candidate = None
            continue
        if best != candidate:
            candidate, since = best, b
        if b - since + 1 >= confirm:
            current, candidate = best, None
            changes.append((since, _key_of_index(best)))
    return changes or [(0, estimate_key(song))]


def _bar_tokens(song: Song) -> list[list[tuple[int, int]]]:
    """Per bar, the melody's ``(onset offset in the bar, pitch)`` sequence."""
    grid = song.grid
    out: list[list[tuple[int, int]]] = [[] for _ in grid.bar_starts]
    if not out:
        return out
    bars = grid.bar_of_step([n.start for n in song.melody]) if song.melody else []
    for n, b in zip(song.melody, bars, strict=True):
        if 0 <= b < len(out):
            out[b].append((n.start - grid.bar_starts[b], n.pitch))
    return out


def _token_cost(x: tuple[int, int], y: tuple[int, int]) -> float:
    """Substitution cost: 0 equal, 0.5 same pitch moved by at most 2 steps (a delayed note), else 1."""
    if x == y:
        return 0.0
    return 0.5 if x[1] == y[1] and abs(x[0] - y[0]) <= 2 else 1.0


def _edit_distance(a: list, b: list) -> float:
    prev = [float(j) for j in range(len(b) + 1)]
    for i, x in enumerate(a, 1):
        cur = [float(i)]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + _token_cost(x, y)))
        prev = cur
    return prev[-1]


def bars_similar(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> bool:
    """Same or nearly the same bar of melody: ``(onset, pitch)`` sequences within a small edit distance.

    Bars of 4+ notes tolerate ``n/4 + 0.5`` edits: one ornament (an added note, 1, that delays the next,
    0.5) or one changed note (1); a note moved by up to 2 steps costs 0.5. Shorter bars tolerate only a
    moved note. Pitches are absolute: a transposed bar is a different bar.
    """
    longest = max(len(a), len(b))
    allowed = 0.5 if longest < 4 else longest / 4 + 0.5
    if abs(len(a) - len(b)) > allowed:
        return False
    # a lower bound first (pure speed): a note whose pitch the other bar lacks costs a deletion or a
    # substitution, 1 each, so the distance is at least the larger pitch multiset difference
    pa, pb = Counter(p for _, p in a), Counter(p for _, p in b)
    if max(sum((pa - pb).values()), sum((pb - pa).values())) > allowed:
        return False
    return _edit_distance(a, b) <= allowed


def melody_repetition(song: Song) -> np.ndarray:
    """One id per bar, 0, 1, 2... in order of first appearance; bars with (nearly) the same melody share
    an id. Each bar is compared with the first bar of every id (no chaining of small differences).
    Bars without melody notes share one id."""
    tokens = _bar_tokens(song)
    reps: list[list[tuple[int, int]]] = []
    ids = np.zeros(len(tokens), dtype=np.int64)
    for b, tok in enumerate(tokens):
        for i, rep in enumerate(reps):
            if bars_similar(tok, rep):
                ids[b] = i
                break
        else:
            ids[b] = len(reps)
            reps.append(tok)
    return ids


def per_step(bar_values, grid: Grid) -> np.ndarray:
    """Expand one value per bar to one value per step: ``[n_steps]``."""
    values = np.asarray(bar_values)
    bars = grid.bar_of_step(np.arange(grid.n_steps))
    return values[np.clip(bars, 0, len(values) - 1)]


def chords_from_notes(notes: list[Note], grid: Grid, min_share: float = 0.25) -> list[ChordSpan]:
    """Read the chords of a harmony track: per beat, the pitch classes sounding (weighted by how long
    they sound in the beat; a class under ``min_share`` of the strongest is a passing tone), matched to
    the chord vocabulary; equal consecutive chords merge. Beats with nothing sounding are N."""
    from .chords import chord_from_pitch_classes

    bounds = sorted(set(grid.beat_starts) | {0}) + [grid.n_steps]
    spans: list[ChordSpan] = []
    ordered = sorted(notes, key=lambda n: n.start)
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        if hi <= lo:
            continue
        hist = pitch_class_histogram([n for n in ordered if n.start < hi and n.end > lo], lo, hi)
        pcs = {pc for pc in range(12) if hist[pc] > 0 and hist[pc] >= min_share * hist.max()}
        chord = chord_from_pitch_classes(pcs)
        if spans and spans[-1].chord == chord and spans[-1].end == lo:
            spans[-1] = ChordSpan(spans[-1].start, hi, chord)
        else:
            spans.append(ChordSpan(lo, hi, chord))
    return spans


def mean_polyphony(notes: list[Note]) -> float:
    """Average number of notes sounding while anything sounds (1.0 for a monophonic line)."""
    if not notes:
        return 0.0
    end = max(n.end for n in notes)
    count = np.zeros(end + 1, dtype=np.int64)
    for n in notes:
        count[n.start] += 1
        count[n.end] -= 1
    sounding = np.cumsum(count)[:end]
    active = sounding > 0
    return float(sounding[active].mean()) if active.any() else 0.0


def find_chord_track(tracks: dict[str, list[Note]], min_polyphony: float = 2.5,
                     min_notes: int = 8) -> str | None:
    """The track that holds the harmony, if any: a track named like ``chords`` wins; otherwise the
    polyphonic track (``mean_polyphony >= min_polyphony``) that sounds longest."""
    for name, notes in tracks.items():
        if len(notes) >= 3 and name.strip().lower() in ("chords", "chord", "harmony"):
            return name
    best, best_cover = None, 0
    for name, notes in tracks.items():
        if len(notes) < min_notes or mean_polyphony(notes) < min_polyphony:
            continue
        cover = len({t for n in notes for t in range(n.start, n.end)})
        if cover > best_cover:
            best, best_cover = name, cover
    return best


_MODE_WORDS = {
    "": "major", "maj": "major", "major": "major", "ionian": "major",
    "m": "minor", "min": "minor", "minor": "minor", "aeolian": "minor",
}


def phrase_end_notes(song: Song, min_beats: float = 2.0) -> list[tuple[int, int, int]]:
    """(start, end, pitch) of the melody notes that close a phrase inside the song: a note starting on a
    beat whose length plus the rest after it spans at least ``min_beats`` beats (a held note or a breath),
    the song's last note excepted (the final cadence is handled on its own)."""
    notes = sorted(song.melody, key=lambda n: (n.start, n.pitch))
    beats = song.grid.beat_starts
    if len(notes) < 2 or len(beats) < 2:
        return []
    beat_steps = float(np.median(np.diff(beats)))
    on_beat = set(beats)
    return [(n.start, n.end, n.pitch) for n, nxt in zip(notes[:-1], notes[1:], strict=True)
            if n.start in on_beat and nxt.start - n.start >= min_beats * beat_steps]


def parse_key(text: str) -> Key:
    """``"A minor"``, ``"Am"``, ``"A:min"``, ``"F# major"``, ``"Eb"`` (major) -> Key. StripeError otherwise."""
    from .chords import parse_pitch_class
    from .errors import StripeError

    m = re.match(r"^([A-Ga-g][#b]?)\s*:?\s*([A-Za-z]*)$", text.strip())
    mode = None
    if m:
        word = m.group(2)
        mode = "major" if word == "M" else _MODE_WORDS.get(word.lower())
    if not m or mode is None:
        raise StripeError(f"cannot read key {text[:40]!r}: write it like 'A minor', 'Am', 'A:min', 'F# major' or 'Eb'")
    return Key(parse_pitch_class(m.group(1)), mode)


@dataclass
class Structure:
    """Everything the models and ``stripe labels`` need to know about a song's structure.

    Per-step arrays have ``n_steps`` rows; the TIME context is the step index itself.
    ``rep_tokens`` are renumbered over the whole song (the encoder renumbers per window).
    """

    key: Key
    key_source: str  # "given" | "song" (annotation) | "estimated"
    local_keys: list[tuple[int, Key]]
    bar_rep: np.ndarray  # [n_bars] melodic repetition ids
    chords: list[ChordSpan] | None
    chord_source: str  # "given" | "song" | "track:<name>" | "none"
    chroma: np.ndarray  # [n_steps, 12] uint8, BIN context (zeros when no chords)
    chord_classes: np.ndarray  # [n_steps] int64
    key_tokens: np.ndarray  # [n_steps]
    rep_tokens: np.ndarray  # [n_steps]


def label_song(song: Song, key: Key | None = None, chords: list[ChordSpan] | None = None) -> Structure:
    """Gather the structure labels of a song (key, repetition, chords and the per-step contexts).

    Key: ``key`` if given, else ``song.key``, else estimated from the melody. Chords: ``chords`` if
    given, else ``song.chords``, else read from a chord track in ``song.others``, else none.
    """
    if key is not None:
        key_source = "given"
    elif song.key is not None:
        key, key_source = song.key, "song"
    else:
        key, key_source = estimate_key(song), "estimated"
    if chords is not None:
        chord_source = "given"
    elif song.chords is not None:
        chords, chord_source = song.chords, "song"
    else:
        name = find_chord_track(song.others)
        if name is not None:
            chords, chord_source = chords_from_notes(song.others[name], song.grid), f"track:{name}"
        else:
            chord_source = "none"
    n = song.n_steps
    classes = chord_classes_per_step(chords, n)
    return Structure(
        key=key,
        key_source=key_source,
        local_keys=local_keys(song),
        bar_rep=melody_repetition(song),
        chords=chords,
        chord_source=chord_source,
        chroma=chroma_per_step(chords, n),
        chord_classes=classes,
        key_tokens=key_tokens(classes, key),
        rep_tokens=rep_tokens(classes),
    )

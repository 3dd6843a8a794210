"""Model outputs -> music: chord logits to one chord per beat, piano-roll probabilities to notes.

Chords: the chord stage's per-step log-probabilities are averaged per beat and decoded with an HMM whose
transitions favour holding a chord and changing it on bar lines (Viterbi, or forward-filtering
backward-sampling at a temperature). A key, when known, adds a prior towards its diatonic chords.
"""

from __future__ import annotations

import numpy as np

from .chords import N_CLASSES, chord_from_class
from .song import ChordSpan, Key, Note


def beat_log_probs(step_log_probs: np.ndarray, beat_starts: list[int], n_steps: int) -> np.ndarray:
    """Mean per-step log-probabilities over each beat: ``[n_beats, C]``."""
    bounds = list(beat_starts) + [n_steps]
    rows = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=False):
        rows.append(step_log_probs[lo:max(hi, lo + 1)].mean(0))
    return np.stack(rows) if rows else np.zeros((0, step_log_probs.shape[1]))


def key_prior(key: Key | None, weight: float) -> np.ndarray:
    """Log-prior per chord class: ``weight`` for each chord tone inside the key's scale, normalised."""
    prior = np.zeros(N_CLASSES)
    if key is None or weight == 0:
        return prior
    scale = key.scale
    for c in range(1, N_CLASSES):
        pcs = chord_from_class(c).pitch_classes
        prior[c] = weight * (sum(pc in scale for pc in pcs) / len(pcs) - 1.0)
    return prior


def decode_chords(
    step_log_probs: np.ndarray,
    beat_starts: list[int],
    bar_starts: list[int],
    n_steps: int,
    key: Key | None = None,
    change_penalty: float = 2.0,
    offbar_penalty: float = 1.0,
    none_penalty: float = 3.0,
    key_weight: float = 1.0,
    temperature: float = 0.0,
    rng: np.random.Generator | None = None,
    prior_weight: float = 0.0,
    *,
    beat_level: bool = False,
    melody_span: tuple[int, int] | None = None,
    rep_groups: np.ndarray | None = None,
    rep_weight: float = 0.0,
    transitions: dict | None = None,
    cadence_weight: float = 0.0,
    final_note: tuple[int, int] | None = None,
    melody_steps: np.ndarray | None = None,
    melody_fit_weight: float = 0.0,
    phrase_ends: list[tuple[int, int, int]] | None = None,
    phrase_cadence_weight: float = 0.0,
    change_allowed: np.ndarray | None = None,
    corpus_prior_weight: float = 0.0,
) -> list[ChordSpan]:
    """One chord per beat from per-step log-probabilities ``[n_steps, N_CLASSES]`` (``beat_level``: per-beat
    rows ``[n_beats, N_CLASSES]``, as a per-beat chord stage gives them).

    ``temperature == 0`` gives the Viterbi path; above 0 a path is sampled from the HMM posterior with
    emissions divided by the temperature (``rng`` makes it reproducible). ``prior_weight`` divides the
    posteriors by the song's mean posterior to that power, trading a little accuracy for chord variety.

    ``melody_span`` = (first note's start, last note's end): beats wholly outside it get N (no chord).
    ``rep_groups`` (one id per beat, -1 for none; ``rep_beat_groups``): beats of bars whose melody repeats
    share an id and their emissions are pulled towards the group's mean by ``rep_weight`` (0..1), so
    repeated phrases get the same chords unless the model is confident otherwise. ``transitions`` (learnt,
    ``load_transitions``) replaces the hand-set change penalties with key-relative chord bigrams and a
    chord-change probability per beat of the bar. ``cadence_weight`` favours the tonic chord under the
    melody's ``final_note`` (start, end) and the dominant on the beat before it. ``melody_fit_weight``
    adds ``melody_fit``'s chord-tone log-likelihood of the beat's melody (``melody_steps``: MIDI pitch per
    step, -1 = rest): a second expert that knows only which notes fit which chord, and so keeps its
    judgement on music unlike the chord stage's training data. ``phrase_ends`` ((start, end, pitch) of
    the notes that close a phrase inside the song, ``structure.phrase_end_notes``) get
    ``phrase_cadence_weight``: the tonic chord under a tonic or mediant, the dominant under a
    supertonic or leading tone. ``corpus_prior_weight`` divides the posteriors by the learnt ``transitions``'
    chord frequencies in the key (``corpus_chord_prior``) to that power: the same correction as
    ``prior_weight`` against the training corpus' prior instead of the song's own, which a simple tune's
    few chords do not move.
    """
    if beat_level:
        emis = np.array(step_log_probs, dtype=np.float64, copy=True)
        song_prior = np.log(np.exp(emis).mean(0) + 1e-6) if len(emis) else 0.0
    else:
        emis = beat_log_probs(step_log_probs, beat_starts, n_steps)
        song_prior = np.log(np.exp(step_log_probs).mean(0) + 1e-6)
    n_beats = len(emis)
    if n_beats == 0:
        return []
    emis = emis + key_prior(key, key_weight)
    if prior_weight:
        # posterior / prior^w (the hybrid-HMM "scaled likelihood"): frequent chords such as the tonic stop
        # drowning out the rest; the prior is the song's own mean posterior, so no corpus statistics are needed
        emis -= prior_weight * song_prior
    if corpus_prior_weight and transitions is not None:
        emis -= corpus_prior_weight * corpus_chord_prior(transitions, key)
    if melody_steps is not None and melody_fit_weight:
        emis = emis + melody_fit_weight * melody_fit(melody_steps, beat_starts, n_steps)
    emis[:, 0] -= none_penalty  # a harmonizer should harmonize: no-chord only when clearly best
    if rep_groups is not None and rep_weight > 0:
        emis = rep_average(emis, np.asarray(rep_groups), rep_weight)
    bounds = list(beat_starts) + [n_steps]
    if cadence_weight and key is not None and final_note is not None:
        emis = _cadence(emis, bounds, key, final_note, cadence_weight)
    if phrase_ends and key is not None and phrase_cadence_weight:
        emis = _phrase_cadences(emis, bounds, key, phrase_ends, phrase_cadence_weight)
    if melody_span is not None:
        first, last = melody_span
        outside = [i for i in range(n_beats) if bounds[i + 1] <= first or bounds[i] >= last]
        emis[outside] = -1e9
        emis[outside, 0] = 0.0
    allowed = None if change_allowed is None else np.asarray(change_allowed, dtype=bool)
    if transitions is not None:
        trans = transition_matrices(transitions, key, beat_starts, bar_starts)
        if allowed is not None:
            log_move, log_change, log_stay = trans
            trans = (log_move, np.where(allowed, log_change, -np.inf), np.where(allowed, log_stay, 0.0))
        if temperature > 0:
            path = _sample_path_full(emis / temperature, trans, temperature, rng or np.random.default_rng(0))
        else:
            path = _viterbi_full(emis, trans)
        return spans_from_beats(path, beat_starts, n_steps)
    bars = set(bar_starts)
    change = np.array([change_penalty + (0.0 if b in bars else offbar_penalty) for b in beat_starts])
    if allowed is not None:
        change = np.where(allowed, change, np.inf)
    if temperature > 0:
        path = _sample_path(emis / temperature, change / temperature, rng or np.random.default_rng(0))
    else:
        path = _viterbi(emis, change)
    return spans_from_beats(path, beat_starts, n_steps)


HARMONIC_RHYTHMS = ("auto", "bar", "half", "beat")


def check_harmonic_rhythm(value: str) -> str:
    """``--harmonic-rhythm``'s value, or a one-line ``StripeError`` naming the flag."""
    if value not in HARMONIC_RHYTHMS:
        from .errors import StripeError

        raise StripeError(f"must be one of {', '.join(HARMONIC_RHYTHMS)}, not {value!r}", "--harmonic-rhythm")
    return value


INTRO_OUTRO = ("rest", "play", "auto")
INTRO_BARS = 2  # --intro-outro auto: a silence of at least this many bars before (after) the melody is an intro (outro)


def check_intro_outro(value: str | None) -> str | None:
    """``--intro-outro``'s value (None: the model's setting), or a one-line ``StripeError`` naming the flag."""
    if value is not None and value not in INTRO_OUTRO:
        from .errors import StripeError

        raise StripeError(f"must be rest, play or auto, not {value!r}", "--intro-outro")
    return value


def chord_span(notes: list[Note], bar_starts: list[int], n_steps: int, intro_outro: str) -> tuple[int, int] | None:
    """The steps that get chords and accompaniment, outside them no chord and silence; None: all of them.

    ``play``: all. ``rest``: the melody's span, first note to last (a folk tune's chords start with its upbeat).
    ``auto``: as ``rest``, except that a silence of ``INTRO_BARS`` bars or more before the bar of the first note
    is an intro and one after the bar of the last note an outro, both played (a song's melody file often
    leaves the intro's bars empty), and that the final chord rings to the end of its bar."""
    span = melody_span(notes)
    if span is None or intro_outro == "play":
        return None
    if intro_outro == "rest" or len(bar_starts) < 2:
        return span
    first, last = span
    bar = float(np.median(np.diff(bar_starts)))
    enough = (INTRO_BARS - 0.25) * bar  # bar lines inferred from a performance are a step or two off
    before = [b for b in bar_starts if b <= first]
    lo = 0 if (before[-1] if before else first) >= enough else first
    after = [b for b in bar_starts if b >= last]
    bar_end = max(last, min(after[0] if after else bar_starts[-1] + round(bar), n_steps))
    hi = n_steps if n_steps - bar_end >= enough else bar_end
    return lo, hi


def median_beats_per_bar(beat_starts: list[int], bar_starts: list[int]) -> float:
    """The median count of beats between consecutive bar lines (the last, open bar not counted)."""
    return float(np.median(np.diff(np.searchsorted(beat_starts, bar_starts))))


def auto_harmonic_rhythm(notes: list[Note], beat_starts: list[int], bar_starts: list[int]) -> str:
    """What ``--harmonic-rhythm auto`` uses: ``beat`` (a chord may change on any beat) in four beats a bar,
    else ``half`` (bar lines, and mid-bar in an even meter: in two every beat, in three bar lines only).
    Measured in docs/results.md §9 and §13: in four, free changes are the more accurate on POP909 songs,
    Nottingham lead sheets and Bach chorales alike; in three, a chord a bar is."""
    if len(notes) < 8 or len(beat_starts) < 2 or len(bar_starts) < 2:
        return "beat"
    return "beat" if median_beats_per_bar(beat_starts, bar_starts) == 4 else "half"


def change_points(rhythm: str, beat_starts: list[int], bar_starts: list[int],
                  span: tuple[int, int] | None = None) -> np.ndarray | None:
    """Per beat, whether the chord may change there: ``bar`` on bar lines, ``half`` also on the middle beat
    of bars with an even number of beats (4/4: beat 3; 6/8 read as 2 beats: beat 2), ``beat`` everywhere
    (None: no constraint). The beats where the melody starts and stops (``span``) always may, so the
    no-chord intro and outro end and begin where the melody does."""
    if rhythm not in HARMONIC_RHYTHMS or rhythm == "auto":  # auto: the caller picks (auto_harmonic_rhythm)
        raise ValueError(f"harmonic rhythm must be one of bar, half, beat, not {rhythm!r}")
    beats = np.asarray(beat_starts)
    bars = np.asarray(bar_starts or [0])
    if rhythm == "beat":
        return None
    bar_of = np.searchsorted(bars, beats, side="right") - 1
    first = np.searchsorted(bar_of, bar_of)  # index of each beat's bar's first beat (bar_of is sorted)
    pos = np.arange(len(beats)) - first
    per_bar = np.bincount(np.maximum(bar_of, 0), minlength=int(bar_of.max(initial=0)) + 1)[np.maximum(bar_of, 0)]
    allowed = pos == 0
    if rhythm == "half":
        allowed |= (per_bar % 2 == 0) & (pos == per_bar // 2)
    if span is not None:
        for t in span:
            i = int(np.searchsorted(beats, t, side="right")) - 1
            for j in (i, i + 1):
                if 0 <= j < len(beats):
                    allowed[j] = True
    return allowed


def melody_span(notes: list[Note]) -> tuple[int, int] | None:
    """(first note's start, last note's end), or None without notes."""
    if not notes:
        return None
    return min(n.start for n in notes), max(n.end for n in notes)


_ALL_CHORDS = [chord_from_class(c) for c in range(N_CLASSES)]


def melody_fit(melody_steps: np.ndarray, beat_starts: list[int], n_steps: int, epsilon: float = 0.2) -> np.ndarray:
    """``[n_beats, N_CLASSES]``: the log-likelihood of each beat's melody under each chord class, the HMM
    baseline's emission (``baseline.beat_emissions``: every sounding step's pitch class drawn from the
    chord's tones with probability 1 - epsilon, as a fraction of the beat, so a rest scores 0 for every
    chord)."""
    from .baseline import beat_emissions

    bounds = list(beat_starts) + [n_steps]
    beats = list(zip(bounds[:-1], bounds[1:], strict=True))
    return beat_emissions(np.asarray(melody_steps)[:n_steps], beats, _ALL_CHORDS, key=None, epsilon=epsilon)


def rep_beat_groups(bar_ids, bar_has_notes, beat_starts: list[int], bar_starts: list[int]) -> np.ndarray:
    """One id per beat: beats at the same place of bars with the same melody-repetition id
    (``structure.melody_repetition``) share an id; beats of bars without notes or of bars that do not
    repeat get -1."""
    bar_ids = np.asarray(bar_ids)
    counts = np.bincount(bar_ids[np.asarray(bar_has_notes, dtype=bool)], minlength=int(bar_ids.max(initial=0)) + 1)
    bar_of_beat = np.searchsorted(np.asarray(bar_starts), np.asarray(beat_starts), side="right") - 1
    out = np.full(len(beat_starts), -1, dtype=np.int64)
    for i, (b, s) in enumerate(zip(bar_of_beat, beat_starts, strict=True)):
        if b < 0 or not bar_has_notes[b] or counts[bar_ids[b]] < 2:
            continue
        offset = s - bar_starts[b]
        out[i] = int(bar_ids[b]) * 4096 + min(offset, 4095)
    return out


def rep_average(emis: np.ndarray, groups: np.ndarray, weight: float) -> np.ndarray:
    """Emissions pulled towards the mean of their repetition group by ``weight``."""
    out = emis.copy()
    for g in np.unique(groups[groups >= 0]):
        idx = np.nonzero(groups == g)[0]
        out[idx] = (1 - weight) * emis[idx] + weight * emis[idx].mean(0)
    return out


def _tonic_and_dominant(key: Key) -> tuple[int, int]:
    """Chord classes of I (minor in a minor key) and of V (major)."""
    from .chords import Chord

    return (Chord(key.tonic, "maj" if key.mode == "major" else "min").class_index,
            Chord((key.tonic + 7) % 12, "maj").class_index)


def _beats_under(bounds: list[int], start: int, end: int) -> np.ndarray:
    """Indices of the beats (``bounds``: beat starts, then the end) that overlap steps ``start..end``."""
    edges = np.asarray(bounds)
    return np.flatnonzero((edges[:-1] < end) & (edges[1:] > start))


def _cadence(emis: np.ndarray, bounds: list[int], key: Key, final_note: tuple[int, int], weight: float) -> np.ndarray:
    """Bonus for the tonic chord on the beats of the melody's final note, half of it for V just before."""
    out = emis.copy()
    tonic, dominant = _tonic_and_dominant(key)
    beats = _beats_under(bounds, *final_note)
    if not len(beats):
        return out
    out[beats[0]:beats[-1] + 1, tonic] += weight
    if beats[0] > 0:
        out[beats[0] - 1, dominant] += weight / 2
    return out


def _phrase_cadences(emis: np.ndarray, bounds: list[int], key: Key, ends, weight: float) -> np.ndarray:
    """Bonus for a cadence under each phrase-closing note: I under scale degree 1 or 3, V under 2 or 7."""
    out = emis.copy()
    tonic, dominant = _tonic_and_dominant(key)
    third = 4 if key.mode == "major" else 3
    for start, end, pitch in ends:
        degree = (pitch - key.tonic) % 12
        target = tonic if degree in (0, third) else dominant if degree in (2, 11) else None
        if target is None:
            continue
        out[_beats_under(bounds, start, end), target] += weight
    return out


# ------------------------------------------------------------------------------ learnt transitions
TRANSITIONS_FORMAT = "stripe-transitions/1"


def relative_class_lut(tonic: int) -> np.ndarray:
    """Absolute chord class -> class transposed so that ``tonic`` becomes C (N stays N)."""
    return np.array([chord_from_class(c).transposed(-tonic).class_index for c in range(N_CLASSES)])


def load_transitions(path) -> dict:
    """A ``transitions.json`` (``benchmarks/learn_transitions.py``), checked: format, shapes, ranges."""
    import json
    from pathlib import Path

    from .errors import StripeError

    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise StripeError(f"unreadable transitions file ({err.__class__.__name__})", path) from None
    if not isinstance(raw, dict) or raw.get("format") != TRANSITIONS_FORMAT:
        raise StripeError(f"not a {TRANSITIONS_FORMAT} file", path)
    try:
        out = {"format": TRANSITIONS_FORMAT, "weight": float(raw.get("weight", 1.0))}
        if not 0.0 < out["weight"] <= 100.0:  # 0 x the -inf of a forbidden move is NaN: no file means no weight
            raise ValueError(f"weight must be in (0, 100], not {out['weight']}; remove the file to go without")
        for mode in ("major", "minor"):
            m = np.asarray(raw[mode], dtype=np.float64)
            if m.shape != (N_CLASSES, N_CLASSES) or not np.all(np.isfinite(m)) or (m < 0).any():
                raise ValueError(mode)
            out[mode] = m
        change = np.asarray(raw["change_by_beat"], dtype=np.float64)
        if change.ndim != 1 or not len(change) or not ((change > 0) & (change < 1)).all():
            raise ValueError("change_by_beat")
        out["change_by_beat"] = change
    except (KeyError, TypeError, ValueError) as err:
        raise StripeError(f"bad transitions file ({err})", path) from None
    return out


def corpus_chord_prior(transitions: dict, key: Key | None) -> np.ndarray:
    """Log-frequency ``[N_CLASSES]`` of each absolute chord class in ``key`` among the training songs' chords,
    as the learnt transitions imply it: the stationary distribution of their key-relative bigrams (chords
    only); N gets 0 (``none_penalty`` handles it)."""
    key = key or Key(0, "major")
    bigram = np.asarray(transitions[key.mode], dtype=np.float64)[1:, 1:]
    bigram = bigram / np.maximum(bigram.sum(1, keepdims=True), 1e-12)
    freq = np.full(len(bigram), 1.0 / len(bigram))
    for _ in range(200):  # power iteration; the smoothed table is irreducible, so it converges
        freq = freq @ bigram
    log_freq = np.log(np.maximum(freq, 1e-12))
    # centred on the frequency-weighted mean: the usual chords are corrected by about 0, as N is
    relative = np.concatenate(([0.0], log_freq - float(freq @ log_freq)))
    return relative[relative_class_lut(key.tonic)]


def transition_matrices(transitions: dict, key: Key | None, beat_starts: list[int], bar_starts: list[int]):
    """(log change-matrix ``[C, C]`` with -inf diagonal, log p(change) and log p(stay) per beat)."""
    key = key or Key(0, "major")
    lut = relative_class_lut(key.tonic)
    bigram = np.asarray(transitions[key.mode], dtype=np.float64)[np.ix_(lut, lut)]
    np.fill_diagonal(bigram, 0.0)
    bigram = bigram / np.maximum(bigram.sum(1, keepdims=True), 1e-12)
    with np.errstate(divide="ignore"):
        log_move = np.log(bigram)
    np.fill_diagonal(log_move, -np.inf)
    change = np.asarray(transitions["change_by_beat"], dtype=np.float64)
    bar_of_beat = np.searchsorted(np.asarray(bar_starts), np.asarray(beat_starts), side="right") - 1
    pos = np.zeros(len(beat_starts), dtype=np.int64)
    for i in range(1, len(beat_starts)):
        pos[i] = 0 if bar_of_beat[i] != bar_of_beat[i - 1] else pos[i - 1] + 1
    p = change[np.minimum(pos, len(change) - 1)]
    w = float(transitions.get("weight", 1.0))
    return w * log_move, w * np.log(p), w * np.log1p(-p)


def _viterbi_full(emis: np.ndarray, trans) -> list[int]:
    log_move, log_change, log_stay = trans
    n, c = emis.shape
    score = emis[0].copy()
    back = np.zeros((n, c), dtype=np.int64)
    for t in range(1, n):
        cand = score[:, None] + log_move  # [from, to]
        best_from = cand.argmax(0)
        move = cand[best_from, np.arange(c)] + log_change[t]
        stay = score + log_stay[t]
        back[t] = np.where(stay >= move, np.arange(c), best_from)
        score = np.maximum(stay, move) + emis[t]
    path = [int(score.argmax())]
    for t in range(n - 1, 0, -1):
        path.append(int(back[t, path[-1]]))
    return path[::-1]


def _sample_path_full(emis: np.ndarray, trans, temperature: float, rng: np.random.Generator) -> list[int]:
    log_move, log_change, log_stay = (x / temperature for x in trans)
    n, c = emis.shape
    alpha = np.zeros((n, c))
    alpha[0] = emis[0] - _logsumexp(emis[0])
    for t in range(1, n):
        a = np.where(np.arange(c)[:, None] == np.arange(c)[None, :], log_stay[t], log_move + log_change[t])
        alpha[t] = _logsumexp(alpha[t - 1][:, None] + a, axis=0) + emis[t]
        alpha[t] -= _logsumexp(alpha[t])
    path = [int(_draw(alpha[-1], rng))]
    for t in range(n - 1, 0, -1):
        col = log_move[:, path[-1]] + log_change[t]
        col[path[-1]] = log_stay[t]
        path.append(int(_draw(alpha[t - 1] + col, rng)))
    return path[::-1]


def _viterbi(emis: np.ndarray, change: np.ndarray) -> list[int]:
    n, c = emis.shape
    score = emis[0].copy()
    back = np.zeros((n, c), dtype=np.int64)
    for t in range(1, n):
        best_prev = int(score.argmax())
        switch = score[best_prev] - change[t]  # the best way to arrive by changing chord
        stay = score
        back[t] = np.where(stay >= switch, np.arange(c), best_prev)
        score = np.maximum(stay, switch) + emis[t]
    path = [int(score.argmax())]
    for t in range(n - 1, 0, -1):
        path.append(int(back[t, path[-1]]))
    return path[::-1]


def _logsumexp(a: np.ndarray, axis=-1) -> np.ndarray:
    m = a.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(a - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def _sample_path(emis: np.ndarray, change: np.ndarray, rng: np.random.Generator) -> list[int]:
    """Forward filtering, backward sampling for the stay/change HMM (uniform over the new chord)."""
    n, c = emis.shape
    alpha = np.zeros((n, c))
    alpha[0] = emis[0] - _logsumexp(emis[0])
    for t in range(1, n):
        move = _logsumexp(alpha[t - 1]) - change[t] - np.log(c)
        alpha[t] = np.logaddexp(alpha[t - 1], move) + emis[t]
        alpha[t] -= _logsumexp(alpha[t])
    path = [int(_draw(alpha[-1], rng))]
    for t in range(n - 1, 0, -1):
        # p(x_{t-1} | x_t) ∝ alpha_{t-1}(x_{t-1}) * trans(x_{t-1} -> x_t)
        trans = np.full(c, -change[t] - np.log(c))
        trans[path[-1]] = 0.0
        path.append(int(_draw(alpha[t - 1] + trans, rng)))
    return path[::-1]


def _draw(log_weights: np.ndarray, rng: np.random.Generator) -> int:
    p = np.exp(log_weights - log_weights.max())
    return int(rng.choice(len(p), p=p / p.sum()))


def spans_from_beats(path: list[int], beat_starts: list[int], n_steps: int) -> list[ChordSpan]:
    """Merge a per-beat class path into chord spans."""
    spans: list[ChordSpan] = []
    bounds = list(beat_starts) + [n_steps]
    for i, cls in enumerate(path):
        lo, hi = bounds[i], bounds[i + 1]
        if spans and spans[-1].chord.class_index == cls:
            spans[-1] = ChordSpan(spans[-1].start, hi, spans[-1].chord)
        else:
            spans.append(ChordSpan(lo, hi, chord_from_class(cls)))
    return spans


def density_probs(logits: np.ndarray, density: float) -> np.ndarray:
    """Sigmoid with the odds scaled by ``density`` (1 = as trained, 2 = twice the odds of a note)."""
    if density <= 0:
        raise ValueError("density must be positive")
    return 1.0 / (1.0 + np.exp(-(logits + np.log(density))))


def roll_to_notes(roll: np.ndarray, velocity: int = 72, split_at: list[int] | None = None) -> list[Note]:
    """Runs of active cells per pitch become notes; runs are also cut at ``split_at`` steps (bar lines),
    so that a held pattern re-strikes where a pianist would.

    Vectorised (a Python loop over every cell took ~1 s for a 30-minute song): a run starts where a cell
    is on and the one before is off or a cut falls, and ends where the one before is on and this one is
    off or a cut falls; per pitch, the k-th start pairs with the k-th end."""
    on = np.asarray(roll).astype(bool)
    n = on.shape[0]
    cuts = np.zeros(n + 1, dtype=bool)
    if split_at:
        cuts[[s for s in split_at if 0 < s < n]] = True
    padded = np.zeros((n + 2, on.shape[1]), dtype=bool)
    padded[1:-1] = on
    before, now = padded[:-1], padded[1:]  # rows t = 0..n: cell t-1 and cell t
    cut = cuts[:, None]
    start_pitch, start_t = np.nonzero((now & (~before | cut)).T)
    end_pitch, end_t = np.nonzero((before & (~now | cut)).T)
    order = np.lexsort((start_pitch, start_t))
    return [Note(int(start_t[i]), int(end_t[i]), int(start_pitch[i]), velocity) for i in order]

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
) -> list[ChordSpan]:
    """One chord per beat from per-step log-probabilities ``[n_steps, N_CLASSES]``.

    ``temperature == 0`` gives the Viterbi path; above 0 a path is sampled from the HMM posterior with
    emissions divided by the temperature (``rng`` makes it reproducible). ``prior_weight`` divides the
    posteriors by the song's mean posterior to that power, trading a little accuracy for chord variety.
    """
    emis = beat_log_probs(step_log_probs, beat_starts, n_steps) + key_prior(key, key_weight)
    if prior_weight:
        # posterior / prior^w (the hybrid-HMM "scaled likelihood"): frequent chords such as the tonic stop
        # drowning out the rest; the prior is the song's own mean posterior, so no corpus statistics are needed
        song_prior = np.log(np.exp(step_log_probs).mean(0) + 1e-6)
        emis -= prior_weight * song_prior
    emis[:, 0] -= none_penalty  # a harmonizer should harmonize: no-chord only when clearly best
    n_beats = len(emis)
    if n_beats == 0:
        return []
    bars = set(bar_starts)
    change = np.array([change_penalty + (0.0 if b in bars else offbar_penalty) for b in beat_starts])
    if temperature > 0:
        path = _sample_path(emis / temperature, change / temperature, rng or np.random.default_rng(0))
    else:
        path = _viterbi(emis, change)
    return spans_from_beats(path, beat_starts, n_steps)


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

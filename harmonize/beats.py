"""Beats and downbeats from the notes, for MIDI whose tick grid is not the music's (performances, audio-to-MIDI).

Nothing here reads files: the input is notes in seconds (``onsets``, ``durations``, ``velocities``).

- ``is_quantized``: most onsets sit on the file's tick grid (16ths or triplets, within a 96th of a beat),
  and not on a copy of it shifted by a fraction of a 16th -> trust the file's grid.
- ``track_beats``: a dynamic-programming beat tracker in the manner of Ellis (2007), "Beat tracking by
  dynamic programming": an onset-strength envelope (100 frames/s) from the note onsets, each weighted by
  its duration and velocity; the beat period from the envelope's autocorrelation, weighted towards the
  file's own tempo (a performance file usually has the right tempo, only its grid is off); then the beat
  sequence maximising onset strength at the beats minus a penalty for beat intervals unlike the period
  (so a drifting tempo is followed, rests are bridged at the period).
- ``track_downbeats``: which beats start bars. Each beat gets a downbeat score from the notes around it
  (a note starting there, its length, a note held across it, a rest before it, how much the pitch
  classes change there), a logistic model fitted on POP909's train songs (``benchmarks/beat_tracking.py
  --fit``); a Viterbi pass over the position in the bar (beats 1..M, rarely a bar cut short or
  lengthened) turns the scores into bar lines.

Figures on val (beat and downbeat F-measure at ±70 ms): ``benchmarks/beat_tracking.py``; speed:
``benchmarks/beat_speed.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FPS = 50  # onset envelope frames per second
MIN_BPM, MAX_BPM = 40.0, 240.0  # beat periods searched

# tuned on POP909 val (benchmarks/beat_tracking.py); see the module docstring
TEMPO_PRIOR_OCTAVES = 0.2  # width (log2) of the prior around the file's tempo
TIGHTNESS = 1000.0  # Ellis's alpha: how strongly beat intervals stick to the period
SMOOTH_FRAMES = 1.0  # Gaussian smoothing of the envelope, in frames

# downbeat model (logistic regression on the features of ``beat_features``), fitted on POP909 train by
# ``python benchmarks/beat_tracking.py --fit``
DOWNBEAT_WEIGHTS = (-0.409, 0.6566, -0.5622, 0.9223, 0.2182, 0.6586)
DOWNBEAT_BIAS = -0.9503
BAR_CHANGE_PROB = 0.02  # chance per bar that the position in the bar jumps (a short or long bar)
# onset model (logistic regression on ``onset_features``: does a note start on a beat?), same script
ONSET_WEIGHTS = (0.4712, 0.1277, 1.4763, -0.5593, 0.2352, 0.2644, 0.152, 0.5708, 0.5934)
ONSET_BIAS = -1.8273


@dataclass
class Beats:
    """Beat times in seconds, a bar-start flag per beat, the beats per bar and the median tempo."""

    times: np.ndarray
    downbeats: np.ndarray
    beats_per_bar: int
    tempo_bpm: float


# ------------------------------------------------------------------------------------ quantization


def quantization_share(onset_ticks, resolution: int, tolerance: float = 1 / 96) -> float:
    """Share of onsets within ``tolerance`` beats of the 16th or the triplet grid of a file with
    ``resolution`` ticks per beat."""
    ticks = np.asarray(onset_ticks, dtype=np.float64)
    if len(ticks) == 0 or resolution <= 0:
        return 1.0
    pos = ticks / resolution
    near = np.zeros(len(pos), dtype=bool)
    for division in (4, 3, 6):  # 16ths, triplet 8ths, triplet 16ths
        x = pos * division
        near |= np.abs(x - np.round(x)) / division <= tolerance
    return float(near.mean())


def _straight_share(pos: np.ndarray, shift: float, tolerance: float) -> float:
    x = (pos - shift) * 4
    return float((np.abs(x - np.round(x)) / 4 <= tolerance).mean())


def is_quantized(onset_ticks, resolution: int, min_share: float = 0.8, tolerance: float = 1 / 96) -> bool:
    """True when at least ``min_share`` of the onsets sit on the file's grid (``quantization_share``) and
    that grid is not a shifted copy of the music's: the 16th grid moved by a fraction of a 16th (k/48 of a
    beat) must not hold clearly more onsets (POP909's files are quantized onto a grid offset from their
    beats; offsets of a twelfth of a beat even look like triplets)."""
    ticks = np.asarray(onset_ticks, dtype=np.float64)
    if quantization_share(ticks, resolution, tolerance) < min_share:
        return False
    if len(ticks) == 0:
        return True
    pos = ticks / resolution
    best_shifted = max(_straight_share(pos, k / 48, tolerance) for k in range(1, 12))
    return _straight_share(pos, 0.0, tolerance) >= best_shifted - 0.2


# ------------------------------------------------------------------------------------ onset envelope


def onset_envelope(onsets, durations=None, velocities=None, fps: int = FPS, smooth: float | None = None,
                   weights=None) -> np.ndarray:
    """Onset strength per frame: each onset adds its ``weights`` (default: (0.5 + its duration, capped at
    1 s) x velocity/100), then a Gaussian of ``smooth`` frames; normalised to unit standard deviation."""
    onsets = np.asarray(onsets, dtype=np.float64)
    n = int(np.ceil((onsets.max() if len(onsets) else 0.0) * fps)) + 2 * fps
    env = np.zeros(n)
    if len(onsets) == 0:
        return env
    dur = np.full(len(onsets), 0.25) if durations is None else np.asarray(durations, dtype=np.float64)
    vel = np.full(len(onsets), 90.0) if velocities is None else np.asarray(velocities, dtype=np.float64)
    smooth = SMOOTH_FRAMES if smooth is None else smooth
    weight = (0.5 + np.clip(dur, 0.0, 1.0)) * np.clip(vel, 1, 127) / 100.0 if weights is None else \
        np.asarray(weights, dtype=np.float64)
    frames = np.clip(np.round(onsets * fps).astype(np.int64), 0, n - 1)
    np.add.at(env, frames, weight)
    if smooth > 0:
        half = int(np.ceil(3 * smooth))
        kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / smooth) ** 2)
        env = np.convolve(env, kernel, mode="same")
    sd = env.std()
    return env / sd if sd > 0 else env


def onset_features(onsets, durations, pitches, velocities, period_s: float) -> np.ndarray:
    """``[n_notes, 9]`` evidence that a note starts on a beat (notes in ``onsets`` order, which must be
    sorted): its length, the time to the next and from the previous onset, the rest before it (all in
    beats of ``period_s``, log-scaled), a rest flag, its velocity against the song's, the leap to it, and
    whether it is longer than the notes before and after it."""
    on = np.asarray(onsets, dtype=np.float64)
    dur = np.asarray(durations, dtype=np.float64)
    pitch = np.asarray(pitches, dtype=np.float64)
    vel = np.full(len(on), 90.0) if velocities is None else np.asarray(velocities, dtype=np.float64)
    p = max(period_s, 1e-3)
    after = np.diff(on, append=on[-1] + p) / p
    before = np.diff(on, prepend=on[0] - p) / p
    prev_end = np.concatenate([[on[0] - p], (on + dur)[:-1]])
    rest = np.clip((on - prev_end) / p, 0, 4)
    d = np.clip(dur / p, 0, 4)
    vrel = (vel - vel.mean()) / (vel.std() + 1e-6)
    leap = np.abs(np.diff(pitch, prepend=pitch[:1])) / 12
    longer_prev = (d > np.concatenate([[0.0], d[:-1]])).astype(float)
    longer_next = (d > np.concatenate([d[1:], [0.0]])).astype(float)
    return np.stack([np.log1p(d), np.log1p(np.clip(after, 0, 4)), np.log1p(np.clip(before, 0, 4)),
                     np.log1p(rest), (rest > 0.2).astype(float), vrel, leap, longer_prev, longer_next], 1)


def onset_weights(onsets, durations, pitches, velocities, period_s: float) -> np.ndarray:
    """p(the note starts on a beat), from ``onset_features`` (a logistic model fitted on POP909 train)."""
    z = onset_features(onsets, durations, pitches, velocities, period_s) @ np.asarray(ONSET_WEIGHTS) + ONSET_BIAS
    return 1.0 / (1.0 + np.exp(-z))


def estimate_period(env: np.ndarray, prior_bpm: float | None = None, fps: int = FPS,
                    prior_octaves: float | None = None) -> float:
    """Beat period in frames: the autocorrelation peak of ``env`` (MIN_BPM..MAX_BPM), weighted by a
    log-Gaussian around ``prior_bpm`` (default 120)."""
    prior_octaves = TEMPO_PRIOR_OCTAVES if prior_octaves is None else prior_octaves
    lo, hi = int(np.floor(60.0 * fps / MAX_BPM)), int(np.ceil(60.0 * fps / MIN_BPM))
    x = env - env.mean()
    n = len(x)
    if n < 2 * hi:
        x = np.concatenate([x, np.zeros(2 * hi - n)])
        n = len(x)
    spec = np.fft.rfft(x, 2 * n)
    acf = np.fft.irfft(spec * np.conj(spec))[: hi + 2]
    acf = acf / max(acf[0], 1e-12)
    lags = np.arange(lo, hi + 1)
    center = 60.0 * fps / (prior_bpm or 120.0)
    weight = np.exp(-0.5 * (np.log2(lags / center) / prior_octaves) ** 2)
    score = acf[lo: hi + 1] * weight
    k = int(np.argmax(score))
    if 0 < k < len(score) - 1:  # parabolic refinement
        a, b, c = score[k - 1], score[k], score[k + 1]
        denom = a - 2 * b + c
        if denom < 0:
            return float(lags[k] + 0.5 * (a - c) / denom)
    return float(lags[k])


def local_periods(env: np.ndarray, period: float, window_s: float = 12.0, hop_s: float = 2.0,
                  spread: float = 0.15, fps: int = FPS) -> np.ndarray:
    """The beat period per frame: the autocorrelation peak within ±``spread`` of ``period``, in windows
    of ``window_s`` every ``hop_s`` (median-smoothed, interpolated), so that a drifting tempo is followed."""
    n = len(env)
    lo, hi = max(1, int(np.floor(period * (1 - spread)))), int(np.ceil(period * (1 + spread)))
    win, hop = int(window_s * fps), int(hop_s * fps)
    if n < win + hi or hi - lo < 2:
        return np.full(n, float(period))
    lags = np.arange(lo, hi + 1)
    starts = np.arange(0, n - win + 1, hop)
    x = np.lib.stride_tricks.sliding_window_view(env, win)[starts]
    x = x - x.mean(axis=1, keepdims=True)
    spec = np.fft.rfft(x, 2 * win, axis=1)
    acf = np.fft.irfft(spec * np.conj(spec), axis=1)[:, lags]
    energy = (x * x).sum(axis=1)
    keep = energy > 0
    if keep.sum() < 3:
        return np.full(n, float(period))
    weight = np.exp(-0.5 * (np.log(lags / period) / spread) ** 2)  # stay near the song's tempo
    values = lags[np.argmax(acf[keep] / energy[keep, None] * weight, axis=1)].astype(np.float64)
    centers = starts[keep] + win / 2
    padded = np.pad(values, 2, mode="edge")
    smooth = np.median(np.lib.stride_tricks.sliding_window_view(padded, 5), axis=1)
    return np.interp(np.arange(n), centers, smooth)


def dp_beats(env: np.ndarray, period, tightness: float | None = None) -> np.ndarray:
    """Ellis's dynamic programme: beat frames maximising onset strength minus ``tightness`` x
    (log(interval / period))^2 per interval; ``period`` is one number or one per frame."""
    tightness = TIGHTNESS if tightness is None else tightness
    n = len(env)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    periods = np.broadcast_to(np.asarray(period, dtype=np.float64), (n,))
    lo, hi = max(1, int(round(periods.min() / 2))), max(2, int(round(2 * periods.max())))
    offsets = np.arange(hi, lo - 1, -1).astype(np.float64)  # candidate distances back to the previous beat
    log_offsets = np.log(offsets)
    score = env.astype(np.float64).copy()
    back = np.full(n, -1, dtype=np.int64)
    # the interval penalty of every frame and candidate (one array: the loop below only gathers)
    penalty = -tightness * (log_offsets[None, :] - np.log(periods)[:, None]) ** 2
    base = np.arange(lo)[:, None] - offsets[None, :].astype(np.int64)  # previous-beat candidates, oldest first
    rows = np.arange(lo)
    # beats are at least ``lo`` frames apart, so the frames of a block of ``lo`` only look back at frames
    # before the block: each block is one vectorised step
    for a in range(lo, n, lo):
        m = min(lo, n - a)
        idx = base[:m] + a
        cand = score[np.maximum(idx, 0)] + penalty[a: a + m]
        if a < hi:
            cand[idx < 0] = -np.inf
        j = np.argmax(cand, axis=1)
        best = cand[rows[:m], j]
        gain = best > 0  # a chain only helps when it adds
        t = a + rows[:m][gain]
        score[t] += best[gain]
        back[t] = idx[rows[:m], j][gain]
    # the last beat: the best score within the last period
    tail = max(0, n - int(round(periods[-1])) - 1)
    t = tail + int(np.argmax(score[tail:]))
    path = [t]
    while back[t] >= 0:
        t = int(back[t])
        path.append(t)
    return np.array(path[::-1], dtype=np.int64)


def _fill(times: np.ndarray, period_s: float, start: float, end: float) -> np.ndarray:
    """Beats extended at the period to cover ``[start, end]``; gaps over 1.5 periods get beats inside."""
    if len(times) == 0:
        times = np.array([start])
    filled = [times[0]]
    for t in times[1:]:
        gap = t - filled[-1]
        k = int(round(gap / period_s))
        if k >= 2:
            filled.extend(filled[-1] + gap * np.arange(1, k) / k)
        filled.append(t)
    out = np.array(filled)
    head = np.arange(1, int(np.ceil((out[0] - start) / period_s)) + 1) * period_s
    out = np.concatenate([out[0] - head[::-1], out]) if len(head) else out
    tail = np.arange(1, int(np.ceil((end - out[-1]) / period_s)) + 1) * period_s
    return np.concatenate([out, out[-1] + tail]) if len(tail) else out


def track_beats(onsets, durations=None, velocities=None, tempo_bpm: float | None = None,
                start: float | None = None, end: float | None = None, pitches=None) -> np.ndarray:
    """Beat times (seconds) from note onsets; covers ``[start, end]`` (default: first onset to last onset
    + a beat) at the found period where the notes give no evidence. With ``durations`` and ``pitches``,
    a second pass weights each onset by how likely it is to be on a beat (``onset_weights``)."""
    onsets = np.asarray(onsets, dtype=np.float64)
    if len(onsets) == 0:
        raise ValueError("no notes to track beats from")
    order = np.argsort(onsets, kind="stable")
    onsets = onsets[order]
    durations = None if durations is None else np.asarray(durations, dtype=np.float64)[order]
    velocities = None if velocities is None else np.asarray(velocities, dtype=np.float64)[order]
    env = onset_envelope(onsets, durations, velocities)
    # a handful of notes says nothing about the tempo: keep the file's
    period = estimate_period(env, tempo_bpm) if len(onsets) >= 4 else 60.0 * FPS / (tempo_bpm or 120.0)
    if durations is not None and pitches is not None:
        pitches = np.asarray(pitches)[order]
        w = onset_weights(onsets, durations, pitches, velocities, period / FPS)
        env = onset_envelope(onsets, durations, velocities, weights=w)
    frames = dp_beats(env, local_periods(env, period))
    times = frames / FPS
    period_s = period / FPS
    lo = float(onsets.min()) if start is None else start
    hi = float(onsets.max()) + period_s if end is None else end
    times = times[(times >= lo - period_s) & (times <= hi + period_s)]
    return _fill(times, period_s, lo, hi)


# ------------------------------------------------------------------------------------ downbeats


def beat_features(beat_times: np.ndarray, onsets, durations, pitches) -> np.ndarray:
    """``[n_beats, 6]`` downbeat evidence per beat (see the module docstring)."""
    beat_times = np.asarray(beat_times, dtype=np.float64)
    onsets = np.asarray(onsets, dtype=np.float64)
    ends = onsets + np.asarray(durations, dtype=np.float64)
    pcs = np.asarray(pitches, dtype=np.int64) % 12
    n = len(beat_times)
    period = np.diff(beat_times, append=beat_times[-1] + (beat_times[-1] - beat_times[-2] if n > 1 else 0.5))
    if n > 1:
        period[-1] = period[-2]
    feats = np.zeros((n, 6))
    order = np.argsort(onsets, kind="stable")
    onsets, ends, pcs = onsets[order], ends[order], pcs[order]
    lengths = ends - onsets
    cum_len = np.concatenate([[0.0], np.cumsum(lengths)])
    reach = np.maximum.accumulate(ends) if len(ends) else ends  # the latest end among the first i notes
    near_lo = np.searchsorted(onsets, beat_times - 0.15 * period, side="left")
    near_hi = np.searchsorted(onsets, beat_times + 0.15 * period, side="left")
    before_lo = np.searchsorted(onsets, beat_times - period, side="left")
    near = near_hi > near_lo
    feats[:, 0] = near
    feats[:, 1] = np.where(near, np.log1p((cum_len[near_hi] - cum_len[near_lo]) / period), 0.0)
    # a note started before the beat's window and still sounding after the beat: held across it
    held = np.zeros(n, dtype=bool)
    has_earlier = near_lo > 0
    held[has_earlier] = reach[near_lo[has_earlier] - 1] > beat_times[has_earlier] + 0.1 * period[has_earlier]
    feats[:, 2] = held
    before = near_lo > before_lo
    feats[:, 3] = near & ~before & ~held
    # pitch-class change: duration-weighted histograms of the two beats after vs the two before
    hist = np.zeros((n + 1, 12))
    idx = np.clip(np.searchsorted(beat_times, onsets, side="right") - 1, 0, n - 1)
    np.add.at(hist, (idx, pcs), np.minimum(ends - onsets, 2.0))
    cum = np.concatenate([np.zeros((1, 12)), np.cumsum(hist[:n], axis=0)])
    k = np.arange(n)
    after = cum[np.minimum(n, k + 2)] - cum[k]
    prior = cum[k] - cum[np.maximum(0, k - 2)]
    na, nb = np.linalg.norm(after, axis=1), np.linalg.norm(prior, axis=1)
    both = (na > 0) & (nb > 0)
    feats[both, 4] = 1.0 - (after[both] * prior[both]).sum(1) / (na[both] * nb[both])
    # the beat's note length against the song's typical one
    feats[:, 5] = feats[:, 1] - (feats[feats[:, 0] > 0, 1].mean() if np.any(feats[:, 0] > 0) else 0.0)
    return feats


def downbeat_logits(features: np.ndarray, weights=None, bias: float | None = None) -> np.ndarray:
    w = np.asarray(DOWNBEAT_WEIGHTS if weights is None else weights, dtype=np.float64)
    return features @ w + (DOWNBEAT_BIAS if bias is None else bias)


def bar_positions(logits: np.ndarray, beats_per_bar: int, change_prob: float | None = None) -> np.ndarray:
    """Viterbi over the position in the bar (0 = downbeat): advance by one beat each beat, or (rarely)
    jump to any position; emissions are the downbeat log-odds on position 0. Returns positions."""
    change_prob = BAR_CHANGE_PROB if change_prob is None else change_prob
    n, m = len(logits), beats_per_bar
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    log_sig = -np.logaddexp(0.0, -logits)  # log p(downbeat)
    log_not = -np.logaddexp(0.0, logits)
    emit = np.tile(log_not[:, None], (1, m))
    emit[:, 0] = log_sig
    stay, jump = np.log(1 - change_prob), np.log(change_prob / max(1, m - 1))
    trans = np.full((m, m), jump)
    for i in range(m):
        trans[i, (i + 1) % m] = stay
    delta = emit[0] - np.log(m)
    back = np.zeros((n, m), dtype=np.int64)
    for k in range(1, n):
        cand = delta[:, None] + trans
        back[k] = np.argmax(cand, axis=0)
        delta = cand[back[k], np.arange(m)] + emit[k]
    path = [int(np.argmax(delta))]
    for k in range(n - 1, 0, -1):
        path.append(int(back[k, path[-1]]))
    return np.array(path[::-1], dtype=np.int64)


def track_downbeats(beat_times, onsets, durations, pitches, beats_per_bar: int = 4) -> np.ndarray:
    """Bar-start flag per beat."""
    feats = beat_features(beat_times, onsets, durations, pitches)
    return bar_positions(downbeat_logits(feats), beats_per_bar) == 0


def infer_beats(onsets, durations, pitches, velocities=None, tempo_bpm: float | None = None,
                beats_per_bar: int = 4, start: float | None = None, end: float | None = None) -> Beats:
    """Beats and downbeats from the notes (``track_beats`` then ``track_downbeats``)."""
    times = track_beats(onsets, durations, velocities, tempo_bpm, start, end, pitches=pitches)
    if len(times) < 2:
        times = np.array([times[0], times[0] + 60.0 / (tempo_bpm or 120.0)])
    flags = track_downbeats(times, onsets, durations, pitches, beats_per_bar)
    tempo = 60.0 / float(np.median(np.diff(times)))
    return Beats(times, flags, beats_per_bar, tempo)


# ------------------------------------------------------------------------------------ scoring


def f_measure(estimated, reference, tolerance: float = 0.07) -> float:
    """F-measure of beat times: each reference beat matches at most one estimate within ``tolerance``
    seconds (greedy in time order, as in mir_eval's matching for sorted, well-spaced beats). Estimates
    outside the annotated span (± tolerance) are not counted."""
    est = np.sort(np.asarray(estimated, dtype=np.float64))
    ref = np.sort(np.asarray(reference, dtype=np.float64))
    if len(ref) == 0 or len(est) == 0:
        return 0.0
    est = est[(est >= ref[0] - tolerance) & (est <= ref[-1] + tolerance)]
    if len(est) == 0:
        return 0.0
    i = j = hits = 0
    while i < len(est) and j < len(ref):
        d = est[i] - ref[j]
        if abs(d) <= tolerance:
            hits += 1
            i += 1
            j += 1
        elif d < 0:
            i += 1
        else:
            j += 1
    if hits == 0:
        return 0.0
    precision, recall = hits / len(est), hits / len(ref)
    return 2 * precision * recall / (precision + recall)

"""Evaluation metrics: the paper's pianoroll metrics and the standard harmonization metrics.

Two families, both numpy only:

**Paper metrics** ("Of All StrIPEs" §IV-F, paper.md §4.1; we follow the *text*, not the 2024 code),
on binary pianorolls ``[T, 128]`` or ``[T, k*128]`` (several tracks, folded to pitch), 16th grid:

- ``CS`` (chroma similarity, ↑, -100..100), ``SSMD`` (self-similarity-matrix distance, ↓, 0..100),
  ``GS`` (grooving similarity, ↑, 0..100), ``NDD`` (note density distance, ↓, 0..100).

Conventions (decided here, tested in ``tests/test_metrics.py``):

- An onset is a 0→1 transition of one (track, pitch) cell, or a cell active at t = 0. Onsets are
  found per track and then summed over tracks, so the same pitch starting in two tracks counts twice.
- Activity (for NDD) is folded by OR over tracks: a pitch counts once per step however many tracks
  play it.
- Segments (half-measures of ``steps_per_bar // 2`` steps, quarters of ``steps_per_bar // 4``) are cut
  from step 0; a trailing partial segment is kept.
- Cosine with an all-zero vector: in CS, a half-measure where *both* rolls have no onset is skipped
  (nothing to compare) and one where only one is empty scores 0; if every half-measure is skipped
  CS = 100 (both silent, identical). In the SSMs, cos(0, 0) = 1 and cos(0, x≠0) = 0, so the diagonal
  is always 1 and two silent half-measures of one piece count as "the same".
- NDD reading of "average percentage of missing pitches in the prediction, capped by the target
  count": per step with n_tgt > 0 active pitches, missing = max(0, n_tgt − n_pred) (so extra predicted
  pitches never compensate more than the target count), percentage = 100·missing / n_tgt; NDD is the
  mean over those steps. Steps where the target is silent are not scored; a silent target gives 0.
  It counts pitches, not which pitches (that is CS's job).

**Harmonization metrics** (anchors.md §2; SurpriseNet / Yeh et al.) on a melody ``[T]`` (MIDI pitch
per step, −1 = rest) and one ``Chord`` per step. CHE, CC, CTD and chord accuracy use chord *frames*
of ``steps_per_frame`` steps (4 = one label per beat on the 16th grid; the frame's label is the chord
sounding at its first step); CTnCTR, PCS and MCTD use every 16th step. Conventions:

- Chord identity for CHE/CC is the chord stage's 109-class vocabulary (``Chord.class_index``; rare
  qualities folded, slash basses ignored). N (no chord) frames are left out of CHE, CC and CTD; CTD
  averages over adjacent frame pairs where both chords are not N.
- CHE uses the natural log without the reference code's +1e-6.
- TC is Harte et al. 2006's 6-d tonal centroid (r1 = 1, r2 = 1, r3 = 0.5), averaged over the set's
  pitch classes.
- CTnCTR: melody steps under an N chord are not counted. A non-chord tone is a passing/neighbour tone
  (n_p) when the next melody note of a different pitch (rests skipped, searched to the end of the
  song, not just to the frame end as in the reference code) is a chord tone of the chord sounding at
  that note and lies within 2 semitones (real MIDI pitches, so B4→C5 is 1 semitone).
- PCS: the interval is taken as the melody *above* the chord tone, ``(m − c) mod 12``: unison, m3, M3,
  P5, m6, M6 → +1, P4 → 0, else −1. This keeps the rule's P4/P5 distinction, which the
  ``min(d, 12 − d)`` folding cannot (it maps both to 5); ``pcs_mode="folded"`` (interval class 5
  scored 0) and ``pcs_mode="reference"`` (``|m − c|`` unfolded, as SurpriseNet's code) are available.
- MCTD uses the true Euclidean norm (SurpriseNet's code computes ``sqrt(sum(a − b))**2`` = |Σ(a − b)|,
  so published MCTD figures are not comparable). It is averaged over 16th steps where the melody
  sounds over a non-N chord, which is the duration-weighted note average with each note split at
  chord changes.
- Chord accuracy (per frame): ``level="root"`` compares roots, ``"majmin"`` compares root and family,
  ``"class"`` compares the 109-class index. Family = minor if the quality has a minor third and no
  major third (min, min7, min6, min9, minmaj7, dim, hdim7, dim7), else major (maj, 7, maj7, maj6, 9,
  maj9, aug, sus2, sus4, sus4(b7): sus chords have no third and go with major, as their usual
  resolution). N is a label of its own at every level: N = N is correct, N against a chord is wrong.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .chords import QUALITY_INTERVALS, Chord
from .song import ChordSpan, Note
from .structure import chords_per_step

N_PITCHES = 128

# ---------------------------------------------------------------------------------------------------
# paper metrics (pianorolls)


def _as_tracks(roll: np.ndarray) -> np.ndarray:
    """``[T, k*128]`` -> binary ``[T, k, 128]``."""
    roll = np.asarray(roll)
    if roll.ndim != 2 or roll.shape[1] % N_PITCHES != 0 or roll.shape[1] == 0:
        raise ValueError(f"expected a pianoroll [T, k*128], got shape {roll.shape}")
    return (roll.reshape(roll.shape[0], -1, N_PITCHES) > 0).astype(np.int64)


def _check_pair(target: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    tgt, prd = _as_tracks(target), _as_tracks(pred)
    if tgt.shape[0] != prd.shape[0]:
        raise ValueError(f"target has {tgt.shape[0]} steps but prediction has {prd.shape[0]}")
    return tgt, prd


def onsets(roll: np.ndarray) -> np.ndarray:
    """Onset counts per step and pitch ``[T, 128]``: 0→1 transitions per track, summed over tracks."""
    tracks = _as_tracks(roll)
    prev = np.concatenate([np.zeros_like(tracks[:1]), tracks[:-1]], axis=0)
    return ((tracks == 1) & (prev == 0)).sum(axis=1)


def _segment_sums(x: np.ndarray, seg: int) -> np.ndarray:
    """Sum rows of ``x`` [T, ...] over consecutive segments of ``seg`` steps (last one may be short)."""
    n_seg = -(-x.shape[0] // seg)
    pad = n_seg * seg - x.shape[0]
    if pad:
        x = np.concatenate([x, np.zeros((pad,) + x.shape[1:], dtype=x.dtype)], axis=0)
    return x.reshape((n_seg, seg) + x.shape[1:]).sum(axis=1)


def chroma_onsets(roll: np.ndarray, steps_per_bar: int = 16) -> np.ndarray:
    """Number of onsets per chroma per half-measure: ``[n_half_measures, 12]`` float."""
    on = onsets(roll)  # [T, 128]
    chroma = np.zeros((on.shape[0], 12), dtype=np.float64)
    for pc in range(12):
        chroma[:, pc] = on[:, pc::12].sum(axis=1)
    return _segment_sums(chroma, max(1, steps_per_bar // 2))


def _row_cosines(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cosine per row pair, and a mask of rows where both are all-zero."""
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    both_empty = (na == 0) & (nb == 0)
    denom = np.where((na > 0) & (nb > 0), na * nb, 1.0)
    cos = np.where((na > 0) & (nb > 0), (a * b).sum(axis=1) / denom, 0.0)
    return cos, both_empty


def self_similarity(vectors: np.ndarray) -> np.ndarray:
    """Pairwise cosine similarity ``[N, N]``; cos(0, 0) = 1, cos(0, x≠0) = 0."""
    norms = np.linalg.norm(vectors, axis=1)
    safe = np.where(norms > 0, norms, 1.0)
    unit = vectors / safe[:, None]
    ssm = unit @ unit.T
    empty = norms == 0
    ssm[np.ix_(empty, empty)] = 1.0
    return ssm


def chroma_similarity(target: np.ndarray, pred: np.ndarray, steps_per_bar: int = 16) -> float:
    """CS ↑ in −100..100: mean cosine of corresponding half-measure chroma-onset vectors ×100."""
    tgt, prd = _check_pair(target, pred)
    ct = chroma_onsets(tgt.reshape(tgt.shape[0], -1), steps_per_bar)
    cp = chroma_onsets(prd.reshape(prd.shape[0], -1), steps_per_bar)
    cos, both_empty = _row_cosines(ct, cp)
    if np.all(both_empty):
        return 100.0
    return float(100.0 * cos[~both_empty].mean())


def ssm_distance(target: np.ndarray, pred: np.ndarray, steps_per_bar: int = 16) -> float:
    """SSMD ↓ in 0..100: mean |SSM_tgt − SSM_pred| (entries in [0, 2]) ×50."""
    tgt, prd = _check_pair(target, pred)
    st = self_similarity(chroma_onsets(tgt.reshape(tgt.shape[0], -1), steps_per_bar))
    sp = self_similarity(chroma_onsets(prd.reshape(prd.shape[0], -1), steps_per_bar))
    return float(50.0 * np.abs(st - sp).mean())


def grooving_pattern(roll: np.ndarray, steps_per_bar: int = 16) -> np.ndarray:
    """Binary vector per quarter note: 1 if any onset (any pitch, any track) falls in it."""
    per_step = onsets(roll).sum(axis=1)
    return (_segment_sums(per_step, max(1, steps_per_bar // 4)) > 0).astype(np.int64)


def grooving_similarity(target: np.ndarray, pred: np.ndarray, steps_per_bar: int = 16) -> float:
    """GS ↑ in 0..100: percentage of quarter notes where the grooving patterns agree."""
    tgt, prd = _check_pair(target, pred)
    gt = grooving_pattern(tgt.reshape(tgt.shape[0], -1), steps_per_bar)
    gp = grooving_pattern(prd.reshape(prd.shape[0], -1), steps_per_bar)
    if gt.size == 0:
        return 100.0
    return float(100.0 * (1.0 - np.mean(gt ^ gp)))


def note_density_distance(target: np.ndarray, pred: np.ndarray) -> float:
    """NDD ↓ in 0..100: mean over steps with target notes of 100·max(0, n_tgt − n_pred)/n_tgt.

    ``n`` = number of distinct active pitches per 16th (tracks folded by OR).
    """
    tgt, prd = _check_pair(target, pred)
    nt = tgt.max(axis=1).sum(axis=1) if tgt.shape[0] else np.zeros(0)
    npred = prd.max(axis=1).sum(axis=1) if prd.shape[0] else np.zeros(0)
    scored = nt > 0
    if not np.any(scored):
        return 0.0
    missing = np.maximum(0, nt[scored] - npred[scored])
    return float(100.0 * np.mean(missing / nt[scored]))


def paper_metrics(target: np.ndarray, pred: np.ndarray, steps_per_bar: int = 16) -> dict[str, float]:
    """CS, SSMD, GS and NDD of one prediction against its target (see the module docstring)."""
    return {
        "CS": chroma_similarity(target, pred, steps_per_bar),
        "SSMD": ssm_distance(target, pred, steps_per_bar),
        "GS": grooving_similarity(target, pred, steps_per_bar),
        "NDD": note_density_distance(target, pred),
    }


def metrics_by_bucket(
    target: np.ndarray, pred: np.ndarray, bucket_bars: int = 16, steps_per_bar: int = 16
) -> list[dict[str, float]]:
    """Paper metrics per position bucket (bars [0, b), [b, 2b), ...) for length extrapolation.

    Each dict also holds ``start_bar`` and ``end_bar`` (exclusive; the last bucket may be short).
    Onsets at a bucket's first step are judged within the bucket (a note held across the boundary
    counts as an onset there), so buckets are scored as independent excerpts.
    """
    _check_pair(target, pred)
    size = bucket_bars * steps_per_bar
    out = []
    for lo in range(0, np.asarray(target).shape[0], size):
        hi = min(lo + size, np.asarray(target).shape[0])
        row: dict[str, float] = {"start_bar": lo // steps_per_bar, "end_bar": -(-hi // steps_per_bar)}
        row.update(paper_metrics(np.asarray(target)[lo:hi], np.asarray(pred)[lo:hi], steps_per_bar))
        out.append(row)
    return out


# ---------------------------------------------------------------------------------------------------
# harmonization metrics (melody + chords)

_TC_RADII = (1.0, 1.0, 0.5)
_TC_ANGLES = (7 * math.pi / 6, 3 * math.pi / 2, 2 * math.pi / 3)  # fifths, minor thirds, major thirds


def _tc_basis() -> np.ndarray:
    basis = np.zeros((12, 6))
    for pc in range(12):
        for k, (r, a) in enumerate(zip(_TC_RADII, _TC_ANGLES, strict=True)):
            basis[pc, 2 * k] = r * math.sin(pc * a)
            basis[pc, 2 * k + 1] = r * math.cos(pc * a)
    return basis


_TC = _tc_basis()


def tonal_centroid(pitch_classes: Sequence[int]) -> np.ndarray:
    """Harte et al. (2006) 6-d tonal centroid of a pitch-class set (mean of its pitch classes)."""
    pcs = sorted({int(p) % 12 for p in pitch_classes})
    if not pcs:
        raise ValueError("the tonal centroid of an empty pitch-class set is undefined")
    return _TC[pcs].mean(axis=0)


def melody_per_step(notes: Sequence[Note], n_steps: int) -> np.ndarray:
    """``[n_steps]`` int64 MIDI pitch per step, −1 for rests; the highest note wins on overlaps."""
    out = np.full(n_steps, -1, dtype=np.int64)
    for note in notes:
        lo, hi = max(0, note.start), min(n_steps, note.end)
        if hi > lo:
            out[lo:hi] = np.maximum(out[lo:hi], note.pitch)
    return out


def _as_chord_steps(chords, n_steps: int | None = None) -> list[Chord]:
    """Accept a per-step ``list[Chord]`` or a ``list[ChordSpan]`` (needs ``n_steps``)."""
    chords = list(chords)
    if chords and isinstance(chords[0], ChordSpan):
        if n_steps is None:
            n_steps = max(s.end for s in chords)
        return chords_per_step(chords, n_steps)
    return chords


def chord_frames(chords: Sequence[Chord], steps_per_frame: int = 4) -> list[Chord]:
    """One chord per frame: the chord sounding at the frame's first step."""
    return list(chords[::steps_per_frame])


def chord_histogram_entropy(frames: Sequence[Chord]) -> float:
    """CHE: entropy (nats) of the chord-class histogram over non-N frames (0 if none)."""
    ids = [c.class_index for c in frames if not c.is_none]
    if not ids:
        return 0.0
    _, counts = np.unique(ids, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def chord_coverage(frames: Sequence[Chord]) -> int:
    """CC: number of distinct chord classes among non-N frames."""
    return len({c.class_index for c in frames if not c.is_none})


def chord_tonal_distance(frames: Sequence[Chord]) -> float:
    """CTD: mean L2 distance of tonal centroids of adjacent frames (pairs with an N skipped); nan if none."""
    dists = [
        float(np.linalg.norm(tonal_centroid(b.pitch_classes) - tonal_centroid(a.pitch_classes)))
        for a, b in zip(frames[:-1], frames[1:], strict=True)
        if not a.is_none and not b.is_none
    ]
    return float(np.mean(dists)) if dists else float("nan")


def chord_tone_ratio(melody: np.ndarray, chords: Sequence[Chord]) -> float:
    """CTnCTR = (n_c + n_p) / (n_c + n_n) over 16th steps (module docstring); nan without melody."""
    melody = np.asarray(melody)
    pcs = [set(c.pitch_classes) for c in chords]
    n_c = n_n = n_p = 0
    for t, m in enumerate(melody):
        if m < 0 or chords[t].is_none:
            continue
        if m % 12 in pcs[t]:
            n_c += 1
            continue
        n_n += 1
        for j in range(t + 1, len(melody)):
            nxt = melody[j]
            if nxt < 0 or nxt == m:
                continue
            if abs(int(nxt) - int(m)) <= 2 and nxt % 12 in pcs[j]:
                n_p += 1
            break
    if n_c + n_n == 0:
        return float("nan")
    return (n_c + n_p) / (n_c + n_n)


def _pcs_table(mode: str) -> np.ndarray:
    """Score of an interval d in 0..11 (melody above chord tone for "above")."""
    table = np.full(12, -1.0)
    if mode == "above":
        table[[0, 3, 4, 7, 8, 9]] = 1.0
        table[5] = 0.0
    elif mode == "reference":
        # |m − c| on pitch classes, as SurpriseNet: d in 0..11 with the same table, unfolded
        table[[0, 3, 4, 7, 8, 9]] = 1.0
        table[5] = 0.0
    elif mode == "folded":
        table[[0, 3, 4]] = 1.0  # unison, m3/M6, M3/m6
        table[5] = 0.0  # P4/P5 cannot be told apart once folded: scored like the P4
    else:
        raise ValueError(f"pcs_mode must be above, folded or reference, not {mode!r}")
    return table


def pitch_consonance_score(melody: np.ndarray, chords: Sequence[Chord], pcs_mode: str = "above") -> float:
    """PCS in −1..1: mean interval score over (melody step, chord tone) pairs; nan without pairs."""
    table = _pcs_table(pcs_mode)
    total, count = 0.0, 0
    for t, m in enumerate(np.asarray(melody)):
        if m < 0:
            continue
        for c in chords[t].pitch_classes:
            mp = int(m) % 12
            if pcs_mode == "above":
                d = (mp - c) % 12
            elif pcs_mode == "reference":
                d = abs(mp - c)
            else:
                d = min(abs(mp - c), 12 - abs(mp - c))
            total += table[d]
            count += 1
    return total / count if count else float("nan")


def melody_chord_tonal_distance(melody: np.ndarray, chords: Sequence[Chord]) -> float:
    """MCTD: mean over melody steps under a chord of ‖TC({m}) − TC(chord)‖₂ (true L2); nan if none."""
    dists = [
        float(np.linalg.norm(_TC[int(m) % 12] - tonal_centroid(chords[t].pitch_classes)))
        for t, m in enumerate(np.asarray(melody))
        if m >= 0 and not chords[t].is_none
    ]
    return float(np.mean(dists)) if dists else float("nan")


def _family(chord: Chord) -> str:
    iv = set(QUALITY_INTERVALS[chord.quality])
    return "min" if 3 in iv and 4 not in iv else "maj"


def _label(chord: Chord, level: str):
    if chord.is_none:
        return "N"
    if level == "root":
        return chord.root
    if level == "majmin":
        return (chord.root, _family(chord))
    if level == "class":
        return chord.class_index
    raise ValueError(f"level must be root, majmin or class, not {level!r}")


def chord_label(chord: Chord, level: str = "majmin"):
    """What ``chord_accuracy`` compares at ``level`` (root, majmin or class); ``"N"`` for no chord."""
    return _label(chord, level)


def change_rate(frames: Sequence[Chord], level: str = "majmin") -> float:
    """P(the label at ``level`` changes between adjacent frames), N a label of its own; nan under two frames.
    Times the beats in a bar, with one frame a beat: the chord changes a bar."""
    labels = [_label(c, level) for c in frames]
    if len(labels) < 2:
        return float("nan")
    return float(np.mean([a != b for a, b in zip(labels[:-1], labels[1:], strict=True)]))


def chord_accuracy(
    pred_chords, ref_chords, steps_per_frame: int = 4, level: str = "majmin"
) -> float:
    """Frame-wise chord accuracy in 0..1 (module docstring for levels and N); nan if no frames."""
    ref = _as_chord_steps(ref_chords)
    pred = _as_chord_steps(pred_chords, len(ref))
    if len(pred) != len(ref):
        raise ValueError(f"prediction has {len(pred)} steps but reference has {len(ref)}")
    pf, rf = chord_frames(pred, steps_per_frame), chord_frames(ref, steps_per_frame)
    if not rf:
        return float("nan")
    return float(np.mean([_label(p, level) == _label(r, level) for p, r in zip(pf, rf, strict=True)]))


def harmonization_metrics(
    melody: np.ndarray,
    chords,
    ref_chords=None,
    steps_per_frame: int = 4,
    pcs_mode: str = "above",
) -> dict[str, float]:
    """CHE, CC, CTD, CTnCTR, PCS, MCTD (and accuracies when ``ref_chords`` is given).

    ``chords`` / ``ref_chords``: one ``Chord`` per step, or ``ChordSpan`` lists.
    """
    melody = np.asarray(melody, dtype=np.int64)
    steps = _as_chord_steps(chords, len(melody))
    if len(steps) != len(melody):
        raise ValueError(f"melody has {len(melody)} steps but chords cover {len(steps)}")
    frames = chord_frames(steps, steps_per_frame)
    out = {
        "CHE": chord_histogram_entropy(frames),
        "CC": float(chord_coverage(frames)),
        "CTD": chord_tonal_distance(frames),
        "CTnCTR": chord_tone_ratio(melody, steps),
        "PCS": pitch_consonance_score(melody, steps, pcs_mode),
        "MCTD": melody_chord_tonal_distance(melody, steps),
    }
    if ref_chords is not None:
        ref = _as_chord_steps(ref_chords, len(melody))
        for level in ("root", "majmin", "class"):
            out[f"acc_{level}"] = chord_accuracy(steps, ref, steps_per_frame, level)
    return out

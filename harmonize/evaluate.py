"""``stripe eval``: the paper's metrics and the harmonization metrics on a POP909 split.

Two parts, each optional:
- chords: whole songs, one chord per beat, from the chord stage, the HMM baseline and the human
  annotations, scored with chord accuracy and CHE / CC / CTD / CTnCTR / PCS / MCTD;
- accompaniment: windows of ``length`` bars, piano roll from the accompaniment stage with the
  annotated chords (oracle BIN context) and with stage-1 chords (the exposure gap), scored with
  CS / SSMD / GS / NDD, also per 16-bar position bucket for long windows.

The paper's metrics are computed on all three tracks (melody and bridge, which the model is given,
plus the piano), as the reference code sums tracks; ``piano_only`` variants are reported beside them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .song import Song


@dataclass
class EvalConfig:
    data: str
    split: str = "val"
    structure: str | None = None
    model: str | None = None
    length: int = 16  # bars per accompaniment window
    max_songs: int = 0
    chords: bool = True
    accompaniment: bool = True
    threshold: float | None = None  # None: the model's decoding setting
    gap: int | None = None
    device: str = "cpu"
    cache: str | None = None
    seed: int = 0


@dataclass
class EvalReport:
    config: dict
    chords: dict = field(default_factory=dict)  # system -> metric -> value
    accompaniment: dict = field(default_factory=dict)  # condition -> metric -> value
    buckets: dict = field(default_factory=dict)  # condition -> list of per-bucket metric dicts
    counts: dict = field(default_factory=dict)


def melody_per_step(melody_roll: np.ndarray) -> np.ndarray:
    """Top active pitch per step, -1 where the melody rests."""
    active = melody_roll.any(1)
    top = 127 - np.argmax(melody_roll[:, ::-1], axis=1)
    return np.where(active, top, -1)


def _mean_dicts(rows: list[dict]) -> dict:
    keys = rows[0].keys() if rows else []
    return {k: float(np.nanmean([r[k] for r in rows])) for k in keys}


def evaluate_chords(songs: list[Song], harmonizer, limit_systems=("model", "baseline", "human")) -> dict:
    from .baseline import harmonize_baseline
    from .encode import encode_song
    from .metrics import harmonization_metrics
    from .pipeline import HarmonizeOptions
    from .structure import chords_per_step

    rows: dict[str, list[dict]] = {s: [] for s in limit_systems}
    for song in songs:
        if not song.chords:
            continue
        enc = encode_song(song)
        melody = melody_per_step(enc.melody_roll)
        ref = chords_per_step(song.chords, song.n_steps)
        candidates = {"human": song.chords}
        if "baseline" in rows:
            candidates["baseline"] = harmonize_baseline(melody, song.grid.beat_starts, song.n_steps,
                                                        key=song.key, bar_starts=song.grid.bar_starts)
        if "model" in rows and harmonizer is not None:
            blind = Song(song.name, song.grid, song.melody, song.bridge)  # no chords, no key: as a user's file
            candidates["model"] = harmonizer(blind, HarmonizeOptions(accompaniment=False)).chords
        for system, spans in candidates.items():
            if system in rows:
                pred = chords_per_step(spans, song.n_steps)
                rows[system].append(harmonization_metrics(melody, pred, ref_chords=ref))
    return {s: _mean_dicts(r) for s, r in rows.items() if r}


def evaluate_accompaniment(songs: list[Song], harmonizer, length_bars: int, threshold: float, gap: int,
                           bucket_bars: int = 16) -> tuple[dict, dict, int]:
    """Paper metrics on windows of ``length_bars``, with oracle chords and with stage-1 chords."""
    from .binarize import binarize_merge
    from .encode import encode_song
    from .metrics import metrics_by_bucket, paper_metrics
    from .pipeline import HarmonizeOptions
    from .pop909 import windows

    results: dict[str, list[dict]] = {"oracle chords": [], "stage-1 chords": []}
    buckets: dict[str, list[list[dict]]] = {k: [] for k in results}
    n_windows = 0
    for song in songs:
        if not song.chords or not song.piano:
            continue
        predicted = harmonizer(Song(song.name, song.grid, song.melody, song.bridge),
                               HarmonizeOptions(accompaniment=False)).chords
        for condition, chords in (("oracle chords", song.chords), ("stage-1 chords", predicted)):
            enc = encode_song(Song(song.name, song.grid, song.melody, song.bridge, song.piano,
                                   chords=chords, key=song.key))
            for lo, hi in windows(song, length_bars, length_bars):
                # each window on its own, as long as the length under test: the model sees nothing else
                probs = 1.0 / (1.0 + np.exp(-harmonizer.accompaniment_logits(enc, lo, hi)))
                pred = binarize_merge(probs, threshold, gap)
                given = np.concatenate([enc.melody_roll[lo:hi], enc.bridge_roll[lo:hi]], 1)
                target = np.concatenate([given, enc.piano_roll[lo:hi]], 1)
                full_pred = np.concatenate([given, pred], 1)
                row = paper_metrics(target, full_pred)
                row.update({f"piano_{k}": v for k, v in paper_metrics(enc.piano_roll[lo:hi], pred).items()})
                results[condition].append(row)
                if hi - lo > bucket_bars * 16:
                    buckets[condition].append(metrics_by_bucket(target, full_pred, bucket_bars=bucket_bars))
                if condition == "oracle chords":
                    n_windows += 1
    summary = {k: _mean_dicts(v) for k, v in results.items() if v}
    bucket_summary = {k: [_mean_dicts([b[i] for b in v if len(b) > i]) for i in range(max(map(len, v)))]
                      for k, v in buckets.items() if v}
    return summary, bucket_summary, n_windows

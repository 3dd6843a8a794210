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

import dataclasses
from dataclasses import dataclass
from pathlib import Path

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
    tune: bool = False


def _mean_dicts(rows: list[dict]) -> dict:
    keys = rows[0].keys() if rows else []
    return {k: float(np.nanmean([r[k] for r in rows])) for k in keys}


def evaluate_chords(songs: list[Song], harmonizer, limit_systems=("model", "baseline", "human")) -> dict:
    from .baseline import harmonize_baseline
    from .metrics import harmonization_metrics, melody_per_step
    from .pipeline import HarmonizeOptions
    from .structure import chords_per_step, estimate_key

    rows: dict[str, list[dict]] = {s: [] for s in limit_systems}
    for song in songs:
        if not song.chords:
            continue
        melody = melody_per_step(song.melody, song.n_steps)
        ref = chords_per_step(song.chords, song.n_steps)
        candidates = {"human": song.chords}
        if "baseline" in rows:
            candidates["baseline"] = harmonize_baseline(melody, song.grid.beat_starts, song.n_steps,
                                                        key=estimate_key(song), bar_starts=song.grid.bar_starts)
        if "model" in rows and harmonizer is not None:
            blind = Song(song.name, song.grid, song.melody, song.bridge)  # no chords, no key: as a user's file
            candidates["model"] = harmonizer(blind, HarmonizeOptions(accompaniment=False)).chords
        for system, spans in candidates.items():
            if system in rows:
                pred = chords_per_step(spans, song.n_steps)
                rows[system].append(harmonization_metrics(melody, pred, ref_chords=ref))
    return {s: _mean_dicts(r) for s, r in rows.items() if r}


def evaluate_accompaniment(songs: list[Song], harmonizer, length_bars: int, threshold: float, gap: int,
                           bucket_bars: int = 16, stage1: bool = True) -> tuple[dict, dict, int]:
    """Paper metrics on windows of ``length_bars``, with oracle chords and (``stage1``) with stage-1 chords.

    ``harmonizer`` needs ``accompaniment_logits(enc, lo, hi)``, and a call for chords when ``stage1``.
    """
    from .binarize import binarize_merge
    from .data.pop909 import windows
    from .encode import encode_song
    from .metrics import metrics_by_bucket, paper_metrics
    from .pipeline import HarmonizeOptions

    results: dict[str, list[dict]] = {"oracle chords": [], **({"stage-1 chords": []} if stage1 else {})}
    buckets: dict[str, list[list[dict]]] = {k: [] for k in results}
    n_windows = 0
    for song in songs:
        if not song.chords or not song.piano:
            continue
        conditions = [("oracle chords", song.chords)]
        if stage1:
            blind = Song(song.name, song.grid, song.melody, song.bridge)  # chords come from stage 1
            conditions.append(("stage-1 chords", harmonizer(blind, HarmonizeOptions(accompaniment=False)).chords))
        for condition, chords in conditions:
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
                if length_bars > bucket_bars:
                    rows = metrics_by_bucket(target, full_pred, bucket_bars=bucket_bars)
                    # a sliver past the last full bucket (a window with longer bars) is too short to score
                    buckets[condition].append([b for b in rows if b["end_bar"] - b["start_bar"] >= bucket_bars // 2])
                if condition == "oracle chords":
                    n_windows += 1
    summary = {k: _mean_dicts(v) for k, v in results.items() if v}
    bucket_summary = {k: [_mean_dicts([b[i] for b in v if len(b) > i]) for i in range(max(map(len, v)))]
                      for k, v in buckets.items() if v}
    return summary, bucket_summary, n_windows


def tune_threshold(songs: list[Song], harmonizer, length_bars: int) -> tuple[float, int, dict]:
    """Binarization (threshold, gap) that maximizes cell F1 on these songs' windows (call on val only)."""
    from .binarize import tune_binarization
    from .data.pop909 import windows
    from .encode import encode_song

    probs, targets = [], []
    for song in songs:
        if not song.chords or not song.piano:
            continue
        enc = encode_song(song)
        for lo, hi in windows(song, length_bars, length_bars):
            probs.append(1.0 / (1.0 + np.exp(-harmonizer.accompaniment_logits(enc, lo, hi))))
            targets.append(enc.piano_roll[lo:hi])
    choice = tune_binarization(probs, targets, thresholds=(0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5),
                               gaps=(0, 1, 2))
    return choice.threshold, choice.gap, {f"{t}/{g}": round(v, 4) for (t, g), v in choice.table.items()}


def evaluate(cfg: EvalConfig, progress: bool = True, harmonizer=None) -> dict:
    """Everything ``stripe eval`` reports, as JSON-able data."""
    from .data.pop909 import load_split
    from .errors import StripeError
    from .pipeline import Harmonizer

    root = Path(cfg.data)
    if not root.is_dir():
        raise StripeError("no such data folder (expected a POP909-layout folder)", root)
    songs = load_split(root, cfg.split, structure_root=cfg.structure, cache_dir=cfg.cache,
                       limit=cfg.max_songs or None)
    if not songs:
        raise StripeError(f"no usable songs in split {cfg.split!r}", root)
    harmonizer = harmonizer or Harmonizer.load(cfg.model, device=cfg.device)
    from .progress import tracked

    report: dict = {"config": dataclasses.asdict(cfg), "model": harmonizer.source,
                    "counts": {"songs": len(songs), "skipped": getattr(songs, "n_skipped", 0)}}
    if cfg.chords:
        if cfg.tune:
            params, acc = tune_chord_decoding(tracked(songs, "tuning chords", progress), harmonizer)
            harmonizer.decoding.update(params)
            report["chord_decoding"] = {**params, "acc_majmin": acc}
        report["chords"] = evaluate_chords(tracked(songs, "chords", progress), harmonizer)
    if cfg.accompaniment and harmonizer.accompaniment is not None:
        threshold = cfg.threshold if cfg.threshold is not None else harmonizer.decoding["threshold"]
        gap = cfg.gap if cfg.gap is not None else int(harmonizer.decoding["gap"])
        if cfg.tune:
            threshold, gap, table = tune_threshold(tracked(songs, "tuning binarization", progress), harmonizer, 16)
            report["tuning"] = table
        summary, buckets, n_windows = evaluate_accompaniment(tracked(songs, "accompaniment", progress), harmonizer,
                                                             cfg.length, threshold, gap)
        report["binarization"] = {"threshold": threshold, "gap": gap}
        report["accompaniment"] = summary
        report["buckets"] = buckets
        report["counts"]["windows"] = n_windows
    return report


CHORD_DECODING_GRID = {
    "change_penalty": (0.0, 0.1, 0.25, 0.5, 1.0),
    "offbar_penalty": (0.0, 0.25, 0.5, 1.0),
    "key_weight": (0.0, 0.5, 1.0),
    "none_penalty": (1.0, 3.0),
}


def chord_stage_outputs(songs: list[Song], harmonizer) -> list[tuple]:
    """``(song, per-step chord log-probs, estimated key, reference chords per step)`` for annotated songs,
    computed as for a user's file (no chords, no key): the chord stage runs once, decoding can be redone."""
    from .structure import chords_per_step, estimate_key

    out = []
    for song in songs:
        if not song.chords:
            continue
        blind = Song(song.name, song.grid, song.melody, song.bridge)
        key = estimate_key(blind)
        logp = harmonizer.chord_step_log_probs(blind, key)
        out.append((song, logp, key, chords_per_step(song.chords, song.n_steps)))
    return out


def tune_chord_decoding(songs: list[Song], harmonizer, grid: dict | None = None) -> tuple[dict, float]:
    """HMM decoding settings with the best root + major/minor accuracy on these songs (call on val only).

    The chord stage runs once per song; only the cheap Viterbi decoding is repeated per setting.
    """
    import itertools

    from .decode import decode_chords
    from .metrics import chord_accuracy

    grid = grid or CHORD_DECODING_GRID
    cached = chord_stage_outputs(songs, harmonizer)
    best, best_acc = {}, -1.0
    names = list(grid)
    for values in itertools.product(*(grid[n] for n in names)):
        params = dict(zip(names, values, strict=True))
        accs = []
        for song, logp, key, ref in cached:
            spans = decode_chords(logp, song.grid.beat_starts, song.grid.bar_starts, song.n_steps, key=key,
                                  **params)
            accs.append(chord_accuracy(spans, ref, level="majmin"))
        acc = float(np.nanmean(accs)) if accs else float("nan")
        if acc > best_acc:
            best, best_acc = params, acc
    return best, best_acc

"""Paper Table I: mutual information (nats) between pitch and each positional context on POP909.

Method (paper.md §4.2): cut each song into windows of ``--bars`` bars (non-overlapping here, so no
note is counted twice), flatten the pianoroll into its active (step, pitch) cells, pair each pitch
with the context at that step, and compute the plug-in MI of the pooled pairs:

- TIME: step index within the window;
- REP: the window's chord classes renumbered by first appearance (``structure.rep_tokens``, what
  the models use); REP-rank is the other reading of the paper's "re-number the tokens in each sample
  based on their numerical order": the rank of each chord id among the window's sorted distinct ids;
- KEY: chord class transposed to C major / C minor (``EncodedSong.key_token``);
- BIN: the 12-d chord chroma, one category per distinct vector.

Pitch comes from the *target* track, the piano accompaniment (what the model predicts; the paper
says "pitch of the pianorolls"); the all-tracks variant (melody + bridge + piano, each track's active
cell one sample) is printed beside it. Counts are accumulated per window in joint tables, so the
whole split fits in a few MB.

    .venv/bin/python benchmarks/mutual_information.py --data ../shared/pop909 [--limit 50]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from harmonize.chords import N_CLASSES
from harmonize.data.pop909 import load_split, windows
from harmonize.encode import encode_song
from harmonize.mutual_info import mutual_information_from_counts
from harmonize.structure import rep_tokens

PAPER = {"TIME": 0.0085, "REP": 0.0436, "KEY": 0.0476, "BIN": 1.0075}
MAX_WINDOW = 8192  # steps; TIME ids above this would not fit the table
N_CONTEXT = {"TIME": MAX_WINDOW, "REP": N_CLASSES + 1, "REP-rank": N_CLASSES + 1, "KEY": 2 * N_CLASSES,
             "BIN": 1 << 12}
_BITS = 1 << np.arange(12)


def window_contexts(enc, lo: int, hi: int) -> dict[str, np.ndarray]:
    """Integer context id per step of one window."""
    return {
        "TIME": np.arange(hi - lo),
        "REP": rep_tokens(enc.chord_class[lo:hi]),
        "REP-rank": np.unique(enc.chord_class[lo:hi], return_inverse=True)[1].reshape(-1),
        "KEY": enc.key_token[lo:hi],
        "BIN": enc.chroma[lo:hi].astype(np.int64) @ _BITS,  # the chroma vector as one categorical id
    }


def accumulate(tables: dict, roll: np.ndarray, contexts: dict[str, np.ndarray]) -> None:
    t, col = np.nonzero(roll)
    pitch = col % 128
    for name, ctx in contexts.items():
        n_ctx = N_CONTEXT[name]
        tables[name] += np.bincount(pitch * n_ctx + ctx[t], minlength=128 * n_ctx).reshape(128, n_ctx)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "pop909")
    ap.add_argument("--structure", type=Path, default=None, help="pop909-structure root (with --chord-source structure)")
    ap.add_argument("--chord-source", default="midi", choices=("midi", "structure"))
    ap.add_argument("--split", default="train")
    ap.add_argument("--limit", type=int, default=None, help="first N songs of the split")
    ap.add_argument("--bars", type=int, default=16)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()

    t0 = time.perf_counter()
    songs = load_split(args.data, args.split, structure_root=args.structure, chord_source=args.chord_source,
                       workers=args.workers, limit=args.limit)
    t_load = time.perf_counter() - t0
    variants = ("piano", "all tracks")
    tables = {v: {k: np.zeros((128, n), dtype=np.int64) for k, n in N_CONTEXT.items()} for v in variants}
    n_windows = 0
    for song in songs:
        enc = encode_song(song)
        all_tracks = np.concatenate([enc.melody_roll, enc.bridge_roll, enc.piano_roll], axis=1)
        for lo, hi in windows(enc, args.bars, args.bars):
            if hi - lo > MAX_WINDOW:
                raise SystemExit(f"window of {hi - lo} steps is longer than {MAX_WINDOW}")
            ctx = window_contexts(enc, lo, hi)
            accumulate(tables["piano"], enc.piano_roll[lo:hi], ctx)
            accumulate(tables["all tracks"], all_tracks[lo:hi], ctx)
            n_windows += 1

    print(f"POP909 {args.split}: {len(songs)} songs ({songs.n_skipped} skipped, {len(songs.absent)} absent), "
          f"{n_windows} windows of {args.bars} bars, chords from {args.chord_source}; "
          f"load {t_load:.0f} s, total {time.perf_counter() - t0:.0f} s")
    for v in variants:
        n_pairs = int(tables[v]["TIME"].sum())
        print(f"  {v}: {n_pairs} (pitch, context) pairs")
    print(f"{'context':8s} {'paper':>8s} {'piano':>8s} {'all tracks':>11s} | Miller-Madow: "
          f"{'piano':>8s} {'all tracks':>11s}   (nats)")
    for name in N_CONTEXT:
        mi = [mutual_information_from_counts(tables[v][name]) for v in variants]
        mm = [mutual_information_from_counts(tables[v][name], "miller-madow") for v in variants]
        paper = f"{PAPER[name]:8.4f}" if name in PAPER else f"{'-':>8s}"
        print(f"{name:8s} {paper} {mi[0]:8.4f} {mi[1]:11.4f} | {'':13s} {mm[0]:8.4f} {mm[1]:11.4f}")


if __name__ == "__main__":
    main()

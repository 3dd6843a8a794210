"""Chord accuracy on POP909 val on the ORACLE grid (annotated beats), melody only: model vs the HMM.

Each val song is harmonized as a user's file would be (melody only, no chords, no key: the key is
estimated from the melody) on its annotated beat grid, and scored per beat (root + major/minor, and the
harmony metrics) against POP909's chord labels and, with ``--cl``, POP909-CL's corrected ones.
``--tune`` also sweeps the decoder settings on the cached chord-stage outputs (val only; never test).

    python -m benchmarks.chord_beat_eval --model models/pop909-beat --songs 20
    python -m benchmarks.chord_beat_eval --model runs/beat/final --cl ../shared/pop909-cl --tune
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np

from harmonize.baseline import harmonize_baseline
from harmonize.data.pop909 import load_split
from harmonize.data.pop909_cl import song_cl_chords
from harmonize.decode import decode_chords
from harmonize.metrics import (
    chord_accuracy,
    chord_frames,
    chord_histogram_entropy,
    harmonization_metrics,
    melody_per_step,
)
from harmonize.pipeline import Harmonizer
from harmonize.song import Song
from harmonize.structure import chords_per_step, estimate_key

DECODING_KEYS = ("change_penalty", "offbar_penalty", "none_penalty", "key_weight", "prior_weight")
TUNE_GRID = {"change_penalty": (0.0, 0.5, 1.0, 2.0), "offbar_penalty": (0.0, 0.5, 1.0, 2.0),
             "key_weight": (0.0, 0.5, 1.0), "prior_weight": (0.0, 0.25, 0.5, 0.75, 0.9)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/pop909")
    ap.add_argument("--cl", default=None, help="POP909-CL folder: also score against its corrected chords")
    ap.add_argument("--model", default=None, help="harmonizer or chord-stage folder (default: bundled)")
    ap.add_argument("--songs", type=int, default=0, help="first N val songs (0: all)")
    ap.add_argument("--tune", action="store_true", help="sweep the decoder settings")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json-out", default=None)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    harmonizer = Harmonizer.load(args.model)
    songs = [s for s in load_split(Path(args.data), "val", limit=args.songs or None) if s.chords]
    cases = []
    for song in songs:
        blind = Song(song.name, song.grid, song.melody)  # melody only, as most users' files
        key = estimate_key(blind)
        refs = {"pop909": chords_per_step(song.chords, song.n_steps)}
        if args.cl:
            cl = song_cl_chords(Path(args.cl), Path(args.data) / song.name.rsplit("/", 1)[-1], song.grid)
            refs["cl"] = chords_per_step(cl, song.n_steps)
        melody = melody_per_step(song.melody, song.n_steps)
        hmm = harmonize_baseline(melody, song.grid.beat_starts, song.n_steps, key=key, bar_starts=song.grid.bar_starts)
        cases.append((song, key, refs, melody, harmonizer.chord_step_log_probs(blind, key), hmm))

    def decode(params: dict) -> list:
        return [decode_chords(logp, s.grid.beat_starts, s.grid.bar_starts, s.n_steps, key=key, **params)
                for s, key, _, _, logp, _ in cases]

    def score(preds: list, full: bool = True) -> dict:
        rows = []
        for (s, _, refs, melody, _, _), pred in zip(cases, preds, strict=True):
            steps = chords_per_step(pred, s.n_steps)
            row = (harmonization_metrics(melody, steps) if full
                   else {"CHE": chord_histogram_entropy(chord_frames(steps))})
            for name, ref in refs.items():
                row[f"majmin_{name}"] = chord_accuracy(steps, ref, level="majmin")
                row[f"root_{name}"] = chord_accuracy(steps, ref, level="root")
            rows.append(row)
        return {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0]}

    settings = {k: harmonizer.decoding[k] for k in DECODING_KEYS}
    report = {"songs": len(cases), "grid": "oracle (annotated beats), melody only", "decoding": settings,
              "model": score(decode(settings)), "hmm": score([c[5] for c in cases])}
    report["human"] = {k: float(np.nanmean([harmonization_metrics(c[3], c[2]["pop909"])[k] for c in cases]))
                       for k in ("CHE", "CC", "CTnCTR", "PCS")}
    cols = ["majmin_pop909", "root_pop909"] + (["majmin_cl", "root_cl"] if args.cl else []) + ["CHE", "CC", "CTnCTR", "PCS"]
    print(f"{len(cases)} val songs, {report['grid']}; decoding {settings}")
    print("| system | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for system in ("model", "hmm", "human"):
        print(f"| {system} | " + " | ".join(f"{report[system].get(c, float('nan')):.3f}" for c in cols) + " |")
    if args.tune:
        che_human = report["human"]["CHE"]
        rows = []
        for values in itertools.product(*TUNE_GRID.values()):
            params = {**settings, **dict(zip(TUNE_GRID, values, strict=True))}
            rows.append((params, score(decode(params), full=False)))
        ok = [r for r in rows if abs(r[1]["CHE"] - che_human) <= 0.3] or rows
        best = max(ok, key=lambda r: r[1]["majmin_pop909"])
        top = max(rows, key=lambda r: r[1]["majmin_pop909"])
        for label, (params, sc) in (("best with CHE within 0.3 of human", best), ("best overall", top)):
            print(f"{label}: {params} -> " + "  ".join(f"{c} {v:.3f}" for c, v in sc.items()))
        report["tune"] = {"best_che_ok": best, "best": top}
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

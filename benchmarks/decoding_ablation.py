"""Ablation of the chord decoder on POP909 val, on the annotated beat grid (the chord stage runs once per
song from the melody alone, key estimated; only decoding is redone per row). Root + maj/min accuracy per
beat (``metrics.chord_accuracy``), over all annotated beats and over the beats inside the melody's span
(POP909 labels intros and outros, which N.C. outside the melody gets wrong by design).

    python -m benchmarks.decoding_ablation --data ../shared/pop909 [--songs 0] [--model pop909-ropepool]
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from harmonize.data import pop909
from harmonize.decode import decode_chords, load_transitions
from harmonize.metrics import _as_chord_steps, chord_accuracy, chord_frames, chord_histogram_entropy
from harmonize.song import Song


def rows(transitions) -> list[tuple[str, dict]]:
    nc = {"intro_outro": "rest"}
    rc = {**nc, "rep_weight": 0.3, "cadence_weight": 1.0}

    def tr(w):
        return {"transitions": {**transitions, "weight": w}}

    return [
        ("hand-set penalties (bundled settings)", {}),
        ("+ N.C. outside the melody", nc),
        ("+ REP 0.3", {**nc, "rep_weight": 0.3}),
        ("+ REP 0.5", {**nc, "rep_weight": 0.5}),
        ("+ REP 0.3, cadence 1", rc),
        ("+ REP 0.3, cadence 2", {**rc, "cadence_weight": 2.0}),
        ("+ REP 0.3, cadence 1, learnt trans. x1", {**rc, **tr(1.0)}),
        ("+ REP 0.3, cadence 1, learnt trans. x0.5", {**rc, **tr(0.5)}),
        ("+ REP 0.3, cadence 1, learnt trans. x0.25", {**rc, **tr(0.25)}),
        ("+ REP 0.3, cadence 1, learnt trans. x0.1", {**rc, **tr(0.1)}),
        ("+ REP 0.5, cadence 1, learnt trans. x0.25", {**rc, "rep_weight": 0.5, **tr(0.25)}),
        ("+ REP 0.7, cadence 1, learnt trans. x0.25", {**rc, "rep_weight": 0.7, **tr(0.25)}),
        ("+ REP 0.5, cadence 1, learnt trans. x0.1", {**rc, "rep_weight": 0.5, **tr(0.1)}),
        ("+ REP 0.5, cadence 1, learnt trans. x0.25, no N.C.", {**rc, "rep_weight": 0.5, **tr(0.25),
                                                              "intro_outro": "play"}),
    ]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=Path("../shared/pop909"))
    ap.add_argument("--split", default="val")
    ap.add_argument("--songs", type=int, default=0, help="only the first N songs (0: all)")
    ap.add_argument("--model", default=None)
    ap.add_argument("--transitions", type=Path, default=Path("models/pop909-ropepool/transitions.json"))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    import torch

    from harmonize.encode import encode_song
    from harmonize.pipeline import Harmonizer, structure_decoding
    from harmonize.structure import chords_per_step, estimate_key

    torch.set_num_threads(1)
    songs = [s for s in pop909.load_split(args.data, args.split, None, "midi", workers=2) if s.chords]
    songs = songs[: args.songs or None]
    h = Harmonizer.load(args.model)
    base = {k: v for k, v in h.decoding.items() if k in ("change_penalty", "offbar_penalty", "none_penalty",
                                                         "key_weight", "prior_weight")}
    cached = []
    for s in songs:
        blind = Song(s.name, s.grid, s.melody)
        logp = h.chord_log_probs(encode_song(blind), s.n_steps, s.grid.bar_starts)
        cached.append((blind, logp, estimate_key(blind), chords_per_step(s.chords, s.n_steps)))
    transitions = load_transitions(args.transitions)
    print(f"split {args.split}: {len(cached)} songs, annotated grid, melody only, estimated key")
    print(f"{'decoding':50s} {'majmin':>7s} {'root':>7s} {'majmin in melody':>17s} {'CHE':>5s}")
    from harmonize.structure import estimate_key_profile

    table = [("old key estimate (profile only), hand-set", {"old_key": True})] + rows(transitions)
    table.append(("human annotations (CHE only)", {"human": True}))
    for name, extra in table:
        accs, roots, inside, che = [], [], [], []
        for blind, logp, key, ref in cached:
            key = estimate_key_profile(blind) if extra.get("old_key") else key
            d = {"intro_outro": extra.get("intro_outro", "play"), "rep_weight": extra.get("rep_weight", 0),
                 "cadence_weight": extra.get("cadence_weight", 0), "transitions": extra.get("transitions")}
            kw = structure_decoding(blind, d)
            g = blind.grid
            spans = decode_chords(logp, g.beat_starts, g.bar_starts, blind.n_steps, key=key, **base, **kw)
            if extra.get("human"):
                spans = ref
            accs.append(chord_accuracy(spans, ref, level="majmin"))
            roots.append(chord_accuracy(spans, ref, level="root"))
            che.append(chord_histogram_entropy(chord_frames(_as_chord_steps(spans, len(ref)))))
            if extra.get("human"):
                continue
            lo, hi = min(n.start for n in blind.melody), max(n.end for n in blind.melody)
            lo, hi = lo - lo % 4, hi + (-hi) % 4
            cut = [replace(sp, start=max(sp.start, lo) - lo, end=min(sp.end, hi) - lo) for sp in spans
                   if sp.end > lo and sp.start < hi]
            inside.append(chord_accuracy(cut, ref[lo:hi], level="majmin"))
        print(f"{name:50s} {np.nanmean(accs):7.3f} {np.nanmean(roots):7.3f} {np.nanmean(inside or [np.nan]):17.3f} {np.mean(che):5.2f}", flush=True)


if __name__ == "__main__":
    main()

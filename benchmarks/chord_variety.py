"""Chord accuracy against chord variety on val: the HMM's ``prior_weight`` sweep that picked the bundled value.

Dividing the chord stage's posteriors by the song's mean posterior (to the power ``prior_weight``) makes the
decoder use more distinct chords (CHE, CC towards the human values) at some cost in accuracy. The bundled
model uses the largest weight whose CHE is within 0.3 of the human annotations' CHE on val (0.75).

    python benchmarks/chord_variety.py [--data ../shared/pop909]
"""

import argparse

import numpy as np
import torch

from harmonize.data.pop909 import load_split
from harmonize.decode import decode_chords
from harmonize.evaluate import chord_stage_outputs
from harmonize.metrics import harmonization_metrics, melody_per_step
from harmonize.pipeline import Harmonizer
from harmonize.structure import chords_per_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/pop909")
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    songs = load_split(args.data, "val")
    h = Harmonizer.load(args.model)
    d = h.decoding
    cache = [(s, logp, key, ref, melody_per_step(s.melody, s.n_steps))
             for s, logp, key, ref in chord_stage_outputs(songs, h)]
    print("| prior_weight | change_penalty | acc root+maj/min | CHE | CC | CTnCTR | PCS |")
    print("|---|---|---|---|---|---|---|")
    for w in (0, 0.25, 0.5, 0.75, 1.0):
        for cp in (0.0, 0.5):
            rows = []
            for s, logp, key, ref, mel in cache:
                spans = decode_chords(logp, s.grid.beat_starts, s.grid.bar_starts, s.n_steps, key=key,
                                      change_penalty=cp, offbar_penalty=d["offbar_penalty"],
                                      none_penalty=d["none_penalty"], key_weight=d["key_weight"], prior_weight=w)
                rows.append(harmonization_metrics(mel, chords_per_step(spans, s.n_steps), ref_chords=ref))
            m = {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0]}
            print(f"| {w} | {cp} | {m['acc_majmin']:.3f} | {m['CHE']:.2f} | {m['CC']:.1f} | {m['CTnCTR']:.3f} "
                  f"| {m['PCS']:.3f} |", flush=True)


if __name__ == "__main__":
    main()

"""Learn the chord decoder's transitions from POP909's train split and save them as JSON (no pickle):
key-relative chord bigrams per beat (at chord changes, add-``alpha`` smoothed; one table for major keys,
one for minor) and the probability that the chord changes on each beat of the bar.

    python -m benchmarks.learn_transitions --data ../shared/pop909 --out models/pop909-ropepool/transitions.json --force

The harmonizer loads ``transitions.json`` from its model folder when present and decodes with it instead
of the hand-set change penalties (``harmonize.decode.decode_chords(transitions=...)``).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from harmonize.chords import N_CLASSES
from harmonize.data import pop909
from harmonize.decode import TRANSITIONS_FORMAT, relative_class_lut
from harmonize.structure import chord_classes_per_step

MAX_POSITIONS = 8  # beats of the bar with their own change probability (later ones share the last)


def learn(songs, alpha: float = 0.1) -> dict:
    counts = {"major": np.zeros((N_CLASSES, N_CLASSES)), "minor": np.zeros((N_CLASSES, N_CLASSES))}
    changes, beats = np.zeros(MAX_POSITIONS), np.zeros(MAX_POSITIONS)
    for s in songs:
        if s.key is None or not s.chords:
            continue
        g = s.grid
        steps = chord_classes_per_step(s.chords, s.n_steps)
        rel = relative_class_lut(s.key.tonic)[steps[np.asarray(g.beat_starts, dtype=np.int64)]]
        bar_of_beat = g.bar_of_step(g.beat_starts)
        pos = 0
        for i in range(1, len(rel)):
            pos = 0 if bar_of_beat[i] != bar_of_beat[i - 1] else pos + 1
            a, b = rel[i - 1], rel[i]
            if a == 0 or b == 0:
                continue
            p = min(pos, MAX_POSITIONS - 1)
            beats[p] += 1
            if a != b:
                changes[p] += 1
                counts[s.key.mode][a, b] += 1
    out = {"format": TRANSITIONS_FORMAT, "weight": 1.0, "songs": len(songs), "alpha": alpha}
    for mode, c in counts.items():
        m = c + alpha
        m[0, :] = 1.0  # from N: uniform; to N: rare (alpha only)
        m[:, 0] = alpha
        np.fill_diagonal(m, 0.0)
        m /= m.sum(1, keepdims=True)
        out[mode] = np.round(m, 6).tolist()
    out["change_by_beat"] = np.round((changes + 1) / (beats + 2), 6).tolist()
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=Path("../shared/pop909"))
    ap.add_argument("--split", default="train")
    ap.add_argument("--alpha", type=float, default=0.1, help="add-alpha smoothing of the bigram counts")
    ap.add_argument("--weight", type=float, default=0.25,
                    help="scale of the transition log-probabilities against the chord stage's (val-tuned)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--force", action="store_true", help="overwrite --out")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from harmonize.errors import StripeError
    from harmonize.io.outputs import check_outputs, write_outputs

    try:
        check_outputs([args.out], force=args.force)  # refuse before the work, not after
    except StripeError as err:
        raise SystemExit(str(err)) from None
    songs = pop909.load_split(args.data, args.split, None, "midi", workers=2)
    table = learn(songs, args.alpha)
    table["weight"] = args.weight
    text = json.dumps(table, separators=(",", ":")) + "\n"
    write_outputs({args.out: lambda tmp: Path(tmp).write_text(text)}, force=args.force)
    print(f"{args.out}: {len(songs)} {args.split} songs; change probability by beat of the bar "
          + " ".join(f"{p:.2f}" for p in table["change_by_beat"]))


if __name__ == "__main__":
    main()

"""How well POP909-CL's files pair with POP909's, song by song: the reader's acceptance rule, audited.

    python -m benchmarks.cl_alignment [--data ../shared/pop909] [--cl ../shared/pop909-cl] [--split train val]

For every song of the splits: the share of notes that pair up between the two files (``pop909_cl.time_map``)
and, reading the chords whatever that share (``min_share`` 0), how often they agree with POP909's own labels
per annotated beat (root + major/minor). ``data/pop909_cl.MIN_MATCHED_SHARE`` refuses the songs under it, for
training (``stripe train --cl``) and evaluation (``--labels cl``) alike. Prints the songs below the rule, the
lowest-pairing songs above it, and the agreement of each group.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from harmonize.data.pop909 import load_split
from harmonize.data.pop909_cl import MIN_MATCHED_SHARE, chords_through, time_map
from harmonize.errors import StripeError
from harmonize.metrics import chord_accuracy
from harmonize.structure import chords_per_step


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/pop909")
    ap.add_argument("--cl", default="../shared/pop909-cl")
    ap.add_argument("--split", nargs="+", default=["train", "val"])
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    rows, unread = [], []
    for split in args.split:
        for song in load_split(Path(args.data), split):
            sid = song.name.rsplit("/", 1)[-1]
            cl_midi = Path(args.cl) / "POP909_processed" / f"{sid}.mid"
            midi = Path(args.data) / sid / f"{sid}.mid"
            try:
                cl, to_source, share = time_map(cl_midi, midi, min_share=0.0)  # aligned once: share and chords
                spans = chords_through(cl, to_source, song.grid, cl_midi)
            except StripeError as err:
                unread.append(f"{split} {sid}: {err.message}")
                continue
            ref = chords_per_step(song.chords, song.n_steps) if song.chords else None
            agree = chord_accuracy(spans, ref, level="majmin") if ref is not None else float("nan")
            rows.append((share, agree, split, sid))
    if not rows and not unread:
        raise StripeError(f"no songs of split(s) {', '.join(args.split)} here", args.data)
    rows.sort()
    refused = [r for r in rows if r[0] < MIN_MATCHED_SHARE]
    kept = [r for r in rows if r[0] >= MIN_MATCHED_SHARE]
    print(f"{len(rows)} songs read, {len(unread)} unreadable; rule: at least {MIN_MATCHED_SHARE:.0%} of the notes pair")
    for line in unread:
        print(f"  unreadable: {line}")
    print("| songs | n | notes paired (min) | agreement with POP909's labels, root + maj/min (mean, min) |")
    print("|---|---|---|---|")
    for name, group in (("refused (under the rule)", refused), ("kept", kept)):
        if group:
            agree = np.array([r[1] for r in group])
            print(f"| {name} | {len(group)} | {min(r[0] for r in group):.3f} | {np.nanmean(agree):.3f}, "
                  f"{np.nanmin(agree):.3f} |")
    print("\nlowest pairing shares (share, agreement, split, song):")
    for share, agree, split, sid in rows[: len(refused) + 8]:
        mark = "refused" if share < MIN_MATCHED_SHARE else "kept"
        print(f"  {share:.3f}  {agree:.3f}  {split} {sid}  {mark}")


if __name__ == "__main__":
    from harmonize.errors import run_script

    run_script(main)

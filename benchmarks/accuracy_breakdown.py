"""Where the chords go wrong on POP909 val, end to end: accuracy by what the melody does on the beat.

Each val song's melody goes through `stripe harmonize`'s code path as `stripe eval --end-to-end` runs it
(``--variant grid`` or ``raw`` file, read with the CLI's reader, the bundled or ``--model`` harmonizer; the
HMM baseline on the same song), and every annotated beat with a reference chord (POP909's labels, or
POP909-CL's with ``--labels cl``) is put in one of three groups:

* ``melody``: inside the melody's span, a melody note sounds in the beat;
* ``rest``: inside the span, the melody is silent (rests, instrumental breaks between sections);
* ``outside``: before the melody's first note or after its last (intros, outros), where stripe plays
  no chord on purpose (issue 11 asks for N.C. there), so its accuracy there is ~0 by design.

Root + maj/min accuracy per group (pooled over beats) says how far a target is from reach: the share of
``outside`` beats caps the overall figure of any system that plays N.C. there. Against POP909's labels, a
third column scores POP909-CL's expert-corrected chords as if they were a system's (an oracle, not a user
figure: the songs with a POP909-CL file): how often two annotations of the same beat agree, a ceiling of sorts
for any harmonizer scored against the algorithmic labels.

    python -m benchmarks.accuracy_breakdown --data ../shared/pop909
    python -m benchmarks.accuracy_breakdown --model runs/x --variant raw --labels cl --json-out b.json
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

GROUPS = ("melody", "rest", "outside")


def beat_groups(annotated, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(the first step of every annotated beat, its group index into ``GROUPS``)."""
    from harmonize.beat_tokens import beat_bounds

    bounds = beat_bounds(annotated.grid.beat_starts, n_steps)
    sound = np.zeros(n_steps + 1, bool)
    for n in annotated.melody:
        sound[max(0, n.start):max(0, min(n.end, n_steps))] = True
    if annotated.melody:
        first, last = min(n.start for n in annotated.melody), max(n.end for n in annotated.melody)
    else:
        first, last = n_steps, 0
    groups = np.array([2 if hi <= first or lo >= last else 0 if sound[lo:hi].any() else 1 for lo, hi in bounds],
                      dtype=np.int64)
    return bounds[:, 0], groups


def song_counts(song_dir: Path, harmonizer, variant: str, labels: str, cl_root: Path | None, workdir: Path) -> dict:
    """``{system: [[correct, beats] per group]}`` for one val song (None without a usable reference)."""
    from harmonize.baseline import harmonize_song
    from harmonize.data.pop909 import load_song_cached
    from harmonize.end_to_end import chords_per_annotated_step, read_variant
    from harmonize.errors import StripeError
    from harmonize.metrics import _label
    from harmonize.pipeline import HarmonizeOptions
    from harmonize.structure import chords_per_step

    annotated = load_song_cached(song_dir)
    reference = annotated.chords
    if labels == "cl":
        from harmonize.data.pop909_cl import song_cl_chords

        try:
            reference = song_cl_chords(cl_root, song_dir, annotated.grid)
        except StripeError:
            return {}
    ref = chords_per_step(reference, annotated.n_steps)
    song, file_grid = read_variant(song_dir, variant, workdir)
    systems = {
        "stripe": harmonizer(song, HarmonizeOptions(accompaniment=False)).chords,
        "hmm": harmonize_song(song),
    }
    preds = {name: chords_per_annotated_step(spans, file_grid, annotated.grid) for name, spans in systems.items()}
    if labels == "pop909" and cl_root is not None and (cl_root / "POP909_processed").is_dir():
        from harmonize.data.pop909_cl import song_cl_chords

        try:  # the expert labels, on the annotated grid already
            preds["expert"] = chords_per_step(song_cl_chords(cl_root, song_dir, annotated.grid), annotated.n_steps)
        except StripeError:
            pass
    starts, groups = beat_groups(annotated, len(ref))
    out = {}
    for name, pred in preds.items():
        counts = np.zeros((len(GROUPS), 2), np.int64)
        for t, g in zip(starts, groups, strict=True):
            if t < len(pred) and not ref[t].is_none:
                counts[g, 0] += _label(pred[t], "majmin") == _label(ref[t], "majmin")
                counts[g, 1] += 1
        out[name] = counts
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/pop909")
    ap.add_argument("--cl", default="../shared/pop909-cl", help="POP909-CL folder (for --labels cl)")
    ap.add_argument("--labels", choices=("pop909", "cl"), default="pop909")
    ap.add_argument("--model", default=None, help="harmonizer folder (default: bundled)")
    ap.add_argument("--variant", default="grid", choices=("grid", "raw"))
    ap.add_argument("--songs", type=int, default=0, help="first N val songs (0: all)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json-out", type=Path, default=None)
    ap.add_argument("--force", action="store_true", help="overwrite an existing --json-out")
    args = ap.parse_args()

    import torch

    from harmonize.commands import save_json
    from harmonize.data.pop909 import split_song_ids
    from harmonize.errors import StripeError
    from harmonize.io.outputs import Outputs
    from harmonize.pipeline import Harmonizer

    guard = Outputs([args.json_out], force=args.force)
    torch.set_num_threads(args.threads)
    root = Path(args.data)
    cl_root = Path(args.cl)
    if args.labels == "cl" and not (cl_root / "POP909_processed").is_dir():
        raise StripeError("no POP909-CL here (expected POP909_processed/ in it)", cl_root)
    harmonizer = Harmonizer.load(args.model)
    ids = [i for i in split_song_ids("val", root) if (root / f"{i:03d}").is_dir()]
    ids = ids[: args.songs] if args.songs else ids
    t0 = time.perf_counter()
    totals = {s: np.zeros((len(GROUPS), 2), np.int64) for s in ("stripe", "hmm", "expert")}
    with tempfile.TemporaryDirectory() as tmp:
        for i in ids:
            for name, counts in song_counts(root / f"{i:03d}", harmonizer, args.variant, args.labels, cl_root,
                                            Path(tmp)).items():
                totals[name] += counts
    if not totals["expert"][:, 1].sum():
        del totals["expert"]
    beats = totals["stripe"][:, 1]
    print(f"python -m benchmarks.accuracy_breakdown --model {args.model} --variant {args.variant} "
          f"--labels {args.labels} --songs {args.songs}")
    print(f"{len(ids)} val songs, {int(beats.sum())} annotated beats with a chord, {time.perf_counter() - t0:.0f} s; "
          f"model {harmonizer.source}")
    expert = "expert" in totals
    print("| beats | share | stripe root+maj/min | HMM root+maj/min |" + (" POP909-CL's chords (oracle) |" if expert else ""))
    print("|---|---|---|---|" + ("---|" if expert else ""))
    report = {"model": harmonizer.source, "variant": args.variant, "labels": args.labels, "songs": len(ids)}
    for g, name in enumerate(GROUPS):
        acc = {s: totals[s][g, 0] / max(totals[s][g, 1], 1) for s in totals}
        report[name] = {"share": float(beats[g] / beats.sum()), **{s: float(a) for s, a in acc.items()}}
        print(f"| {name} | {beats[g] / beats.sum():.3f} | {acc['stripe']:.3f} | {acc['hmm']:.3f} |"
              + (f" {acc['expert']:.3f} |" if expert else ""))
    overall = {s: float(totals[s][:, 0].sum() / totals[s][:, 1].sum()) for s in totals}
    report["all"] = overall
    print(f"| all (pooled over beats) | 1 | {overall['stripe']:.3f} | {overall['hmm']:.3f} |"
          + (f" {overall['expert']:.3f} |" if expert else ""))
    with guard:
        save_json(report, args.json_out, guard)


if __name__ == "__main__":
    from harmonize.errors import run_script

    run_script(main)
